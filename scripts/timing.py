"""Wall-clock timing for the benchmark scripts (``from timing import timed``; ``scripts/`` is on the path of a script
run as ``python scripts/<name>.py``): CUDA work is synchronised before and after, so the time covers it."""

from __future__ import annotations

import time

import torch


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: torch.device):
    """``(fn(), seconds)``, with ``device``'s queued work finished at both ends."""
    synchronize(device)
    start = time.perf_counter()
    out = fn()
    synchronize(device)
    return out, time.perf_counter() - start
