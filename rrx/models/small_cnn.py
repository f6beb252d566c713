"""A four-block CNN that trains on a CPU in seconds (for tests and quick experiments)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rrx.config import param
from rrx.models import ModelConfig, register_model


@dataclass
class SmallCNNConfig(ModelConfig):
    """four conv blocks; trains on a CPU in seconds"""

    name: str = param("small_cnn", "the registered name of the model")
    display_name: str = param("SmallCNN", "the Architecture column of the tables and figures")
    width: int = param(16, "channels of the first block (then 2, 4 and 4 times as many)", low=1)


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class SmallCNN(nn.Module):
    """conv-BN-ReLU blocks with max-pooling, global average pooling and a linear head."""

    def __init__(self, num_classes: int, width: int = 16):
        super().__init__()
        self.features = nn.Sequential(
            _block(3, width),
            nn.MaxPool2d(2),
            _block(width, 2 * width),
            nn.MaxPool2d(2),
            _block(2 * width, 4 * width),
            nn.MaxPool2d(2),
            _block(4 * width, 4 * width),
        )
        self.fc = nn.Linear(4 * width, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 4 width, H/8, W/8)."""
        return self.features(x)

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        pooled = features.mean(dim=(2, 3))
        return pooled if pre_logits else self.fc(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def cd_layers(self) -> list[nn.Module]:
        """The layers in the order ``forward`` applies them (for contextual decomposition)."""
        return [*self.features, nn.AdaptiveAvgPool2d(1), nn.Flatten(), self.fc]


@register_model("small_cnn", config=SmallCNNConfig)
def create_small_cnn(cfg, num_classes: int) -> nn.Module:
    return SmallCNN(num_classes, width=cfg.width)
