"""ResNet-18 from torchvision, optionally with ImageNet weights, with a K-class head."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import ResNet18_Weights, resnet18

from rrx.errors import RRXError
from rrx.models import register_model


@register_model("resnet18")
def create_resnet18(cfg, num_classes: int) -> nn.Module:
    """torchvision ResNet-18.

    ``cfg.pretrained=true`` loads torchvision's ImageNet weights (from ``$TORCH_HOME`` if
    cached, else downloaded); ``cfg.weights_path`` loads a local state dict instead. The
    1000-class head is then replaced by a fresh ``num_classes`` head.
    """
    model = resnet18(weights=None)
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
