"""Models (config group ``model``): ``create_model(cfg, num_classes, mean, std)`` by ``cfg.name``."""

from __future__ import annotations

from rrx.errors import RRXError
from rrx.models.classifier import Classifier
from rrx.registry import Registry

MODELS = Registry("model", __name__)
register_model = MODELS.register


def create_model(cfg, num_classes: int, mean, std) -> Classifier:
    """Backbone from the registry wrapped so it takes [0, 1] images and normalises inside."""
    if cfg.get("pretrained") and "weights_path" not in cfg:  # models with weights have a weights_path in their config
        raise RRXError(f"model={cfg.name} has no pretrained weights; set model.pretrained=false")
    backbone = MODELS.get(cfg.name)(cfg, num_classes)
    return Classifier(backbone, mean, std)


def list_models() -> list[str]:
    return MODELS.names()

