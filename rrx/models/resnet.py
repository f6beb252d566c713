"""ResNet-18 from torchvision, optionally with ImageNet weights, with a K-class head."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet

from rrx.config import param
from rrx.models import register_model
from rrx.models.weights import IMAGENET_NORMALISATION, WeightsConfig, load_weights, torchvision_state


@dataclass
class ResNet18Config(WeightsConfig):
    """torchvision ResNet-18; pretrained=true loads ImageNet weights ($TORCH_HOME cache), weights_path a state dict"""

    name: str = param("resnet18", "the registered name of the model")
    display_name: str = param("ResNet-18", "the Architecture column of the tables and figures")


def resnet_features(net: ResNet, x: torch.Tensor) -> torch.Tensor:
    """A torchvision ResNet's last feature map (B, C, H/32, W/32): the output of layer4."""
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    return net.layer4(net.layer3(net.layer2(net.layer1(x))))


def resnet_head(net: ResNet, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
    """Average pooling (``pre_logits``: the pooled features) and the fully connected head."""
    pooled = torch.flatten(net.avgpool(features), 1)
    return pooled if pre_logits else net.fc(pooled)


class ResNet18(ResNet):
    """torchvision's ResNet-18 (same parameters and weights) split as timm splits models."""

    def __init__(self):
        super().__init__(BasicBlock, [2, 2, 2, 2])

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return resnet_features(self, x)

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return resnet_head(self, features, pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_model("resnet18", config=ResNet18Config)
def create_resnet18(cfg, num_classes: int | None) -> nn.Module:
    """torchvision ResNet-18.

    ``cfg.weights_path`` loads a local state dict; ``cfg.pretrained=true`` torchvision's ImageNet weights from
    ``$TORCH_HOME/hub/checkpoints`` (downloaded only with ``cfg.download=true``; see ``rrx.models.weights``).
    The 1000-class head is then replaced by a fresh ``num_classes`` head; ``num_classes=None`` keeps it.
    """
    model = ResNet18()
    state = torchvision_state("resnet18", cfg)
    if state is not None:
        load_weights(model, state, "torchvision's ResNet-18 (model resnet18)")
    model.normalisation = IMAGENET_NORMALISATION
    if num_classes is not None:
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model
