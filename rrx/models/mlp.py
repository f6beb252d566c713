"""A multilayer perceptron on flattened images (the thesis's toy-problem model: hidden 50, 30)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rrx.config import param
from rrx.models import ModelConfig, register_model


@dataclass
class MLPConfig(ModelConfig):
    """MLP on flattened pixels (the thesis's toy problem: hidden [50, 30])"""

    name: str = param("mlp", "the registered name of the model")
    display_name: str = param("MLP", "the Architecture column of the tables and figures")
    hidden: list[int] = param([50, 30], "the widths of the hidden layers", low=1)


class MLP(nn.Module):
    """Flatten, Linear-ReLU per hidden width, linear head; the input size is set by the first batch."""

    def __init__(self, hidden: list[int], num_classes: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        for width in hidden:
            layers += [nn.LazyLinear(width), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.fc = nn.LazyLinear(num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return features if pre_logits else self.fc(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x))

    def cd_layers(self) -> list[nn.Module]:
        """The layers in the order ``forward`` applies them (for contextual decomposition)."""
        return [*self.body, self.fc]


@register_model("mlp", config=MLPConfig)
def create_mlp(cfg, num_classes: int) -> nn.Module:
    return MLP(list(cfg.hidden), num_classes)
