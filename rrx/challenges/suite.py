"""``challenge=all``: the background and signal variations, edge removal and the SNR of attributions in one run."""

from __future__ import annotations

from dataclasses import dataclass

from rrx.challenges import register_challenge
from rrx.challenges.background import EVERY_VARIATION, BackgroundChallenge, BackgroundConfig
from rrx.challenges.edge import EdgeChallenge, EdgeConfig
from rrx.challenges.snr import SNRChallenge, SNRConfig
from rrx.config import param
from rrx.predictions import concatenated


@dataclass
class AllConfig(BackgroundConfig, SNRConfig, EdgeConfig):
    """every challenge: the background set with BG-Gap, the signal variations, the edge grid and the SNR"""

    # the keys of its parts side by side (challenge.widths, challenge.snr_max_images, ...), each part reading its own
    name: str = param("all", "the registered name of the challenge")
    variations: list[str] = param(EVERY_VARIATION, "the variations whose accuracy is measured")


@register_challenge("all", config=AllConfig)
class AllChallenges:
    """Accuracy on every variation in ``cfg.variations`` (with BG-Gap), the edge grid and the SNR."""

    def __init__(self, cfg):
        self.parts = [BackgroundChallenge(cfg), EdgeChallenge(cfg), SNRChallenge(cfg)]
        self.predictions = None

    def needs(self) -> list[tuple[str, bool]]:
        return [need for part in self.parts for need in part.needs()]

    def evaluate(self, model, dataset, runtime) -> dict:
        results = {}
        for part in self.parts:
            results.update(part.evaluate(model, dataset, runtime))
        self.predictions = concatenated([getattr(part, "predictions", None) for part in self.parts])  # rrx.predictions
        return results
