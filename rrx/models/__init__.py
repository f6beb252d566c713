"""Models (config group ``model``): ``create_model(cfg, num_classes, mean, std)`` by ``cfg.name``."""

from __future__ import annotations

from rrx.errors import RRXError
from rrx.models.classifier import Classifier
from rrx.registry import Registry

MODELS = Registry("model", __name__)
register_model = MODELS.register


def create_model(cfg, num_classes: int | None, mean=None, std=None, classes=None, label_map=None) -> Classifier:
    """Backbone from the registry wrapped so it takes [0, 1] images and normalises inside.

    ``num_classes=None`` keeps the model's own head (an off-the-shelf ImageNet-1k model, or a zero-shot model,
    whose classes are ``classes``); ``mean=None`` uses the model's own normalisation (``backbone.normalisation``);
    ``label_map`` scores its classes on a dataset's (``Classifier``).
    """
    if cfg.get("pretrained") and "weights_path" not in cfg:  # models with weights have a weights_path in their config
        raise RRXError(f"model={cfg.name} has no pretrained weights; set model.pretrained=false")
    backbone = MODELS.get(cfg.name)(cfg, num_classes)
    if hasattr(backbone, "set_classes"):  # zero-shot: the class texts are embedded once
        backbone.set_classes(classes)
    if mean is None:
        mean, std = backbone.normalisation
    return Classifier(backbone, mean, std, label_map)


def list_models() -> list[str]:
    return MODELS.names()

