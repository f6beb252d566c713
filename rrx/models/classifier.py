"""The wrapper every rrx model shares: [0, 1] images in, logits out."""

from __future__ import annotations

import torch
from torch import nn


class Classifier(nn.Module):
    """Clamp to [0, 1], normalise, run the backbone (the IN-9 reference evaluator's wrapper).

    Keeping normalisation inside the model lets augmentations, masks and attacks work in
    pixel units of the [0, 1] image.

    Args:
        backbone (nn.Module): maps normalised (B, 3, H, W) images to (B, K) logits.
        mean, std (sequence of 3 floats): per-channel normalisation.
    """

    def __init__(self, backbone: nn.Module, mean, std):
        super().__init__()
        self.backbone = backbone
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone((x.clamp(0, 1) - self.mean) / self.std)
