"""Which models, methods and datasets each task takes: one ``rrx: error:`` line naming the valid ones otherwise."""

from __future__ import annotations

import logging

from rrx.errors import RRXError, check_choice
from rrx.segmentation.ada import ATTRIBUTIONS
from rrx.segmentation.data import OBJECT_MASK_DATASETS

log = logging.getLogger(__name__)

SEGMENTATION_MODELS = ("unet",)
SEGMENTATION_METHODS = ("standard", "ada")  # plain training, and the thesis's ADA protocol (ch. 3)
SEGMENTATION_DATASETS = (*OBJECT_MASK_DATASETS, "scgm")
SEGMENTATION_ONLY_DATASETS = ("scgm",)
LOSSES = ("dice", "bce")
AUGMENTS = ("table2", "none")


def check_classification(cfg) -> None:
    """A segmentation model or dataset with ``task=classification`` (the default) is an error naming the fix."""
    if cfg.model.name in SEGMENTATION_MODELS:
        raise RRXError(f"model={cfg.model.name} segments images and cannot classify: use task=segmentation, or a "
                       "classifier (e.g. model=resnet18)")
    if cfg.dataset.name in SEGMENTATION_ONLY_DATASETS:
        raise RRXError(f"dataset={cfg.dataset.name} is a segmentation dataset: use task=segmentation")


def check_segmentation(cfg) -> None:
    """Everything ``task=segmentation`` needs of the config, before any data is read."""
    if cfg.model.name not in SEGMENTATION_MODELS:
        raise RRXError(f"task=segmentation needs a model that segments: model={cfg.model.name} cannot; "
                       f"valid: {', '.join(f'model={m}' for m in SEGMENTATION_MODELS)}")
    if cfg.method.name not in SEGMENTATION_METHODS:
        raise RRXError(f"task=segmentation trains with {' or '.join(f'method={m}' for m in SEGMENTATION_METHODS)}; "
                       f"method={cfg.method.name} cannot segment")
    if cfg.method.get("rrda"):
        raise RRXError("method.rrda=true is for classification (RRDA pastes objects onto other images' backgrounds); "
                       "use method.rrda=false with task=segmentation")
    if cfg.attack.name != "none":
        raise RRXError(f"attack={cfg.attack.name} is for classification; use attack=none with task=segmentation")
    if cfg.dataset.name not in SEGMENTATION_DATASETS:
        raise RRXError(f"task=segmentation needs object masks: dataset={cfg.dataset.name} has none to segment; "
                       f"valid: {', '.join(SEGMENTATION_DATASETS)}")
    if int(cfg.trainer.devices) * int(cfg.trainer.num_nodes) != 1:
        raise RRXError("task=segmentation trains on one device: use trainer.devices=1 trainer.num_nodes=1")
    seg = cfg.segmentation
    check_choice("segmentation.loss", seg.loss, LOSSES)
    check_choice("segmentation.augment", seg.augment, AUGMENTS)
    if cfg.method.name == "ada":
        for name in seg.attributions:
            check_choice("segmentation.attributions", name, ATTRIBUTIONS)
        if len(set(seg.attributions)) != len(seg.attributions):
            raise RRXError(f"segmentation.attributions={list(seg.attributions)} names a method twice")
        if not seg.attributions and not seg.baseline:
            raise RRXError("method=ada with segmentation.attributions=[] and segmentation.baseline=false has nothing to "
                           "train after the standard epochs: give an attribution method")
        if not seg.attributions:
            log.warning("segmentation.attributions=[]: after the standard epochs only the plain fork (no ADA) trains; "
                        "give attribution methods for ADA's forks")
        if int(cfg.method.cycles) * int(cfg.method.ada_epochs) < 1:
            raise RRXError(f"method.cycles={cfg.method.cycles}: the segmentation protocol picks each fork's best epoch "
                           "among its ADA epochs, so it needs at least one cycle")
