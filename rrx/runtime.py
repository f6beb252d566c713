"""Device, precision, seeding and data loading settings shared by training and evaluation."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import shutil
import signal
import sys
from collections.abc import Sized
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
from torch.nn.parameter import is_lazy
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler

from rrx.data.byte_items import byte_items, to_float
from rrx.data.preload import capped_workers
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


class ShardedSampler(Sampler[int]):
    """Rank ``rank`` of ``world_size``'s share of the permutation that one process's shuffled loader draws
    from ``generator``: every ``world_size``-th index from position ``rank``.

    In per-rank batches of b = B / world_size, rank r's k-th batch holds positions kB + r, kB + r + W, ... of
    the permutation, so the ranks' k-th batches together are one process's k-th batch of B: with every rank's
    ``generator`` in the same state, N devices train on the same batches as one. (torch's DistributedSampler
    draws another permutation, from its own seed.) When the data are not a multiple of ``world_size``, the
    permutation is padded with its first indices, as DistributedSampler does, so every rank takes the same
    number of steps.
    """

    def __init__(self, size: int, rank: int, world_size: int, generator: torch.Generator):
        self.size, self.rank, self.world_size, self.generator = size, rank, world_size, generator

    def __len__(self) -> int:
        return math.ceil(self.size / self.world_size)

    def __iter__(self):
        order = list(RandomSampler(range(self.size), generator=self.generator))  # the same draws as one process's
        order += order[: len(self) * self.world_size - self.size]
        return iter(order[self.rank :: self.world_size])


@dataclass
class Runtime:
    """Where and how tensors are computed.

    Args:
        device (torch.device): compute device.
        amp (bool): bfloat16 autocast; applied on CUDA only.
        batch_size (int): loader batch size; for training the global batch, shared by the ranks.
        num_workers (int): loader worker processes.
        progress (bool): show progress bars.
        rank (int): this process's rank in data-parallel training. Default: 0.
        world_size (int): number of ranks. Default: 1.
        channels_last (bool): models in the channels-last memory format (``place``). Default: False.
        augment (tuple | None): ``(scale, ratio)`` of the training augmentations (``rrx.data.augment``), or None.
            Default: None.
        compile (bool): train through ``torch.compile`` (``compiled``). Default: False.
    """

    device: torch.device
    amp: bool
    batch_size: int
    num_workers: int
    progress: bool = True
    rank: int = 0
    world_size: int = 1
    channels_last: bool = False
    augment: tuple | None = None
    compile: bool = False

    @classmethod
    def from_config(cls, trainer, dataset) -> "Runtime":
        """Settings from the ``trainer`` (``rrx.settings.RuntimeConfig``, checked) and ``dataset`` configs. Loader
        workers are capped at the CPUs this process may use; progress bars are drawn only on a terminal (a log file
        gets the per-epoch log lines instead); ``compile`` is ``rrx train``'s alone (``TrainerConfig``)."""
        device = resolve_device(trainer.device)
        if trainer.amp and device.type != "cuda":
            log.info("trainer.amp=true has no effect on %s; running in float32", device)
        workers = capped_workers(int(dataset.num_workers))
        progress = bool(trainer.progress) and sys.stderr.isatty()
        channels_last = trainer.channels_last is True or (trainer.channels_last == "auto" and device.type == "cuda")
        return cls(
            device,
            bool(trainer.amp),
            int(trainer.batch_size),
            workers,
            progress,
            channels_last=channels_last,
            augment=augment_settings(dataset),
            compile=bool(trainer.compile) if "compile" in trainer else False,
        )

    def place(self, model: torch.nn.Module, double_backprop: bool = False) -> torch.nn.Module:
        """``model`` on the device, channels-last when ``channels_last``. On a CPU, training that differentiates
        input gradients (``double_backprop``) keeps the default format: its second backward pass is slower
        channels-last there (ResNet-like SmallCNN: 0.6x), while forward and first-order passes gain 1.6-2x."""
        model = model.to(self.device)
        last = self.channels_last and not (double_backprop and self.device.type == "cpu")
        if last and not any(is_lazy(p) for p in model.parameters()):  # a lazy layer (model=mlp) has no format yet
            model = model.to(memory_format=torch.channels_last)
        return model

    def compiled(self, model: torch.nn.Module, double_backprop: bool, label: str) -> torch.nn.Module:
        """``torch.compile(model)`` for training when ``compile`` (``trainer.compile``), else ``model``. A method
        that differentiates input gradients (``double_backprop``: RRR, GradMask, EG) trains uncompiled, with a
        warning: torch.compile's autograd has no double backward. ``forward_features`` and ``forward_head`` (ActDiff)
        go through the compiled module too (Fabric's ``mark_forward_method``); evaluation uses the uncompiled model.
        On a CPU, torch.compile needs a C++ compiler; without one, an RRXError says so."""
        if not self.compile:
            return model
        if double_backprop:
            log.warning(
                "trainer.compile=true: %s differentiates input gradients, which torch.compile cannot "
                "(no double backward); it trains uncompiled",
                label,
            )
            return model
        compiler = os.environ.get("CXX", "g++")
        if self.device.type == "cpu" and shutil.which(compiler) is None:
            raise RRXError(
                f"trainer.compile=true on a CPU needs a C++ compiler for torch.compile ({compiler} not "
                "found): install one (apt-get install g++) or set trainer.compile=false"
            )
        # torch.compile's stub gives a plain callable; for a Module it returns an OptimizedModule
        return cast(torch.nn.Module, torch.compile(model))

    def autocast(self):
        if self.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def loader(self, data: Dataset, shuffle: bool, generator: torch.Generator | None = None) -> DataLoader:
        return self._loader(data, self.batch_size, generator, shuffle=shuffle)

    def train_loader(self, data: Dataset, generator: torch.Generator) -> DataLoader:
        """The shuffled training loader: one process's, or with ``world_size`` ranks this rank's share of the
        same permutation (``ShardedSampler``) in batches of ``batch_size / world_size``."""
        if self.world_size == 1:
            return self.loader(data, shuffle=True, generator=generator)
        # the loader draws its workers' base seed from ``generator``, as one process's does
        return self._loader(
            data,
            self.batch_size // self.world_size,
            generator,
            sampler=ShardedSampler(len(cast(Sized, data)), self.rank, self.world_size, generator),
        )

    def _loader(self, data: Dataset, batch_size: int, generator: torch.Generator | None, **order):
        """Pinned batches on CUDA; workers (if any) kept across epochs, 4 batches ahead each, deaf to signals. A
        dataset that gives its items as bytes (``rrx.data.byte_items``) crosses from the workers to the device as
        uint8 and is made float there (``DeviceBatches``)."""
        workers: dict[str, Any] = (
            {"persistent_workers": True, "prefetch_factor": 4, "worker_init_fn": quiet_worker}
            if self.num_workers
            else {}
        )
        raw = byte_items(data)
        loader = DataLoader(
            data if raw is None else raw,
            batch_size=batch_size,
            num_workers=self.num_workers,
            pin_memory=self.device.type == "cuda",
            generator=generator,
            **order,
            **workers,
        )
        return loader if raw is None else DeviceBatches(loader, data, self.device)


class DeviceBatches:
    """``loader``'s batches of ``ByteItems(dataset)`` as ``dataset``'s float items would give them, images and
    masks on ``device`` (``rrx.data.byte_items.to_float``; labels stay on the CPU, as a plain loader gives them)."""

    def __init__(self, loader: DataLoader, dataset: Dataset, device: torch.device):
        self.loader, self.dataset, self.device = loader, dataset, device

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        non_blocking = self.device.type == "cuda"  # from pinned memory
        for batch in self.loader:
            yield to_float(batch, self.device, non_blocking)


def augment_settings(dataset) -> tuple | None:
    """``(scale, ratio)`` from ``dataset.augment_scale`` and ``augment_ratio`` when ``dataset.augment=crop_flip``;
    each a [low, high] pair, scale within (0, 1] and ratio above 0, or one RRXError naming it."""
    if dataset.get("augment", "none") != "crop_flip":  # a dataset without the key augments no batch
        return None
    pairs = {}
    for key, (low, high) in {"augment_scale": (0.0, 1.0), "augment_ratio": (0.0, math.inf)}.items():
        value = dataset.get(key)
        pair = [float(v) for v in value] if value is not None and len(value) == 2 else None
        if pair is None or not low < pair[0] <= pair[1] <= high:
            raise RRXError(
                f"dataset.{key}={value}: give [low, high] with {low} < low <= high <= {high}, e.g. "
                f"dataset.{key}={'[0.35,1.0]' if key == 'augment_scale' else '[0.75,1.333]'}"
            )
        pairs[key] = tuple(pair)
    return pairs["augment_scale"], pairs["augment_ratio"]


def quiet_worker(worker_id: int) -> None:
    """A loader worker ignores SIGINT, SIGTERM and SIGUSR2, which a terminal or SLURM sends to every process of
    the job: the training process alone stops (``rrx.signals.stop_on_signals``) or is requeued (submitit's
    SIGUSR2 handler, which a forked worker would otherwise inherit and run); torch ends the workers after it."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_IGN)
