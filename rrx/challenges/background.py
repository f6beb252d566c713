"""The background challenge (Xiao et al. 2021; thesis 4.2.1): accuracy per IN-9 variation."""

from __future__ import annotations

import logging

from rrx.challenges import register_challenge
from rrx.challenges.accuracy import accuracy
from rrx.runtime import Runtime

log = logging.getLogger(__name__)


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
