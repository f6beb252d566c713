"""Any torchvision classification model by name (``model=torchvision model.arch=resnet50``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torchvision
from torch import nn

from rrx.config import param
from rrx.errors import RRXError
from rrx.models import register_model
from rrx.models.resnet import resnet_features, resnet_head
from rrx.models.weights import (
    IMAGENET_NORMALISATION,
    WeightsConfig,
    close_matches,
    load_weights,
    torchvision_state,
)


@dataclass
class TorchvisionConfig(WeightsConfig):
    """any torchvision classification model by name (rrx evaluate model=torchvision model.arch=resnet50 ...)"""

    name: str = param("torchvision", "the registered name of the model")
    display_name: str = param("${.arch}", "the Architecture column of the tables and figures")
    arch: str = param("resnet50", "the torchvision model name (torchvision.models.list_models())")


class TorchvisionBackbone(nn.Module):
    """A torchvision classifier split as timm splits models.

    ResNet-like models (``layer4`` and ``fc``) give their last feature map, so Grad-CAM and the feature-space
    methods work; for other architectures ``forward_features`` is the logits and ``forward_head`` the identity
    (accuracy-based challenges work, anything needing a feature map says it has none).
    """

    normalisation: tuple[tuple[float, float, float], tuple[float, float, float]]  # (mean, std), set by the factory

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.split = hasattr(model, "layer4") and hasattr(model, "fc")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return resnet_features(self.model, x) if self.split else self.model(x)

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if self.split:
            return resnet_head(self.model, features, pre_logits)
        if pre_logits:
            raise ValueError(
                f"{type(self.model).__name__}: rrx does not split this torchvision model into features and head"
            )
        return features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_model("torchvision", config=TorchvisionConfig)
def create_torchvision(cfg, num_classes: int | None) -> nn.Module:
    """``torchvision.models.get_model(model.arch)``; weights as ``rrx.models.weights.torchvision_state``.

    ``num_classes=None`` keeps the ImageNet-1k head; another count replaces ``fc`` of a ResNet-like model.
    """
    arch = cfg.arch
    known = torchvision.models.list_models(module=torchvision.models)
    if arch not in known:
        raise RRXError(f"model.arch={arch}: torchvision has no such classification model{close_matches(arch, known)}")
    model = torchvision.models.get_model(arch, weights=None)
    state = torchvision_state(arch, cfg)
    if state is not None:
        load_weights(model, state, f"torchvision's {arch} (model {arch})")
    backbone = TorchvisionBackbone(model)
    if num_classes is not None:
        if not backbone.split:
            raise RRXError(
                f"model.arch={arch}: rrx replaces the head of ResNet-like torchvision models only; use model=timm"
            )
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    backbone.normalisation = IMAGENET_NORMALISATION
    return backbone
