"""The CNN of CDEP's MNIST scripts (Rieger et al. 2020): two 5x5 conv-ReLU-max-pool stages and two linear layers.

Unlike SmallCNN it has no global average pooling: the linear head sees every position of the last feature map,
so a decoy patch in a corner can be read off directly, which is what makes Decoy MNIST a trap (thesis Table 10).
It is a plain chain of layers, so contextual decomposition (``method=cdep``) covers it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rrx.config import param
from rrx.errors import RRXError
from rrx.models import ModelConfig, register_model


@dataclass
class LeNetConfig(ModelConfig):
    """CDEP's MNIST CNN (conv 20, conv 50, linear 256, linear K); no global pooling, so a corner decoy is easy to use"""

    name: str = param("lenet", "the registered name of the model")
    display_name: str = param("LeNet", "the Architecture column of the tables and figures")
    channels: list[int] = param([20, 50], "the channels of the two conv stages", low=1)
    fc_width: int = param(256, "the width of the hidden linear layer (CDEP: 256 DecoyMNIST, 500 ColorMNIST)", low=1)


class LeNet(nn.Module):
    """conv(3->c1, 5) ReLU maxpool2, conv(c1->c2, 5) ReLU maxpool2, flatten, linear(->hidden) ReLU, linear(->K).

    CDEP's widths are c1 = 20, c2 = 50, hidden = 256 (DecoyMNIST) or 500 (ColorMNIST); the first linear layer
    takes its input size from the first batch (28x28 images give 4 * 4 * c2).
    """

    def __init__(self, num_classes: int, channels: tuple[int, int] = (20, 50), hidden: int = 256):
        super().__init__()
        c1, c2 = channels
        self.features = nn.Sequential(
            nn.Conv2d(3, c1, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.LazyLinear(hidden), nn.ReLU())
        self.fc = nn.Linear(hidden, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        hidden = self.head(features)
        return hidden if pre_logits else self.fc(hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def cd_layers(self) -> list[nn.Module]:
        """The layers in the order ``forward`` applies them (for contextual decomposition)."""
        return [*self.features, *self.head, self.fc]


@register_model("lenet", config=LeNetConfig)
def create_lenet(cfg, num_classes: int) -> nn.Module:
    if len(cfg.channels) != 2:
        raise RRXError(f"model.channels={list(cfg.channels)}: give the channels of the two conv stages, e.g. [20, 50]")
    return LeNet(num_classes, channels=tuple(cfg.channels), hidden=cfg.fc_width)
