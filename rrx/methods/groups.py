"""What the group-robustness methods share: the groups g = (object class, background class) of the training images
(the spurious-correlation literature's: Sagawa et al. 2020's group DRO, WILDS, Waterbirds' (bird, place)), known
where the dataset knows each training image's background class (``Benchmark.training_background_classes``: the
generated benchmark's draws, Waterbirds' ``place``)."""

from __future__ import annotations

from collections.abc import Sized
from typing import cast

import torch
from torch.utils.data import Dataset

from rrx.data.base import labels_of
from rrx.errors import RRXError


def training_groups(dataset, train_set, classes: list[str], method: str) -> tuple[list[int], list[list[str]]]:
    """(the group index of each item of ``train_set``, the groups [object, background] in index order: the
    (object, background) pairs that occur, sorted). A dataset that does not know its training images' backgrounds
    is one RRXError."""
    backgrounds = dataset.training_background_classes(train_set)
    if backgrounds is None:
        raise RRXError(
            f"method={method} needs the background class of each training image, and dataset={dataset.name} does "
            "not know it: use dataset=synthetic or dataset=waterbirds"
        )
    pairs = [(classes[y], str(b)) for y, b in zip(labels_of(train_set), backgrounds)]
    names = sorted(set(pairs))
    index = {pair: g for g, pair in enumerate(names)}
    return [index[pair] for pair in pairs], [list(pair) for pair in names]


class WithGroups(Dataset):
    """``base``'s items with the group index of each appended: ``(image, label[, mask], group)``."""

    def __init__(self, base: Dataset, groups: list[int]):
        self.base, self.groups = base, groups

    def __len__(self) -> int:
        return len(cast(Sized, self.base))

    def __getitem__(self, index: int):
        return (*self.base[index], torch.tensor(self.groups[index]))


def group_report(groups: list[int], names: list[list[str]]) -> dict:
    """What a run records of its groups: each group's [object, background] and number of training images."""
    counts = torch.bincount(torch.tensor(groups), minlength=len(names)).tolist()
    return {"groups": len(names), "per_group": [[*name, n] for name, n in zip(names, counts)]}
