"""``challenge=all``: the background and signal variations, edge removal and the SNR of attributions in one run."""

from __future__ import annotations

from rrx.challenges import register_challenge
from rrx.challenges.background import BackgroundChallenge
from rrx.challenges.edge import EdgeChallenge
from rrx.challenges.snr import SNRChallenge


@register_challenge("all")
class AllChallenges:
    """Accuracy on every variation in ``cfg.variations`` (with BG-Gap), the edge grid and the SNR."""

    def __init__(self, cfg):
        self.parts = [BackgroundChallenge(cfg), EdgeChallenge(cfg), SNRChallenge(cfg)]

    def needs(self) -> list[tuple[str, bool]]:
        return [need for part in self.parts for need in part.needs()]

    def evaluate(self, model, dataset, runtime) -> dict:
        results = {}
        for part in self.parts:
            results.update(part.evaluate(model, dataset, runtime))
        return results
