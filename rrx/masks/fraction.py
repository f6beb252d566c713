"""``mask=fraction mask.p=<p>``: few-shot masks. Of each class a seeded share p of the training images keeps its mask;
the others have none (the all-ones mask, ``rrx.masks``): they take part in the plain loss only."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch

from rrx.config import ComponentConfig, param
from rrx.data.base import labels_of
from rrx.masks import KeptMasks, counts_per_class, register_mask_source

log = logging.getLogger(__name__)


def kept_per_class(labels: list[int], p: float, generator: torch.Generator) -> list[int]:
    """The indices (sorted) whose masks are kept: of each class's n_c images the first floor(p * n_c + 1/2) of a
    random permutation drawn from ``generator``, class by class in label order. With one seed a smaller p keeps a
    subset of a larger p's images (the same permutations, cut shorter), so the points of a curve over p are nested."""
    by_class: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(label, []).append(i)
    kept = []
    for label in sorted(by_class):
        members = by_class[label]
        order = torch.randperm(len(members), generator=generator).tolist()
        kept += [members[j] for j in order[: math.floor(p * len(members) + 0.5)]]
    return sorted(kept)


@dataclass
class FractionConfig(ComponentConfig):
    """few-shot masks: a seeded share p of each class's training images keeps its mask, the rest have none"""

    name: str = param("fraction", "the registered name of the mask source")
    p: float = param(
        0.05, "the share of each class's training images that keeps its mask (rounded half up)", low=0, high=1
    )
    seed: int | None = param(None, "the seed of which images keep their masks (null: the run's seed)")


@register_mask_source("fraction", config=FractionConfig)
class Fraction:
    def __init__(self, cfg):
        self.p = float(cfg.p)
        self.seed = cfg.seed
        self.label = f"{100 * self.p:g}% masks"

    def kept(self, train_set, classes: list[str], run_seed: int) -> tuple[list[int], dict]:
        """(the indices of ``train_set`` whose masks are kept, the report): what ``apply`` keeps, and the images a
        ``task=segmentation`` run trains on (the labelled share a ``mask=segmenter`` source was trained on)."""
        labels = labels_of(train_set)
        generator = torch.Generator().manual_seed(self.seed if self.seed is not None else run_seed)
        kept = kept_per_class(labels, self.p, generator)
        report = {
            "source": "fraction",
            "p": self.p,
            "seed": self.seed if self.seed is not None else run_seed,
            "images": len(labels),
            "with_mask": len(kept),
            "per_class": counts_per_class(labels, kept, classes),
        }
        log.info("mask=fraction: %d of %d training images keep their masks (p = %g)", len(kept), len(labels), self.p)
        return kept, report

    def apply(self, train_set, classes: list[str], run_seed: int, dataset=None, runtime=None, cache=None) -> tuple:
        kept, report = self.kept(train_set, classes, run_seed)
        if len(kept) == report["images"]:
            return train_set, report  # every mask kept: the labelled training set itself
        return KeptMasks(train_set, kept), report
