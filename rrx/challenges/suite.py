"""``challenge=all``: the background variations, the signal variations and edge removal in one run."""

from __future__ import annotations

from rrx.challenges import register_challenge
from rrx.challenges.background import BackgroundChallenge
from rrx.challenges.edge import EdgeChallenge


@register_challenge("all")
class AllChallenges:
    """Accuracy on every variation in ``cfg.variations`` (with BG-Gap) plus the edge grid."""

    def __init__(self, cfg):
        self.parts = [BackgroundChallenge(cfg), EdgeChallenge(cfg)]

    def evaluate(self, model, dataset, runtime) -> dict:
        results = {}
        for part in self.parts:
            results.update(part.evaluate(model, dataset, runtime))
        return results
