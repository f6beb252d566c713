"""A multilayer perceptron on flattened images (the thesis's toy-problem model: hidden 50, 30)."""

from __future__ import annotations

from torch import nn

from rrx.models import register_model


@register_model("mlp")
def create_mlp(cfg, num_classes: int) -> nn.Module:
    """Flatten, then Linear-ReLU per ``cfg.hidden`` width, then a linear head (input size set lazily)."""
    layers: list[nn.Module] = [nn.Flatten()]
    for width in cfg.hidden:
        layers += [nn.LazyLinear(width), nn.ReLU()]
    layers.append(nn.LazyLinear(num_classes))
    return nn.Sequential(*layers)
