"""Any timm model by name (ViT-B/16 for the thesis; ``test_vit`` for quick runs; any ImageNet-1k model to evaluate)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from torch import nn

from rrx.config import param
from rrx.errors import RRXError
from rrx.models import register_model
from rrx.models.weights import (
    WeightsConfig,
    close_matches,
    hf_cache_dir,
    hf_hub_file,
    missing_weights,
    torch_hub_file,
)


@dataclass
class TimmConfig(WeightsConfig):
    """any timm model by name (rrx evaluate model=timm model.arch=resnet50 model.pretrained=true ...)"""

    name: str = param("timm", "the registered name of the model")
    display_name: str = param("${.arch}", "the Architecture column of the tables and figures")
    arch: str = param("resnet50", "the timm model name (timm.list_models())")
    img_size: int | None = param(None, "ViTs: the input side the model is built for (null: the model's own)", low=1)


DATASET_IMAGE_SIZE: Any = "${dataset.image_size}"  # an interpolation: the ViT is built for the dataset's images
PRESETS = {
    # ViT-B/16 ImageNet-21k, as in the thesis; pretrained=true reads the HF cache or weights_path
    "vit_b16": TimmConfig(
        name="timm", display_name="ViT", arch="vit_base_patch16_224.augreg_in21k", img_size=DATASET_IMAGE_SIZE
    ),
    # timm's tiny test ViT (0.3 M parameters, patch 16): the ViT code path on a CPU in seconds
    "vit_test": TimmConfig(name="timm", display_name="ViT (test)", arch="test_vit", img_size=DATASET_IMAGE_SIZE),
}


def timm_weights_file(arch: str, cfg) -> str | None:
    """The local weights file of ``arch``: ``cfg.weights_path``, else with ``cfg.pretrained`` timm's file in the
    Hugging Face cache or the torch.hub cache; None when timm may download (``cfg.download``) or weights are random."""
    if cfg.weights_path:
        return str(cfg.weights_path)
    if not cfg.pretrained or cfg.download:
        return None
    import timm  # here, not at import: timm adds 0.4 s to every command

    pretrained_cfg = timm.models.get_pretrained_cfg(arch)
    looked = []
    if pretrained_cfg is not None and pretrained_cfg.hf_hub_id:
        found = hf_hub_file(pretrained_cfg.hf_hub_id)
        if found is not None:
            return str(found)
        looked.append(f"{hf_cache_dir()} ({pretrained_cfg.hf_hub_id})")
    if pretrained_cfg is not None and pretrained_cfg.url:
        # timm's hint allows a (url, file) pair; its registered cfgs give a str
        file = torch_hub_file(cast(str, pretrained_cfg.url))
        if file.is_file():
            return str(file)
        looked.append(str(file))
    raise missing_weights(arch, looked or ["timm knows no pretrained weights for it"])


@register_model("timm", config=TimmConfig, presets=PRESETS)
def create_timm(cfg, num_classes: int | None) -> nn.Module:
    """``timm.create_model(model.arch)`` with a ``num_classes`` head (``None``: the model's own, e.g. ImageNet-1k).

    Weights: ``model.weights_path``, else with ``model.pretrained=true`` the local caches (``timm_weights_file``);
    ``model.download=true`` lets timm fetch them. ViTs are built for ``cfg.img_size`` when it is set (timm
    resamples the position embeddings of pretrained weights).
    """
    import timm

    arch = cfg.arch
    if not timm.is_model(arch):
        raise RRXError(f"model.arch={arch}: timm has no such model{close_matches(arch, timm.list_models())}")
    kwargs: dict[str, Any] = {} if num_classes is None else {"num_classes": num_classes}
    if cfg.img_size:
        kwargs["img_size"] = cfg.img_size
    file = timm_weights_file(arch, cfg)
    if file is not None:
        kwargs["pretrained_cfg_overlay"] = {"file": file}
    try:
        model = timm.create_model(arch, pretrained=bool(cfg.pretrained or file), **kwargs)
    except (RuntimeError, OSError) as err:
        raise RRXError(
            f"model {arch}: cannot load pretrained weights ({str(err).splitlines()[0]}); pass model.weights_path=<file>"
        ) from err
    pretrained_cfg: dict[str, Any] = getattr(model, "pretrained_cfg")  # timm sets it on every model it creates
    # a plain attribute: nn.Module's typed __setattr__ takes modules and tensors only
    setattr(model, "normalisation", (pretrained_cfg["mean"], pretrained_cfg["std"]))
    return model
