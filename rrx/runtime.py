"""Device, precision, seeding and data loading settings shared by training and evaluation."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sys
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from rrx.errors import RRXError

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; anything else is passed to torch."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RRXError(f"trainer.device={name} but CUDA is not available; use trainer.device=auto or cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class Runtime:
    """Where and how tensors are computed.

    Args:
        device (torch.device): compute device.
        amp (bool): bfloat16 autocast; applied on CUDA only.
        batch_size (int): loader batch size.
        num_workers (int): loader worker processes.
        progress (bool): show progress bars.
    """

    device: torch.device
    amp: bool
    batch_size: int
    num_workers: int
    progress: bool = True

    @classmethod
    def from_config(cls, trainer, dataset) -> "Runtime":
        """Settings from the ``trainer`` and ``dataset`` configs. Loader workers are capped at the CPUs this process
        may use; progress bars are drawn only on a terminal (a log file gets the per-epoch log lines instead)."""
        device = resolve_device(trainer.device)
        if trainer.amp and device.type != "cuda":
            log.info("trainer.amp=true has no effect on %s; running in float32", device)
        workers, cpus = int(dataset.num_workers), len(os.sched_getaffinity(0))
        if workers > cpus:
            log.info("dataset.num_workers=%d capped at the %d CPUs available", workers, cpus)
            workers = cpus
        progress = bool(trainer.progress) and sys.stderr.isatty()
        return cls(device, bool(trainer.amp), int(trainer.batch_size), workers, progress)

    def autocast(self):
        if self.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def loader(self, data: Dataset, shuffle: bool, generator: torch.Generator | None = None) -> DataLoader:
        return DataLoader(
            data,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=self.device.type == "cuda",
            generator=generator,
        )
