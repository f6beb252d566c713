"""Datasets decoded once into memory as uint8, instead of once per epoch (and per challenge) from their files."""

from __future__ import annotations

import logging
import os
from typing import Sized, TypeVar, cast

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from rrx.data.byte_items import byte_items, to_float

log = logging.getLogger(__name__)

D = TypeVar("D", bound=Dataset)


class Preloaded(Dataset):
    """Every item of ``source`` decoded once: images as uint8 (N, 3, S, S), masks as bool (N, 1, S, S).

    Items are what ``source`` gives, (x, y) or (x, y, m). A source with ``byte_item`` (``IN9Folder``) is stored as
    it gives its bytes, so the items are bit-identical to its own; any other source's float x in [0, 1] is stored as
    round(255 x), exact for images whose pixels are k / 255 and within 0.5 / 255 otherwise. ``byte_item`` gives the
    stored bytes to the loaders (``rrx.data.byte_items``). Attributes other than the items (``samples``,
    ``classes``, ``skipped``, ...) are ``source``'s.

    Args:
        source (Dataset): a dataset of (x, y) or (x, y, m) items, all x of one size.
        num_workers (int): loader workers that decode it (0: this process).
        desc (str): what it is, for the progress bar.
    """

    def __init__(self, source: Dataset, num_workers: int = 0, desc: str = "preload"):
        self.source = source
        images, labels, masks = [], [], []
        # its own generator: preloading draws nothing from the global random state, so runs draw what they drew before
        loader = DataLoader(
            byte_items(source) or source, batch_size=256, num_workers=num_workers, generator=torch.Generator()
        )
        for batch in tqdm(loader, desc=desc, leave=False, disable=len(cast(Sized, source)) < 10_000):
            x = batch[0]
            images.append(x if x.dtype == torch.uint8 else x.mul(255).round_().to(torch.uint8))
            labels.append(batch[1])
            if len(batch) > 2:
                masks.append(batch[2] > 0.5)
        self.images, self.labels = torch.cat(images), torch.cat(labels)
        self.masks = torch.cat(masks) if masks else None

    def __len__(self) -> int:
        return len(self.labels)

    def byte_item(self, index: int):
        x, y = self.images[index], int(self.labels[index])
        return (x, y) if self.masks is None else (x, y, self.masks[index])

    def __getitem__(self, index: int):
        return tuple(to_float(self.byte_item(index)))

    def __getattr__(self, name: str):
        if name == "source":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.source, name)


_CAPPED: set[tuple[int, int]] = set()  # the caps logged already: once per process


def capped_workers(workers: int) -> int:
    """``dataset.num_workers``, at most the CPUs this process may use (more only compete for them; torch warns)."""
    cpus = len(os.sched_getaffinity(0))
    if workers > cpus and (workers, cpus) not in _CAPPED:
        _CAPPED.add((workers, cpus))
        log.info("dataset.num_workers=%d capped at the %d CPUs available", workers, cpus)
    return min(workers, cpus)


def preload_bytes(count: int, image_size: int, masks: bool) -> int:
    """Bytes ``Preloaded`` holds for ``count`` images of side ``image_size``."""
    return count * image_size * image_size * (3 + int(masks))


def maybe_preload(data: D, image_size: int, masks: bool, limit_gb: float, num_workers: int, desc: str) -> D | Preloaded:
    """``Preloaded(data)`` when it takes at most ``limit_gb`` GB of memory (``dataset.preload_gb``; 0: never),
    else ``data``."""
    size = preload_bytes(len(cast(Sized, data)), image_size, masks)
    if not limit_gb or size > limit_gb * 1e9:
        if limit_gb:
            log.info(
                "%s: %.1f GB decoded is over dataset.preload_gb=%g; read from its files every epoch",
                desc,
                size / 1e9,
                limit_gb,
            )
        return data
    return Preloaded(data, capped_workers(num_workers), desc)
