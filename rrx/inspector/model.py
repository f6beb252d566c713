"""The model the Inspector questions (thesis 7.3: "load models from PyTorch or timm"), with its class names.

A checkpoint is opened as ``rrx evaluate`` opens it (``rrx.evaluate.open_subject``: its own dataset unless
``dataset``/``dataset.*`` is given). ``model=<name>`` keeps the model's own head: a 1000-class model is read with
the ImageNet-1k class names (not mapped to a dataset's classes: the Inspector shows what the model itself says);
rrx's small models (random weights) and zero-shot models take the dataset's classes. A dataset is opened for them
only when the command line names one (or the model needs its classes); without one, images come from uploads.
"""

from __future__ import annotations

import copy
import logging
import threading
from dataclasses import dataclass, field

import torch
from omegaconf import DictConfig, open_dict

from rrx.data import create_dataset
from rrx.data.label_maps import IMAGENET_CLASSES, imagenet_class_names
from rrx.errors import RRXError
from rrx.evaluate import open_subject
from rrx.inspector.images import dataset_classes
from rrx.models import create_model
from rrx.models.pretrained import is_zero_shot, off_the_shelf
from rrx.runtime import resolve_device, seed_everything
from rrx.schema import validate

log = logging.getLogger(__name__)
DEFAULT_SIZE = 224  # uploads of an off-the-shelf model without a dataset or inspector.image_size


@dataclass
class Inspected:
    """A model in eval mode with its class names (``classes[k]`` names output k), the side S of its square input,
    the dataset to browse (None: uploads only) and a lock: one Streamlit server shares the model between browser
    sessions, and attributions add hooks to it, so every use holds ``lock``."""

    model: torch.nn.Module
    classes: list[str]
    image_size: int
    dataset: object | None
    description: str
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def class_names(outputs: int, dataset) -> list[str]:
    """Names of a model's ``outputs`` classes: the dataset's when they match, ImageNet-1k's for 1000, else indices."""
    names = dataset_classes(dataset, "original") if dataset is not None else []
    if len(names) == outputs:
        return names
    if outputs == IMAGENET_CLASSES:
        return imagenet_class_names()
    return [f"class {k}" for k in range(outputs)]


@torch.no_grad()
def _outputs(model: torch.nn.Module, size: int) -> int:
    try:
        return model(torch.zeros(1, 3, size, size, device=next(model.parameters()).device)).shape[1]
    except (AssertionError, RuntimeError, ValueError) as err:
        raise RRXError(f"the model cannot take {size} px images ({str(err).splitlines()[0]}); set inspector.image_size "
                       "to the model's input size") from err


def open_inspected(cfg: DictConfig, dataset_overridden: bool) -> Inspected:
    """The model of ``cfg.checkpoint`` or ``cfg.model`` for the Inspector (see the module docstring)."""
    validate(cfg)
    size = cfg.inspector.get("image_size")
    if cfg.get("model") is None and not cfg.checkpoint:
        raise RRXError("rrx inspect needs checkpoint=<run folder or .pt file>, or model=<name> for any model rrx can "
                       "build (e.g. model=resnet18 model.pretrained=true)")
    if cfg.get("model") is None or cfg.checkpoint:
        subject = open_subject(cfg, dataset_overridden)
        dataset, model = subject.dataset, subject.build()
        description = f"{subject.run['architecture']} ({subject.run['method']}) from {subject.record['checkpoint']}"
    else:
        seed_everything(cfg.seed)
        needs_classes = is_zero_shot(cfg.model) or "weights_path" not in cfg.model  # rrx's small models: random
        dataset = create_dataset(cfg.dataset) if dataset_overridden or needs_classes else None
        device = resolve_device(cfg.trainer.device)
        model = (off_the_shelf(cfg.model, dataset) if needs_classes else create_model(cfg.model, None)).to(device)
        description = f"{cfg.model.display_name} ({'pretrained' if cfg.model.get('pretrained') else 'random weights'})"
    model.eval()
    size = int(size or getattr(dataset, "image_size", None) or DEFAULT_SIZE)
    classes = class_names(_outputs(model, size), dataset)
    log.info("Inspecting %s: %d classes, %d px images", description, len(classes), size)
    return Inspected(model, classes, size, dataset, description)


def with_checkpoint(cfg: DictConfig, checkpoint: str) -> DictConfig:
    """``cfg`` with another checkpoint (the page's model picker), model and dataset from the checkpoint."""
    other = copy.deepcopy(cfg)
    with open_dict(other):
        other.checkpoint = checkpoint.strip()
        other.pop("model", None)
    return other
