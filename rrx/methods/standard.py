"""Standard training: cross-entropy only."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from rrx.config import param
from rrx.methods import register_method
from rrx.methods.base import Method, MethodConfig


@dataclass
class StandardConfig(MethodConfig):
    """cross-entropy only"""

    name: str = param("standard", "the registered name of the method")


@register_method("standard", config=StandardConfig, presets={"rrda": StandardConfig(rrda=True)})
class Standard(Method):
    """Cross-entropy on the batch (the thesis's baseline)."""

    display_name = "Standard"

    def loss(self, model, x, y, mask):
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        return loss, {"ce": loss.detach(), "logits": logits.detach()}
