"""Models (config group ``model``): ``create_model(cfg, num_classes, mean, std)`` by ``cfg.name``: a classifier, or
for a model that segments (``model=unet``, registered with ``register_segmenter``) the whole segmenter."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig
from torch import nn

from rrx.config import ComponentConfig, param
from rrx.models.classifier import Classifier
from rrx.registry import Registry

MODELS = Registry("model", __name__)
register_model = MODELS.register
SEGMENTERS: set[str] = set()  # the registered models that segment


@dataclass
class ModelConfig(ComponentConfig):
    """what every model has: the name of its tables and figures"""

    display_name: str = param("", "the Architecture column of the tables and figures")


def register_segmenter(name: str, config: type | None = None, presets: dict | None = None):
    """Register a model that segments: its factory ``(cfg, in_channels, mean, std, image_size)`` returns the whole
    model, which takes [0, 1] images and normalises inside (``rrx.models.unet``)."""
    SEGMENTERS.add(name)
    return MODELS.register(name, config=config, presets=presets)


def create_model(
    cfg,
    num_classes: int | None,
    mean=None,
    std=None,
    classes=None,
    label_map=None,
    channels: int = 3,
    image_size: int | None = None,
) -> nn.Module:
    """Backbone from the registry wrapped so it takes [0, 1] images and normalises inside (a ``Classifier``); a model
    that segments is built whole for images of ``channels`` channels and side ``image_size`` (``num_classes``,
    ``classes`` and ``label_map`` do not apply to it).

    ``num_classes=None`` keeps the model's own head (an off-the-shelf ImageNet-1k model, or a zero-shot model,
    whose classes are ``classes``); ``mean=None`` uses the model's own normalisation (``backbone.normalisation``);
    ``label_map`` scores its classes on a dataset's (``Classifier``).
    """
    from rrx.config import typed

    factory = MODELS.get(cfg["name"])
    cfg = typed("model", cfg)  # a key the model lacks (``pretrained`` of one without weights) is one RRXError
    if cfg.name in SEGMENTERS:
        return factory(cfg, channels, mean, std, image_size)
    backbone = factory(cfg, num_classes)
    if hasattr(backbone, "set_classes"):  # zero-shot: the class texts are embedded once
        backbone.set_classes(classes)
    if mean is None:
        mean, std = backbone.normalisation
    return Classifier(backbone, mean, std, label_map)


def list_models() -> list[str]:
    return MODELS.names()


def model_config(option: str, **values) -> DictConfig:
    """The typed config of ``model=<option>`` (a registered model or a preset such as ``vit_test``) with ``values``
    set, as the command line composes it (``rrx.config.component``): ``create_model(model_config("vit_test",
    img_size=32), ...)``. A preset's interpolations (``img_size: ${dataset.image_size}``) need a value here."""
    from rrx.config import component

    return component("model", option, **values)


def model_from_checkpoint(ckpt: dict, dataset, channels: int = 3):
    """The classifier a checkpoint trained, with its weights, for ``dataset`` (its classes, mean and std); on the
    CPU. The state dict replaces any pretrained weights, so none are loaded. A ``task=segmentation`` checkpoint's
    model is its segmenter (the last fork's best epoch) for images of ``channels`` channels at its image size."""
    from typing import cast

    from omegaconf import DictConfig, OmegaConf

    from rrx.checkpoint import saved_config
    from rrx.config import typed

    trained = saved_config(ckpt["config"])
    no_weights = {k: v for k, v in {"pretrained": False, "weights_path": None}.items() if k in trained.model}
    model_cfg = typed("model", cast(DictConfig, OmegaConf.merge(trained.model, no_weights)))
    size = int(trained.dataset.image_size) if "image_size" in trained.get("dataset", {}) else None
    model = create_model(model_cfg, dataset.num_classes, dataset.mean, dataset.std, channels=channels, image_size=size)
    model.load_state_dict(ckpt["state_dict"])
    return model
