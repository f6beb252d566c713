"""Accuracy of a classifier on a loader: what the background challenge reports per variation and training
validates with."""

from __future__ import annotations

from collections.abc import Sized
from typing import cast

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from rrx.runtime import Runtime


@torch.no_grad()
def accuracy(model: torch.nn.Module, loader: DataLoader, runtime: Runtime, desc: str) -> float:
    """Correct predictions / dataset size."""
    model.eval()
    correct = 0
    for x, y, *_ in tqdm(loader, desc=desc, leave=False, disable=not runtime.progress):
        with runtime.autocast():
            logits = model(x.to(runtime.device))
        correct += (logits.argmax(1).cpu() == y).sum().item()
    return correct / len(cast(Sized, loader.dataset))
