"""The container of the texture-based task with a coloured-patch shortcut (thesis 5.2.2, Table 11), shared by ISIC
skin lesions as CDEP prepared them (``rrx.data.isic``) and their embedded stand-in of two texture classes
(``rrx.data.textures``).

Both give masks that are 1 everywhere except on the patch (the patch is the context a method must not use)
and two evaluation variations: ``original`` (every test image) and ``no_patch`` (the test images without a
patch), which ``challenge=patches`` scores with AUC and F1 (Table 11). Class 1 is the positive class
(malignant); patches appear on class 0 (benign) only.
"""

from __future__ import annotations

import copy

import torch
from torch.utils.data import Dataset, Subset, TensorDataset

from rrx.data.base import Benchmark
from rrx.errors import RRXError

VARIATIONS = ("original", "no_patch")


def _check_variation(name: str, variation: str) -> None:
    if variation not in VARIATIONS:
        raise RRXError(f"dataset {name} has the variations {', '.join(VARIATIONS)}, not {variation!r}")


class PatchTask(Benchmark):
    """Train and test splits of a two-class task in which some class-0 images carry a patch.

    ``train_set(masks)``; ``variation_set("original" | "no_patch", masks)``; ``has_patch`` per test image.
    """

    classes = ["benign", "malignant"]
    num_classes = 2
    has_masks = True

    def __init__(self, name: str, train: Dataset, test: Dataset, test_has_patch: torch.Tensor, mean, std):
        self.name, self.train, self.test = name, train, test
        self.test_has_patch = test_has_patch.bool()
        self.mean, self.std = list(mean), list(std)

    def variations(self) -> list[str]:
        return list(VARIATIONS)

    def train_set(self, masks: bool) -> Dataset:
        return _with_masks(self.train, masks)

    def variation_set(self, variation: str, masks: bool = False) -> Dataset:
        _check_variation(self.name, variation)
        data = _with_masks(self.test, masks)
        if variation == "no_patch":
            data = Subset(data, torch.nonzero(~self.test_has_patch).flatten().tolist())
        return data


def _with_masks(data: Dataset, masks: bool) -> Dataset:
    """The same images, with or without their masks (a copy: sets handed out earlier keep theirs)."""
    if isinstance(data, TensorDataset):
        return data if masks else TensorDataset(*data.tensors[:2])
    data = copy.copy(data)
    setattr(data, "masks", masks)  # a dataset of files (``ISICImages``) whose items have masks while ``masks``
    return data
