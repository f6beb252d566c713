"""Any timm model by name (ViT-B/16 for the thesis; ``test_vit``/``test_resnet`` for quick runs)."""

from __future__ import annotations

import timm
from torch import nn

from rrx.errors import RRXError
from rrx.models import register_model


@register_model("timm")
def create_timm(cfg, num_classes: int) -> nn.Module:
    """``timm.create_model(cfg.timm_name)`` with a ``num_classes`` head.

    ``cfg.pretrained=true`` loads timm's weights (from the Hugging Face cache if present,
    else downloaded); ``cfg.weights_path`` loads a local file instead. ViTs are built for
    ``cfg.img_size`` (timm resamples the position embeddings of pretrained weights).
    """
    kwargs = {"num_classes": num_classes}
    if cfg.img_size:
        kwargs["img_size"] = cfg.img_size
    pretrained = bool(cfg.pretrained or cfg.weights_path)
    if cfg.weights_path:
        kwargs["pretrained_cfg_overlay"] = {"file": str(cfg.weights_path)}
    try:
        return timm.create_model(cfg.timm_name, pretrained=pretrained, **kwargs)
    except RuntimeError as err:
        if "Unknown model" in str(err):
            raise RRXError(f"model.timm_name={cfg.timm_name}: {err}") from err
        raise RRXError(f"model {cfg.timm_name}: cannot load pretrained weights ({err}); pass model.weights_path=<file>") from err
    except OSError as err:
        raise RRXError(
            f"model {cfg.timm_name}: cannot load pretrained weights ({err}); without internet, pass model.weights_path=<file>"
        ) from err
