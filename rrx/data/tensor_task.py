"""Datasets held in memory as tensors, with one evaluation variation: the test split."""

from __future__ import annotations

import logging

import torch
from torch.utils.data import TensorDataset

from rrx.data.base import Benchmark
from rrx.errors import RRXError

log = logging.getLogger(__name__)


class TensorTask(Benchmark):
    """A train and a test split of images x (N, 3, H, W) in [0, 1], labels y (N,) and masks m (N, 1, H, W).

    ``variation_set("original")`` is the test split; there are no other variations.
    """

    has_masks = True

    def __init__(self, name: str, train: tuple, test: tuple, num_classes: int, mean, std):
        self.name = name
        self.train, self.test = train, test
        self.num_classes = num_classes
        self.classes = [str(k) for k in range(num_classes)]
        self.mean, self.std = list(mean), list(std)
        for split, (x, y, _) in (("train", train), ("test", test)):
            counts = torch.bincount(y, minlength=num_classes).tolist()
            log.info("%s %s: %d images %s, per class %s", name, split, len(y), tuple(x.shape[1:]), counts)

    def train_set(self, masks: bool) -> TensorDataset:
        x, y, m = self.train
        return TensorDataset(x, y, m) if masks else TensorDataset(x, y)

    def variation_set(self, variation: str, masks: bool = False) -> TensorDataset:
        if variation != "original":
            raise RRXError(f"dataset {self.name} has only the 'original' variation (its test split), not {variation!r}")
        x, y, m = self.test
        return TensorDataset(x, y, m) if masks else TensorDataset(x, y)
