"""Plain labelled-image datasets (CIFAR-10, STL-10, an image-folder tree): a train and a test split, no
background variations. ``variation_set("original")`` is the test split; masks exist only where the dataset
ships them (``has_masks``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Protocol, Sequence, cast

import numpy as np
import torch
from torch.utils.data import Dataset

from rrx.data.base import Benchmark
from rrx.data.image_io import resize
from rrx.errors import RRXError

log = logging.getLogger(__name__)
NEVER_DOWNLOADS = "rrx never downloads datasets"


class LoadedSplit(Protocol):
    """What ``ImageTask``'s ``load`` returns has, besides a Dataset's items (``FolderImages``, ``ArrayImages``)."""

    skipped: list[str]

    @property
    def labels(self) -> Sequence[int] | torch.Tensor: ...

    def __len__(self) -> int: ...


class ImageTask(Benchmark):
    """The train and test splits of a dataset that has only the ``original`` variation.

    Args:
        name (str): ``dataset.name``.
        classes (list[str]): class names; label k is ``classes[k]``.
        load (Callable[[str, bool], Dataset]): ``load(split, masks)`` for split ``train`` or ``test``; called
            once per (split, masks). The dataset has ``labels``, and lists the unreadable samples it dropped in
            ``skipped``.
        mean, std (list[float]): the normalisation.
        image_size (int): the side every image (and mask) is resized to.
        has_masks (bool, optional): whether the dataset has object masks; without them a request for masks is
            an error naming the dataset. Default: False.
        masks_layout (str, optional): where masks would be, for that error. Default: None (the dataset never
            has masks).
    """

    def __init__(
        self,
        name: str,
        classes: list[str],
        load: Callable[[str, bool], Dataset],
        mean,
        std,
        image_size: int,
        has_masks: bool = False,
        masks_layout: str | None = None,
    ):
        self.name = name
        self.classes = list(classes)
        self.num_classes = len(self.classes)
        self.mean, self.std = list(mean), list(std)
        self.image_size = image_size
        self.has_masks = has_masks
        self.masks_layout = masks_layout
        self._load = load
        self._sets: dict[tuple[str, bool], Dataset] = {}
        self.skipped: dict[str, list[str]] = {}  # split -> the bad samples dropped

    def train_set(self, masks: bool) -> Dataset:
        return self._split("train", masks)

    def variation_set(self, variation: str, masks: bool = False) -> Dataset:
        if variation != "original":
            raise RRXError(
                f"dataset {self.name} has only the 'original' variation (its test split), not {variation!r}; "
                "use challenge=original"
            )
        return self._split("test", masks)

    def _split(self, split: str, masks: bool) -> Dataset:
        if masks and not self.has_masks:
            where = f"expected {self.masks_layout}" if self.masks_layout else "images and labels only"
            raise RRXError(
                f"dataset {self.name} has no object masks ({where}), and this method, challenge or analysis "
                "needs them: use one without masks (e.g. method=standard challenge=original)"
            )
        key = (split, masks)
        if key not in self._sets:
            data = self._load(split, masks)
            loaded = cast(LoadedSplit, data)
            if loaded.skipped:
                self.skipped[split] = loaded.skipped
            counts = torch.as_tensor(loaded.labels, dtype=torch.long).bincount(minlength=self.num_classes).tolist()
            log.info("%s %s: %d images, per class %s", self.name, split, len(loaded), counts)
            self._sets[key] = data
        return self._sets[key]


class ArrayImages(Dataset):
    """Images held in memory as uint8 (N, 3, H, W) with labels (N,); items are (x (3, S, S) in [0, 1], label),
    resized to ``image_size`` S when it differs from H x W."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, image_size: int):
        self.images, self.labels, self.image_size = images, labels, image_size
        self.skipped: list[str] = []  # none: the arrays are read whole

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        x = self.images[index].float().div(255)  # (3, H, W)
        return resize(x, self.image_size, "bilinear"), int(self.labels[index])


def array_task(cfg, classes: list[str], splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> ImageTask:
    """An ImageTask without masks from in-memory splits
    {"train": (images (N, 3, H, W) uint8, labels (N,)), "test": ...}."""
    tensors = {split: (torch.from_numpy(x), torch.from_numpy(y)) for split, (x, y) in splits.items()}
    return ImageTask(
        cfg.name,
        classes,
        lambda split, masks: ArrayImages(*tensors[split], cfg.image_size),
        cfg.mean,
        cfg.std,
        cfg.image_size,
    )


def find_folder(root, name: str, required: list[str], dataset: str, layout: str) -> Path:
    """The folder ``root/<name>``, or ``root`` itself when it is that folder, holding every ``required`` file;
    otherwise one RRXError naming the path, the expected ``layout`` and the missing files."""
    if not root:
        raise RRXError(
            f"dataset={dataset} needs dataset.root=<folder holding {name}/> (expected {layout}); {NEVER_DOWNLOADS}"
        )
    root = Path(root).expanduser()
    if not root.is_dir():
        raise RRXError(f"dataset.root={root} does not exist (expected {layout}); {NEVER_DOWNLOADS}")
    for folder in (root / name, root):
        if all((folder / f).is_file() for f in required):
            return folder
    folder = root / name if (root / name).is_dir() else root
    missing = [f for f in required if not (folder / f).is_file()]
    raise RRXError(
        f"dataset.root={root} does not match the {dataset} layout: {folder} lacks {', '.join(missing)} "
        f"(expected {layout}); {NEVER_DOWNLOADS}"
    )


def check_num_classes(classes: list[str], num_classes, where: str) -> None:
    """Stop unless ``dataset.num_classes`` equals the number of classes found at ``where``."""
    if num_classes != len(classes):
        raise RRXError(
            f"{where} has {len(classes)} classes {classes}, dataset.num_classes={num_classes}; "
            "set dataset.num_classes to match"
        )
