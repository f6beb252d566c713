"""Where a training run's object masks come from (config group ``mask``): the open problem the thesis ends with
(8.2, "Signal masks"): masks are costly, so RRDA should work with a few labelled examples, or with masks made
without human labelling.

Every source implements ``apply(train_set, classes, run_seed, dataset, runtime, cache) -> (train_set, report)``: the
training set whose items ``(image, label, mask)`` carry the masks the method will use, and what it did
(``report``: the source, the images with a labelled mask, per class, and for a source that makes masks, their IoU
with the labelled ones). It is applied only for a method that uses masks (``method.needs_masks``). A source that
makes masks computes them once before training and keeps them with the run (``cache``: the run folder's
``made_masks.pt``, ``cached_masks``), so that a resumed run reads them instead of computing them again.

An image without a mask carries the all-ones mask: the whole image counts as its signal. That makes every mask
penalty 0 on it (RRR's and GradMask's (1 - M) * gradient, ActDiff's distance between f(x) and f(M * x), CDEP's and
EG's context attribution), so it takes part in the plain loss only, and RRDA (thesis Alg. 3) neither moves its
"object" nor lends its context: RRDA pairs the images whose masks leave some context
(``rrx.tasks.classification.training_step``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sized
from pathlib import Path
from typing import cast

import numpy as np
import torch
from torch.utils.data import Dataset

from rrx.registry import Registry

log = logging.getLogger(__name__)
MADE_MASKS = "made_masks.pt"  # in the run folder: a source's masks (cached_masks)

MASK_SOURCES = Registry("mask", __name__)
register_mask_source = MASK_SOURCES.register


def create_mask_source(cfg):
    """The mask source ``cfg.name`` for ``cfg`` (a composed ``mask`` config or a dict of some of its keys), after its
    keys are checked (``rrx.config.typed``)."""
    from rrx.config import typed

    return MASK_SOURCES.get(cfg["name"])(typed("mask", cfg))


def list_mask_sources() -> list[str]:
    return MASK_SOURCES.names()


class KeptMasks(Dataset):
    """``base``'s items ``(image, label, mask)`` with the mask of every item not in ``kept`` replaced: by ``made[i]``
    (a source's masks (N, 1, H, W)), or by ones where none are given (no mask of its own: the whole image is its
    signal)."""

    def __init__(self, base: Dataset, kept: list[int], made: torch.Tensor | None = None):
        self.base, self.kept, self.made = base, frozenset(kept), made

    def __len__(self) -> int:
        return len(cast(Sized, self.base))

    def __getitem__(self, index: int):
        x, y, mask = self.base[index]
        if index in self.kept:
            return x, y, mask
        return x, y, torch.ones_like(mask) if self.made is None else self.made[index].to(mask.dtype)


def has_context(mask: torch.Tensor) -> torch.Tensor:
    """(B,) True where a mask (B, 1, H, W) leaves some context (is not 1 everywhere): an image RRDA can pair."""
    return mask.flatten(1).amin(1) < 1


def counts_per_class(labels: list[int], kept: list[int], classes: list[str]) -> dict[str, list[int]]:
    """``{class: [images with a mask, images]}``."""
    out = {name: [0, 0] for name in classes}
    chosen = set(kept)
    for i, label in enumerate(labels):
        out[classes[label]][1] += 1
        out[classes[label]][0] += i in chosen
    return out


def masks_of(
    data, runtime, desc: str, make: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(``make(x, y)``'s binary masks of every item of ``data``, its labelled masks), each (N, 1, H, W) uint8 in
    {0, 1}, in order, from one pass over the images (``x``, ``y`` on ``runtime.device``)."""
    from tqdm import tqdm

    made, labelled = [], []
    for x, y, mask in tqdm(runtime.loader(data, shuffle=False), desc=desc, leave=False, disable=not runtime.progress):
        made.append(make(x.to(runtime.device), y.to(runtime.device)).cpu().to(torch.uint8))
        labelled.append((torch.as_tensor(mask) > 0.5).to(torch.uint8))  # as iou reads them
    return torch.cat(made), torch.cat(labelled)


def _packed(masks: torch.Tensor) -> dict:
    """Binary masks (N, 1, H, W) as 8 pixels a byte, with their shape."""
    return {"shape": list(masks.shape), "bits": torch.from_numpy(np.packbits(masks.numpy().astype(bool), axis=None))}


def _unpacked(saved: dict) -> torch.Tensor:
    count = math.prod(saved["shape"])
    return torch.from_numpy(np.unpackbits(saved["bits"].numpy(), count=count).reshape(saved["shape"]))


def cached_masks(
    cache: Path | None, key: dict, make: Callable[[], tuple[torch.Tensor, torch.Tensor]], write: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """``make()``'s (made masks, labelled masks), each (N, 1, H, W) uint8 in {0, 1}: read from ``cache`` where it
    holds them for ``key`` (the source's settings, its checkpoint's SHA-256, the number of images), else made and,
    with ``write`` (rank 0), written there (bit-packed, atomically; read back with ``weights_only=True``)."""
    from rrx.outputs import atomic_write

    if cache is not None and cache.is_file():
        saved = torch.load(cache, map_location="cpu", weights_only=True)
        if saved.get("key") == key:
            log.info("mask=%s: the masks made before this run's first epoch, read from %s", key["source"], cache)
            return _unpacked(saved["made"]), _unpacked(saved["labelled"])
    made, labelled = make()
    if cache is not None and write:
        payload = {"key": key, "made": _packed(made), "labelled": _packed(labelled)}
        atomic_write(cache, lambda tmp: torch.save(payload, tmp))
    return made, labelled


def made_mask_quality(made: torch.Tensor, labelled: torch.Tensor, labels: list[int], kept: list[int], classes) -> dict:
    """How good a source's masks (N, 1, H, W) are on the images that use them (not in ``kept``, which keep their
    labelled masks): the share of their pixels marked as object, and the IoU |A ∩ L| / |A ∪ L| of each made mask A
    with the image's labelled mask L (``iou``), its mean and each class's mean; None where every image is kept."""
    scores, y = iou(made.float(), labelled.float()), torch.tensor(labels)
    used = torch.ones(len(labels), dtype=torch.bool)
    used[kept] = False
    per_class = {
        name: float(scores[used & (y == k)].mean()) for k, name in enumerate(classes) if (used & (y == k)).any()
    }
    return {
        "object_share": float(made[used].float().mean()) if used.any() else None,
        "iou": {"mean": float(scores[used].mean()) if used.any() else None, "per_class": per_class},
    }


def iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B,) |a ∩ b| / |a ∪ b| of binary masks (B, 1, H, W); 1 where both are empty."""
    a, b = a.flatten(1) > 0.5, b.flatten(1) > 0.5
    union = (a | b).sum(1)
    return torch.where(union > 0, (a & b).sum(1) / union.clamp(min=1), torch.ones_like(union, dtype=torch.float))


def log_made_masks(source: str, made_by: str, report: dict) -> None:
    mean = report["iou"]["mean"]
    log.info(
        "mask=%s: %s masks of %d training images, IoU with their labelled masks %s; %d keep their labelled masks",
        source,
        made_by,
        report["images"] - report["with_mask"],
        "-" if mean is None else f"{mean:.3f}",
        report["with_mask"],
    )
