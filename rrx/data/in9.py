"""ImageNet-9 backgrounds-challenge folders (Xiao et al., ICLR 2021) as torch datasets.

Layout: ``<root>/<variation>/<split>/<class>/<stem>.JPEG``; the label is the class
folder's index in sorted order. Hidden folders and files (``.ipynb_checkpoints``, ``._x.JPEG``) are ignored. Object masks are ``<root>/fg_mask/<split>/<class>/<stem>.npy``
(1 on the object); a mixed image ``fg_<stem>_bg_<stem2>.JPEG`` uses its foreground's mask.

Real IN-9 ships no ``fg_mask/train``. There the training mask of ``<stem>`` is derived from
``only_fg/train/<class>/<stem>.JPEG`` (the object on black): a pixel is object when its
brightest channel exceeds ``mask_threshold`` (in [0, 1]). JPEG ringing next to a bright object
can add a one-pixel rim at a low threshold; a high one drops dark object pixels.
The synthetic benchmark writes ``fg_mask/train``, which is then used instead.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from rrx.data.byte_items import to_float
from rrx.errors import RRXError

log = logging.getLogger(__name__)

LAYOUT = "<root>/<variation>/<split>/<class>/<stem>.JPEG (ImageNet-9 bg_challenge layout)"
BAD_SAMPLE_RULES = ("error", "skip")  # dataset.on_bad_sample: stop naming the file, or check all and drop bad ones
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")


def split_dir(root: Path, variation: str, split: str) -> Path:
    """The folder of one variation and split; a clear error if the layout does not match."""
    if not root.is_dir():
        raise RRXError(f"dataset.root={root} does not exist; point dataset.root at a bg_challenge folder")
    folder = root / variation / split
    if not folder.is_dir():
        raise RRXError(f"dataset.root={root} does not match the ImageNet-9 layout: missing folder {folder} (expected {LAYOUT})")
    return folder


def foreground_stem(filename: str) -> str:
    """``fg_<stem>_bg_<stem2>.JPEG`` -> ``<stem>``; ``<stem>.JPEG`` -> ``<stem>``."""
    stem = Path(filename).stem
    if stem.startswith("fg_") and "_bg_" in stem:
        return stem[3 : stem.index("_bg_")]
    return stem


def load_rgb_bytes(path: Path) -> np.ndarray:
    """(H, W, 3) uint8; an unreadable file is an RRXError naming it."""
    try:
        with Image.open(path) as img:
            return np.array(img.convert("RGB"), dtype=np.uint8)
    except OSError as err:
        raise RRXError(f"cannot read image {path}: {err}") from err


def load_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1]; an unreadable file is an RRXError naming it."""
    return load_rgb_bytes(path).astype(np.float32) / 255.0


def keep_readable(samples: list, load) -> tuple[list, list[str]]:
    """The samples whose ``load(index)`` succeeds, and the errors of the others (each logged)."""
    good, skipped = [], []
    for index, sample in enumerate(samples):
        try:
            load(index)
        except RRXError as err:
            skipped.append(str(err))
            log.warning("skipped: %s", err)
            continue
        good.append(sample)
    return good, skipped


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
            raise RRXError(f"mask {mask_path} has size {mask.shape}, its image {self.samples[index][0]} has size {shape}")
        return mask

    def byte_item(self, index: int):
        """Item ``index`` as bytes (``rrx.data.byte_items``): x uint8 (3, S, S), m bool (1, S, S). A resized image is
        rounded to the nearest grey level."""
        path, label = self.samples[index]
        array = load_rgb_bytes(path)
        x = torch.from_numpy(array).permute(2, 0, 1)  # (3, H, W)
        if x.shape[-2:] != (self.image_size, self.image_size):  # (bilinear weights are >= 0: no value leaves [0, 255])
            x = _resize(x.float(), self.image_size, "bilinear").round_().to(torch.uint8)
        if self.mask_dir is None:
            return x, label
        m = torch.from_numpy(self.load_mask(index, array.shape[:2]))[None]  # (1, H, W) bool
        if m.shape[-2:] != (self.image_size, self.image_size):
            m = _resize(m.float(), self.image_size, "nearest").bool()
        return x, label, m

    def __getitem__(self, index: int):
        """(x, y) or (x, y, m): x float32 (3, S, S) in [0, 1], the image's grey levels k / 255; m float32 {0, 1}."""
        return tuple(to_float(self.byte_item(index)))


def _resize(t: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    if t.shape[-2:] == (size, size):
        return t
    kwargs = {"align_corners": False, "antialias": True} if mode == "bilinear" else {}
    return F.interpolate(t[None], size=(size, size), mode=mode, **kwargs)[0]
