"""The background challenge (Xiao et al. 2021; thesis 4.2.1): accuracy per IN-9 variation."""

from __future__ import annotations

import logging

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from rrx.challenges import register_challenge
from rrx.runtime import Runtime

log = logging.getLogger(__name__)


@torch.no_grad()
def accuracy(model: torch.nn.Module, loader: DataLoader, runtime: Runtime, desc: str) -> float:
    """Correct predictions / dataset size."""
    model.eval()
    correct = 0
    for x, y, *_ in tqdm(loader, desc=desc, leave=False, disable=not runtime.progress):
        with runtime.autocast():
            logits = model(x.to(runtime.device))
        correct += (logits.argmax(1).cpu() == y).sum().item()
    return correct / len(loader.dataset)


@register_challenge("background")
class BackgroundChallenge:
    """Accuracy on each of ``cfg.variations``; BG-Gap = acc(mixed_same) - acc(mixed_rand).

    Results: ``{"accuracy": {variation: float}, "bg_gap": float}`` (bg_gap only when both
    mixed variations were evaluated), accuracies as fractions.
    """

    def __init__(self, cfg):
        self.variations = list(cfg.variations)

    def needs(self) -> list[tuple[str, bool]]:
        return [(v, False) for v in self.variations]

    def evaluate(self, model, dataset, runtime: Runtime) -> dict:
        results = {"accuracy": {}}
        for variation in self.variations:
            loader = runtime.loader(dataset.variation_set(variation), shuffle=False)
            acc = accuracy(model, loader, runtime, desc=variation)
            results["accuracy"][variation] = acc
            log.info("%-10s accuracy %.2f%% (%d images)", variation, 100 * acc, len(loader.dataset))
        acc = results["accuracy"]
        if "mixed_same" in acc and "mixed_rand" in acc:
            results["bg_gap"] = acc["mixed_same"] - acc["mixed_rand"]
            log.info("BG-Gap %.2f points", 100 * results["bg_gap"])
        return results
