"""Accuracy of a classifier on a loader: what training validates with (the background challenge keeps the
predictions too, ``rrx.predictions``), and on held-out images with mixed backgrounds."""

from __future__ import annotations

from collections.abc import Sized
from typing import cast

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from rrx.predictions import predict, share_correct
from rrx.runtime import Runtime


def accuracy(model: torch.nn.Module, loader: DataLoader, runtime: Runtime, desc: str) -> float:
    """Correct predictions / dataset size (``rrx.predictions.predict``, ``share_correct``)."""
    return share_correct(predict(model, loader, runtime, desc))


@torch.no_grad()
def mixed_rand_accuracy(
    model: torch.nn.Module, loader: DataLoader, runtime: Runtime, generator: torch.Generator
) -> float:
    """Accuracy on ``loader``'s (x, y, mask) images with each object pasted onto the background of another image of
    its batch, the partner's own object covered by tiling (RRDA's ``matching`` pairing and ``tile`` fill, thesis
    Alg. 3; ``rrx.methods.rrda.rrda``): a mixed_rand built from held-out training images and their masks, for model
    selection without the test set. ``generator`` draws the partners."""
    from rrx.methods.rrda import rrda

    model.eval()
    correct = 0
    for x, y, mask in tqdm(loader, desc="validation mixed_rand", leave=False, disable=not runtime.progress):
        x_mixed, y_mixed, _ = rrda(x, y, mask, generator, pairing="matching", fill="tile")
        with runtime.autocast():
            logits = model(x_mixed.to(runtime.device))
        correct += (logits.argmax(1).cpu() == y_mixed).sum().item()
    return correct / len(cast(Sized, loader.dataset))
