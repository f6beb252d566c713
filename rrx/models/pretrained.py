"""Off-the-shelf models for ``rrx evaluate model=<name>``: any timm/torchvision ImageNet-1k classifier, or a
zero-shot vision-language model, scored on a dataset's classes."""

from __future__ import annotations

import logging
from typing import cast

import torch

from rrx.data.label_maps import IMAGENET_CLASSES
from rrx.errors import RRXError
from rrx.models import create_model
from rrx.models.classifier import Classifier

log = logging.getLogger(__name__)

ZERO_SHOT = ("clip", "align")


def is_zero_shot(cfg) -> bool:
    return cfg.name in ZERO_SHOT


def method_label(cfg) -> str:
    """The Method column of an off-the-shelf model: ``Top-1`` / ``Descriptors`` (zero-shot, thesis Tables 12-13),
    ``Pretrained``, or ``Random weights``."""
    if is_zero_shot(cfg):
        return "Descriptors" if cfg.descriptors else "Top-1"
    return "Pretrained" if cfg.get("pretrained") or cfg.get("weights_path") else "Random weights"


@torch.no_grad()
def _outputs(model: Classifier, image_size: int, name: str) -> int:
    """The model's number of outputs, from one forward pass at the dataset's image size."""
    try:
        return model.eval()(torch.zeros(1, 3, image_size, image_size)).shape[1]
    except (AssertionError, RuntimeError, ValueError) as err:  # e.g. a ViT built for another input size
        raise RRXError(
            f"model {name} cannot take {image_size} px images ({str(err).splitlines()[0]}); set "
            f"model.img_size={image_size} (timm ViTs) or dataset.image_size to the model's input size"
        ) from err


def off_the_shelf(cfg, dataset, label_map: str = "reference") -> Classifier:
    """``cfg`` (a model config) built with its own head and normalisation and scored on ``dataset``'s classes.

    A zero-shot model embeds the dataset's class names; one of rrx's small models (no weights of its own) is a random
    baseline with the dataset's classes. A classifier with as many outputs as the dataset has
    classes is used as it is (e.g. the reference's IN-9 ResNet-50 given by ``model.weights_path``); a 1000-class
    one is read through the dataset's map from ImageNet-1k classes (``Benchmark.imagenet_label_map``; on IN-9 the map
    ``label_map``, the name of the map used is then ``model.label_map_name``); any other count is an error.
    """
    if is_zero_shot(cfg):
        return cast(Classifier, create_model(cfg, None, classes=list(dataset.classes)))
    if not cfg.get("pretrained") and not cfg.get("weights_path"):
        log.warning("model %s has random weights (model.pretrained=false): its accuracy is chance level", cfg.name)
    if "weights_path" not in cfg:  # rrx's small models have no weights of their own: random, with the dataset's classes
        return cast(Classifier, create_model(cfg, dataset.num_classes, dataset.mean, dataset.std))
    model = cast(Classifier, create_model(cfg, None))  # a classifier model: create_model wraps it in a Classifier
    outputs = _outputs(model, dataset.image_size or 224, cfg.get("arch", cfg.name))
    if outputs == dataset.num_classes:
        return model
    if outputs != IMAGENET_CLASSES:
        raise RRXError(
            f"model {cfg.name} has {outputs} outputs and dataset {dataset.name} {dataset.num_classes} classes; "
            f"rrx maps only ImageNet-1k ({IMAGENET_CLASSES}) outputs to a dataset's classes"
        )
    model.label_map, model.label_map_name = dataset.imagenet_label_map(label_map)
    log.info(
        "ImageNet-1k predictions mapped to %s by the %s map: %d of 1000 classes belong to one of its %d classes",
        dataset.name,
        model.label_map_name,
        int((model.label_map >= 0).sum()),
        dataset.num_classes,
    )
    return model
