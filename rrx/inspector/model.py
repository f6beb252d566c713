"""The model the Inspector questions (thesis 7.3: "load models from PyTorch or timm"), with its class names.

A checkpoint is opened as ``rrx evaluate`` opens it (``rrx.subject.open_subject``: its own dataset unless
``dataset``/``dataset.*`` is given). ``model=<name>`` keeps the model's own head: a 1000-class model is read with
the ImageNet-1k class names (not mapped to a dataset's classes: the Inspector shows what the model itself says);
rrx's small models (random weights) and zero-shot models take the dataset's classes. A dataset is opened for them
only when the command line names one (or the model needs its classes); without one, images come from uploads.

The page can load another checkpoint (``open_page_checkpoint``), only from under ``inspector.checkpoint_roots``
(``checkpoint_roots``): the path typed is resolved and checked before any file is looked at (``page_checkpoint``),
the file is read without unpickling, and every failure is one fixed message that says nothing of the file.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from rrx.checkpoint import CHECKPOINT
from rrx.config import check
from rrx.data import create_dataset
from rrx.data.base import Benchmark
from rrx.data.label_maps import IMAGENET_CLASSES, imagenet_class_names
from rrx.errors import RRXError
from rrx.inspector.images import dataset_classes
from rrx.models import create_model
from rrx.models.pretrained import is_zero_shot, off_the_shelf
from rrx.runtime import resolve_device, seed_everything
from rrx.subject import open_subject

log = logging.getLogger(__name__)
DEFAULT_SIZE = 224  # uploads of an off-the-shelf model without a dataset or inspector.image_size
NO_ROOTS = (
    "this Inspector loads no other checkpoints: start rrx inspect with "
    "inspector.checkpoint_roots=[/path/to/runs] to load them from under that folder"
)
UNLOADABLE = (
    "that file is not a checkpoint this page can load (an rrx classifier's checkpoint holding only tensors "
    "and plain values, on a dataset that opens here); the server log says why"
)


@dataclass
class Inspected:
    """A model in eval mode with its class names (``classes[k]`` names output k), the side S of its square input,
    the dataset to browse (None: uploads only), the checkpoint's ``checkpoint_state`` (``rrx.evaluate``; None for a
    model without a checkpoint) and a lock: one Streamlit server shares the model between browser sessions, and
    attributions add hooks to it, so every use holds ``lock``."""

    model: torch.nn.Module
    classes: list[str]
    image_size: int
    dataset: object | None
    description: str
    checkpoint_state: dict | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def notice(self) -> str | None:
        """What the page says of a checkpoint whose training did not finish, or may not have; None otherwise."""
        state = self.checkpoint_state
        if state is None or state["finished"]:
            return None
        if state["finished"] is None:
            return (
                "this checkpoint was written by an older rrx, which did not record whether its training finished: "
                "the model may not be the trained one"
            )
        return (
            f"this checkpoint is unfinished (epoch {state['epoch']} of {state['epochs']}): its training stopped "
            "before the last epoch, so the model is not the trained one"
        )


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
        raise RRXError(
            f"the model cannot take {size} px images ({str(err).splitlines()[0]}); set inspector.image_size "
            "to the model's input size"
        ) from err


def open_inspected(cfg: DictConfig, dataset_choice, unpickle_older: bool = True) -> Inspected:
    """The model of ``cfg.checkpoint`` or ``cfg.model`` for the Inspector (see the module docstring).

    ``dataset_choice``: what the command line said of the dataset (``rrx.subject.DatasetChoice``, or a bool);
    ``unpickle_older``: see ``rrx.checkpoint.read_checkpoint`` (True for the command's own checkpoint only).
    """
    check(cfg)
    size = cfg.inspector.image_size
    if cfg.get("model") is None and not cfg.checkpoint:
        raise RRXError(
            "rrx inspect needs checkpoint=<run folder or .pt file>, or model=<name> for any model rrx can "
            "build (e.g. model=resnet18 model.pretrained=true)"
        )
    dataset: Benchmark | None  # None: a model without the dataset (the command line gave none)
    if cfg.get("model") is None or cfg.checkpoint:
        subject = open_subject(cfg, dataset_choice, unpickle_older)
        dataset, model = subject.dataset, subject.build()
        description = f"{subject.run['architecture']} ({subject.run['method']}) from {subject.origin['checkpoint']}"
        state = subject.origin["checkpoint_state"]
    else:
        seed_everything(cfg.seed)
        needs_classes = is_zero_shot(cfg.model) or "weights_path" not in cfg.model  # rrx's small models: random
        dataset = create_dataset(cfg.dataset) if dataset_choice or needs_classes else None
        device = resolve_device(cfg.trainer.device)
        model = (off_the_shelf(cfg.model, dataset) if needs_classes else create_model(cfg.model, None)).to(device)
        description = f"{cfg.model.display_name} ({'pretrained' if cfg.model.get('pretrained') else 'random weights'})"
        state = None
    model.eval()
    size = int(size or (dataset.image_size if dataset is not None else None) or DEFAULT_SIZE)
    classes = class_names(_outputs(model, size), dataset)
    log.info("Inspecting %s: %d classes, %d px images", description, len(classes), size)
    return Inspected(model, classes, size, dataset, description, state)


def with_checkpoint(cfg: DictConfig, checkpoint: str | Path) -> DictConfig:
    """``cfg`` with another checkpoint (the page's model picker), model and dataset from the checkpoint."""
    other = copy.deepcopy(cfg)
    with open_dict(other):
        other.checkpoint = str(checkpoint)
        other.pop("model", None)
    return other


def checkpoint_roots(cfg: DictConfig) -> list[Path]:
    """The folders the page may load checkpoints from, resolved: ``inspector.checkpoint_roots`` (a folder or a list
    of folders, each of which must exist; ``[]``: none), or when that is null the folder holding the command's own
    checkpoint (the run folder of ``checkpoint=<run folder>``, the folder of ``checkpoint=<file.pt>``), and none
    for ``model=<name>`` without a checkpoint."""
    value = cfg.inspector.checkpoint_roots
    if value is None:
        if not cfg.checkpoint:
            return []
        own = Path(str(cfg.checkpoint)).expanduser()
        return [(own if own.is_dir() else own.parent).resolve()]
    items = [value] if isinstance(value, str) else list(value) if OmegaConf.is_list(value) else None
    if items is None or not all(isinstance(item, str) and item.strip() for item in items):
        raise RRXError(f"inspector.checkpoint_roots={value}: give a folder or a list of folders, e.g. [/data/runs]")
    roots = [Path(item).expanduser().resolve() for item in items]
    for item, root in zip(items, roots):
        if not root.is_dir():
            raise RRXError(f"inspector.checkpoint_roots: {item} is not a folder")
    return roots


def _under(path: Path, roots: list[Path]) -> bool:
    return any(path.is_relative_to(root) for root in roots)


def page_checkpoint(text: str, roots: list[Path]) -> Path:
    """The checkpoint file named by ``text`` (typed in the page), when it lies under one of ``roots`` (resolved).

    ``text`` is a run folder (its ``checkpoint.pt``) or a ``.pt`` file; a relative path is taken under the first root
    and ``~`` is a name like any other. The path must lie under a root as written (``..`` collapsed) before anything
    is looked up, and again once its symlinks are followed (``os.path.realpath``: ``Path.resolve`` would also stat
    the result), as must a folder's ``checkpoint.pt``; only then is it looked at. Every path refused, outside the
    roots or inside and missing, gets the same message, which says nothing of what exists there.
    """
    if not roots:
        raise RRXError(NO_ROOTS)
    refused = RRXError(
        f"only checkpoints under {', '.join(map(str, roots))} can be loaded here: a run folder holding "
        f"{CHECKPOINT}, or a .pt file"
    )
    text = text.strip()
    typed = Path(os.path.normpath(roots[0] / text))
    if not text or not _under(typed, roots):
        raise refused
    try:
        file = Path(os.path.realpath(typed))
        if _under(file, roots) and file.is_dir():
            file = Path(os.path.realpath(file / CHECKPOINT))
        found = _under(file, roots) and file.suffix == ".pt" and file.is_file()
    except (OSError, ValueError):  # a NUL byte, a name too long
        found = False
    if not found:
        raise refused
    return file


def open_page_checkpoint(cfg: DictConfig, text: str, roots: list[Path], dataset_choice) -> Inspected:
    """The model of the checkpoint typed in the page (``page_checkpoint``), opened as the command's own would be
    (``open_inspected``) but never with full unpickling. A file that does not open is one fixed message
    (``UNLOADABLE``): the reason, which may quote what the file holds, goes to the server log only."""
    file = page_checkpoint(text, roots)
    try:
        return open_inspected(with_checkpoint(cfg, file), dataset_choice, unpickle_older=False)
    except Exception as err:  # noqa: BLE001 - whatever the file made go wrong, the page shows the same words
        log.warning("the page could not load %s: %s", file, err, exc_info=not isinstance(err, RRXError))
        raise RRXError(UNLOADABLE) from None
