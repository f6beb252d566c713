"""What the group-robustness methods share: the groups g = (object class, background class) of the training images
(the spurious-correlation literature's: Sagawa et al. 2020's group DRO, WILDS, Waterbirds' (bird, place)), known
where the dataset knows each training image's background class (``Benchmark.training_background_classes``: the
generated benchmark's draws, Waterbirds' ``place``).

``method.groups=agree`` coarsens them to (object class, whether the background is of the object's own class): 2
groups per class instead of up to one per background class, for a held-out set too small to fill every pair (DFR's
balanced refits on the embedded benchmark: 540 images over 81 pairs, the smallest holding one).
"""

from __future__ import annotations

from collections.abc import Sized
from dataclasses import dataclass
from typing import cast

import torch
from torch.utils.data import Dataset

from rrx.config import param
from rrx.data.base import labels_of
from rrx.errors import RRXError
from rrx.methods.base import MethodConfig

GROUPINGS = ("pair", "agree")
OWN, OTHER = "own class", "other class"  # the background of method.groups=agree's groups


@dataclass
class GroupsConfig(MethodConfig):
    """what every method that trains with groups has: which groups"""

    groups: str = param(
        "pair",
        "the training groups: pair: (object class, background class) | agree: (object class, whether the background "
        "is of the object's class)",
        choices=GROUPINGS,
    )


def grouped_name(name: str, cfg) -> str:
    """The method's name in the tables: ``name``, with its coarser groups named (``method.groups=agree``)."""
    return f"{name} (object x own background)" if cfg.get("groups") == "agree" else name


def training_groups(
    dataset, train_set, classes: list[str], method: str, grouping: str = "pair"
) -> tuple[list[int], list[list[str]]]:
    """(the group index of each item of ``train_set``, the groups [object, background] in index order: the
    (object, background) pairs that occur, sorted; with ``grouping="agree"`` the background is ``OWN`` or ``OTHER``).
    A dataset that does not know its training images' backgrounds is one RRXError, and so is ``agree`` where no
    background is named as a class."""
    backgrounds = dataset.training_background_classes(train_set)
    if backgrounds is None:
        raise RRXError(
            f"method={method} needs the background class of each training image, and dataset={dataset.name} does "
            "not know it: use dataset=synthetic or dataset=waterbirds"
        )
    pairs = [(classes[y], str(b)) for y, b in zip(labels_of(train_set), backgrounds)]
    if grouping == "agree":
        if not any(b in classes for _, b in pairs):
            named = ", ".join(sorted({b for _, b in pairs})[:4])
            raise RRXError(
                f"method.groups=agree compares each background with the object's class, and dataset={dataset.name} "
                f"names its backgrounds otherwise ({named}); use method.groups=pair"
            )
        pairs = [(o, OWN if b == o else OTHER) for o, b in pairs]
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
