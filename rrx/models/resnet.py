"""ResNet-18 from torchvision, optionally with ImageNet weights, with a K-class head."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import ResNet18_Weights
from torchvision.models.resnet import BasicBlock, ResNet

from rrx.errors import RRXError
from rrx.models import register_model


class ResNet18(ResNet):
    """torchvision's ResNet-18 (same parameters and weights) split as timm splits models."""

    def __init__(self):
        super().__init__(BasicBlock, [2, 2, 2, 2])

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 512, H/32, W/32): the output of layer4."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        pooled = torch.flatten(self.avgpool(features), 1)
        return pooled if pre_logits else self.fc(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_model("resnet18")
def create_resnet18(cfg, num_classes: int) -> nn.Module:
    """torchvision ResNet-18.

    ``cfg.pretrained=true`` loads torchvision's ImageNet weights (from ``$TORCH_HOME`` if
    cached, else downloaded); ``cfg.weights_path`` loads a local state dict instead. The
    1000-class head is then replaced by a fresh ``num_classes`` head.
    """
    model = ResNet18()
    if cfg.weights_path:
        try:
            state = torch.load(cfg.weights_path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError) as err:
            raise RRXError(f"model.weights_path={cfg.weights_path}: cannot load ({err})") from err
        model.load_state_dict(state)
    elif cfg.pretrained:
        weights = ResNet18_Weights.IMAGENET1K_V1
        try:
            model.load_state_dict(weights.get_state_dict(progress=False))
        except (OSError, RuntimeError) as err:  # URLError is an OSError
            raise RRXError(
                f"model.pretrained=true: cannot load {weights} ({err}); without internet, place the file "
                "in $TORCH_HOME/hub/checkpoints or pass model.weights_path=<state dict .pth>"
            ) from err
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model
