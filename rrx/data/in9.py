"""ImageNet-9 backgrounds-challenge folders (Xiao et al., ICLR 2021): each folder as a torch dataset
(``IN9Folder``), a ``bg_challenge`` root as a benchmark (``BackgroundDataset``, which the synthetic benchmark,
written in this layout, reads too) and ``dataset=in9``.

Layout: ``<root>/<variation>/<split>/<class>/<stem>.JPEG``; the label is the class
folder's index in sorted order. Hidden folders and files (``.ipynb_checkpoints``, ``._x.JPEG``) are ignored.
Object masks are ``<root>/fg_mask/<split>/<class>/<stem>.npy``
(1 on the object); a mixed image ``fg_<stem>_bg_<stem2>.JPEG`` uses its foreground's mask.

Real IN-9 ships no ``fg_mask/train``. There the training mask of ``<stem>`` is derived from
``only_fg/train/<class>/<stem>.JPEG`` (the object on black): a pixel is object when its
brightest channel exceeds ``mask_threshold`` (in [0, 1]). JPEG ringing next to a bright object
can add a one-pixel rim at a low threshold; a high one drops dark object pixels.
The synthetic benchmark writes ``fg_mask/train``, which is then used instead.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, cast

import numpy as np
import torch
from torch.utils.data import Dataset

from rrx.config import param
from rrx.data import register_dataset
from rrx.data.base import (
    AugmentedConfig,
    Benchmark,
    check_classes,
    image_size_key,
    mean_key,
    num_classes_key,
    num_workers_key,
    root_key,
    std_key,
)
from rrx.data.byte_items import to_float
from rrx.data.image_io import BAD_SAMPLE_RULES, IMAGE_SUFFIXES, keep_readable, load_rgb, load_rgb_bytes, resize
from rrx.data.label_maps import IN9_CLASSES, IN9_MAPS, in9_map
from rrx.data.preload import Preloaded, maybe_preload
from rrx.data.variations import VARIATIONS
from rrx.errors import RRXError

log = logging.getLogger(__name__)

LAYOUT = "<root>/<variation>/<split>/<class>/<stem>.JPEG (ImageNet-9 bg_challenge layout)"
TRAIN_SOURCES = ("original", "in9l")  # dataset.train_source


@dataclass
class BackgroundConfig(AugmentedConfig):
    """a bg_challenge folder (rrx.data.in9.BackgroundDataset): what its loader reads

    Besides these, each such dataset gives its num_classes and val_per_class.
    """

    train_source: str = param(
        "original", "original (masks derived from only_fg/train) | in9l (larger, no masks)", choices=TRAIN_SOURCES
    )
    mask_threshold: float = param(
        0.05,
        "object = brightest channel of only_fg/train above this, in [0, 1] (when there is no fg_mask/train)",
        low=0.0,
        high=1.0,
    )
    on_bad_sample: str = param(
        "error", "error | skip (check every image at load, log and count the bad ones)", choices=BAD_SAMPLE_RULES
    )
    preload_gb: float = param(
        4.0,
        "decode a split once into memory (uint8) when it takes at most this many GB; else read it per epoch (0: never)",
        low=0.0,
    )


@dataclass
class IN9Config(BackgroundConfig):
    """ImageNet-9 backgrounds challenge (Xiao et al. 2021): dataset.root=<path>/bg_challenge"""

    name: str = param("in9", "the registered name of the dataset")
    root: Optional[str] = root_key("the bg_challenge folder (<root>/<variation>/<split>/<class>/<stem>.JPEG)")
    num_classes: int = num_classes_key(9, "the number of class folders (checked against them)")
    image_size: int = image_size_key(224)
    mean: List[float] = mean_key(
        [0.4717, 0.4499, 0.3837], "per-channel normalisation mean of 9-class models (reference)"
    )
    std: List[float] = std_key([0.2600, 0.2516, 0.2575], "per-channel normalisation standard deviation (reference)")
    val_per_class: int = param(
        450, "images per class of each val variation; another count is reported as a warning (0: not checked)", low=0
    )
    label_map: str = param(
        "reference",
        "ImageNet-1k models (rrx evaluate model=...): reference (MadryLab's in_to_in9.json) | wordnet "
        "(not the reference's)",
        choices=tuple(IN9_MAPS),
    )
    num_workers: int = num_workers_key(4)


def split_dir(root: Path, variation: str, split: str) -> Path:
    """The folder of one variation and split; a clear error if the layout does not match."""
    if not root.is_dir():
        raise RRXError(f"dataset.root={root} does not exist; point dataset.root at a bg_challenge folder")
    folder = root / variation / split
    if not folder.is_dir():
        raise RRXError(
            f"dataset.root={root} does not match the ImageNet-9 layout: missing folder {folder} (expected {LAYOUT})"
        )
    return folder


def foreground_stem(filename: str) -> str:
    """``fg_<stem>_bg_<stem2>.JPEG`` -> ``<stem>``; ``<stem>.JPEG`` -> ``<stem>``."""
    stem = Path(filename).stem
    if stem.startswith("fg_") and "_bg_" in stem:
        return stem[3 : stem.index("_bg_")]
    return stem


def background_stem(filename: str) -> str | None:
    """``fg_<stem>_bg_<stem2>.JPEG`` -> ``<stem2>``; None for an image that is not mixed."""
    stem = Path(filename).stem
    return stem[stem.index("_bg_") + 4 :] if stem.startswith("fg_") and "_bg_" in stem else None


class IN9Folder(Dataset):
    """One variation and split of an IN-9 root.

    Args:
        root (Path): the ``bg_challenge`` folder.
        variation (str): e.g. ``original``, ``mixed_rand``, ``in9l``.
        split (str): ``train`` or ``val``.
        image_size (int): images and masks are resized to this square size if needed.
        masks (bool, optional): also return the object mask. Default: False.
        mask_threshold (float, optional): for masks derived from ``only_fg``. Default: 0.05.
        skip_bad (bool, optional): check every sample now and drop (and log) unreadable ones
            instead of failing when they are read. Default: False.

    Items are ``(x, y)`` or ``(x, y, m)`` with x (3, S, S) in [0, 1] and m (1, S, S) in {0, 1}.
    """

    def __init__(
        self,
        root: Path,
        variation: str,
        split: str,
        image_size: int,
        masks: bool = False,
        mask_threshold: float = 0.05,
        skip_bad: bool = False,
    ):
        root = Path(root)
        folder = split_dir(root, variation, split)
        self.classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not self.classes:
            raise RRXError(f"{folder} holds no class folders (expected {LAYOUT})")
        self.samples = [
            (path, label)
            for label, name in enumerate(self.classes)
            for path in sorted((folder / name).iterdir())
            if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
        ]
        if not self.samples:
            raise RRXError(f"{folder} holds no images (expected {LAYOUT})")
        self.image_size = image_size
        self.mask_threshold = mask_threshold
        self.mask_dir, self.mask_from_only_fg = None, False
        if masks:
            if (root / "fg_mask" / split).is_dir() or split != "train":
                self.mask_dir = split_dir(root, "fg_mask", split)
            else:
                self.mask_dir, self.mask_from_only_fg = split_dir(root, "only_fg", split), True
        self.skipped: list[str] = []
        if skip_bad:
            self.samples, self.skipped = keep_readable(self.samples, self.__getitem__)

    def __len__(self) -> int:
        return len(self.samples)

    def mask_path(self, index: int) -> Path:
        path, label = self.samples[index]
        suffix = path.suffix if self.mask_from_only_fg else ".npy"
        assert self.mask_dir is not None  # read only for a folder listed with masks
        return self.mask_dir / self.classes[label] / f"{foreground_stem(path.name)}{suffix}"

    def load_mask(self, index: int, shape: tuple[int, int]) -> np.ndarray:
        """The (H, W) boolean object mask of sample ``index``, checked against its image's size."""
        mask_path = self.mask_path(index)
        if not mask_path.is_file():
            raise RRXError(f"no mask for image {self.samples[index][0]}: expected {mask_path}")
        if self.mask_from_only_fg:
            mask = load_rgb(mask_path).max(axis=2) > self.mask_threshold
        else:
            mask = np.load(mask_path) > 0
        if mask.shape != shape:
            raise RRXError(
                f"mask {mask_path} has size {mask.shape}, its image {self.samples[index][0]} has size {shape}"
            )
        return mask

    def byte_item(self, index: int):
        """Item ``index`` as bytes (``rrx.data.byte_items``): x uint8 (3, S, S), m bool (1, S, S). A resized image is
        rounded to the nearest grey level."""
        path, label = self.samples[index]
        array = load_rgb_bytes(path)
        x = torch.from_numpy(array).permute(2, 0, 1)  # (3, H, W)
        if x.shape[-2:] != (self.image_size, self.image_size):  # (bilinear weights are >= 0: no value leaves [0, 255])
            x = resize(x.float(), self.image_size, "bilinear").round_().to(torch.uint8)
        if self.mask_dir is None:
            return x, label
        m = torch.from_numpy(self.load_mask(index, array.shape[:2]))[None]  # (1, H, W) bool
        if m.shape[-2:] != (self.image_size, self.image_size):
            m = resize(m.float(), self.image_size, "nearest").bool()
        return x, label, m

    def __getitem__(self, index: int):
        """(x, y) or (x, y, m): x float32 (3, S, S) in [0, 1], the image's grey levels k / 255; m float32 {0, 1}."""
        return tuple(to_float(self.byte_item(index)))


class BackgroundDataset(Benchmark):
    """A ``bg_challenge`` root: the training set and every evaluation variation.

    Args:
        root (Path): the ``bg_challenge`` folder.
        cfg: the dataset config: ``name``, ``num_classes``, ``image_size``, ``mean``, ``std``,
            ``train_source`` (``original`` or ``in9l``), ``mask_threshold``, ``on_bad_sample``
            (``error`` or ``skip``) and ``val_per_class`` (expected images per class in val).
    """

    has_masks = True
    root: Path
    image_size: int

    def __init__(self, root: Path, cfg):
        self.name = cfg.name
        self.root = Path(root).expanduser()
        self.num_classes = cfg.num_classes
        self.image_size = cfg.image_size
        self.mean, self.std = list(cfg.mean), list(cfg.std)
        self.mask_threshold = cfg.mask_threshold
        self.val_per_class = cfg.val_per_class
        self.skip_bad = cfg.on_bad_sample == "skip"
        self.train_source = cfg.train_source
        self.preload_gb, self.num_workers = float(cfg.preload_gb), int(cfg.num_workers)
        self._folders: dict[tuple[str, str, bool], Folder] = {}  # listed (and checked) once per run
        self.classes: list[str] | None = None  # the first folder listed (the training set), or the checkpoint's
        self.skipped: dict[str, list[str]] = {}  # "<variation>/<split>" -> the bad samples dropped
        self._owners: dict[str, str] | None = None  # original/val's stems and their classes (_original_classes)

    def variations(self) -> list[str]:
        """The IN-9 variations its root holds (``<root>/<variation>/val``), or ``original`` when it holds none."""
        return [v for v in VARIATIONS if (self.root / v / "val").is_dir()] or ["original"]

    def expect_classes(self, names: list[str], where: str) -> None:
        """Every folder listed from now on must have exactly these class folders (a checkpoint's training classes);
        each is checked as it is listed, naming its path."""
        self.classes = list(names)

    def train_set(self, masks: bool) -> Folder:
        if masks and self.train_source == "in9l":
            raise RRXError(
                "dataset.train_source=in9l has no object masks; this method needs them: use train_source=original"
            )
        return self._folder(self.train_source, "train", masks)

    def variation_set(self, variation: str, masks: bool = False) -> Folder:
        return self._folder(variation, "val", masks)

    def image_info(self, variation: str, data: Dataset) -> dict[str, list]:
        """Each file relative to ``root``; a mixed image ``fg_<stem>_bg_<stem2>`` has the class of ``original/val``'s
        ``<stem2>`` as its ``background_class`` (the image whose background it shows; IN-9's and the synthetic
        benchmark's mixed images are named so), None where no such image is there."""
        samples = cast(Folder, data).samples
        owners = self._original_classes() if variation.startswith("mixed") else {}
        return {
            "image": [str(Path(path).relative_to(self.root)) for path, _ in samples],
            "background_class": [owners.get(background_stem(Path(path).name) or "") for path, _ in samples],
        }

    def _original_classes(self) -> dict[str, str]:
        """``<stem>`` -> its class folder in ``original/val`` (listed, not read)."""
        if self._owners is None:
            folder = self.root / "original" / "val"
            self._owners = (
                {file.stem: file.parent.name for file in folder.glob("*/*") if file.is_file()}
                if folder.is_dir()
                else {}
            )
        return self._owners

    def _folder(self, variation: str, split: str, masks: bool) -> Folder:
        key = (variation, split, masks)
        if key in self._folders:
            return self._folders[key]
        masked = self._folders.get((variation, split, True))
        if not masks and masked is not None and not masked.skipped:  # read (and preloaded) once, masks dropped
            self._folders[key] = WithoutMasks(masked)  # (not when images were skipped for their masks alone)
            return self._folders[key]
        data = IN9Folder(self.root, variation, split, self.image_size, masks, self.mask_threshold, self.skip_bad)
        folder = self.root / variation / split
        if self.classes is None:
            if len(data.classes) != self.num_classes:
                raise RRXError(
                    f"{folder} has {len(data.classes)} class folders {data.classes}, "
                    f"dataset.num_classes={self.num_classes}; set dataset.num_classes to match"
                )
            self.classes = data.classes
        else:
            check_classes(data.classes, self.classes, str(folder))
        if data.skipped:
            self.skipped[f"{variation}/{split}"] = data.skipped
        counts = Counter(label for _, label in data.samples)
        per_class = [counts[k] for k in range(self.num_classes)]
        log.info(
            "%s/%s: %d images, per class %s%s",
            variation,
            split,
            len(data),
            per_class,
            f", {len(data.skipped)} skipped" if data.skipped else "",
        )
        if split == "val" and self.val_per_class and any(n != self.val_per_class for n in per_class):
            log.warning(
                "%s/%s has %s images per class; expected %d per class", variation, split, per_class, self.val_per_class
            )
        loaded = maybe_preload(data, self.image_size, masks, self.preload_gb, self.num_workers, f"{variation}/{split}")
        self._folders[key] = loaded
        return loaded


class WithoutMasks(Dataset):
    """A dataset of (x, y, m) items as (x, y): a variation already read with its masks serves the challenges that
    read it without (``byte_item`` too, so its batches still cross the loader boundary as bytes); its other
    attributes (``samples``, ``classes``, ...) are ``masked``'s."""

    def __init__(self, masked: Folder):
        self.masked = masked

    def __len__(self) -> int:
        return len(self.masked)

    def __getitem__(self, index: int):
        return self.masked[index][:2]

    def byte_item(self, index: int):
        return self.masked.byte_item(index)[:2]

    def __getattr__(self, name: str):
        if name == "masked":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.masked, name)


Folder = IN9Folder | WithoutMasks | Preloaded  # a variation and split as ``BackgroundDataset`` gives it


class IN9(BackgroundDataset):
    """ImageNet-9 itself: a ``bg_challenge`` root whose classes are the nine IN-9 classes, so an ImageNet-1k model is
    scored on it through the map ``dataset.label_map`` (``rrx.data.label_maps``)."""

    def imagenet_label_map(self, map_name: str = "reference") -> tuple[torch.Tensor, str]:
        names = [c.split("_", 1)[-1] for c in self.classes or []]
        if names and names != list(IN9_CLASSES):
            raise RRXError(
                f"dataset=in9 has classes {self.classes}; the ImageNet-1k -> IN-9 mapping is for {list(IN9_CLASSES)}"
            )
        return in9_map(map_name), map_name


@register_dataset("in9", config=IN9Config)
def in9(cfg) -> IN9:
    """A real ImageNet-9 ``bg_challenge`` root given by ``dataset.root``."""
    if not cfg.root:
        raise RRXError("dataset=in9 needs dataset.root=<path to bg_challenge>")
    return IN9(Path(cfg.root), cfg)
