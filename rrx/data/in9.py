"""ImageNet-9 backgrounds-challenge folders (Xiao et al., ICLR 2021) as torch datasets.

Layout: ``<root>/<variation>/<split>/<class>/<stem>.JPEG``; the label is the class
folder's index in sorted order. Object masks are ``<root>/fg_mask/<split>/<class>/<stem>.npy``
(1 on the object); a mixed image ``fg_<stem>_bg_<stem2>.JPEG`` uses its foreground's mask.
Real IN-9 ships no ``fg_mask/train``; the synthetic benchmark writes one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from rrx.errors import RRXError

LAYOUT = "<root>/<variation>/<split>/<class>/<stem>.JPEG (ImageNet-9 bg_challenge layout)"
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


class IN9Folder(Dataset):
    """One variation and split of an IN-9 root.

    Args:
        root (Path): the ``bg_challenge`` folder.
        variation (str): e.g. ``original``, ``mixed_rand``.
        split (str): ``train`` or ``val``.
        image_size (int): images and masks are resized to this square size if needed.
        masks (bool, optional): also return the object mask. Default: False.

    Items are ``(x, y)`` or ``(x, y, m)`` with x (3, S, S) in [0, 1] and m (1, S, S) in {0, 1}.
    """

    def __init__(self, root: Path, variation: str, split: str, image_size: int, masks: bool = False):
        folder = split_dir(Path(root), variation, split)
        self.classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
        if not self.classes:
            raise RRXError(f"{folder} holds no class folders (expected {LAYOUT})")
        self.samples = [
            (path, label)
            for label, name in enumerate(self.classes)
            for path in sorted((folder / name).iterdir())
            if path.suffix.lower() in IMAGE_SUFFIXES
        ]
        if not self.samples:
            raise RRXError(f"{folder} holds no images (expected {LAYOUT})")
        self.mask_dir = split_dir(Path(root), "fg_mask", split) if masks else None
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.samples)

    def mask_path(self, index: int) -> Path:
        path, label = self.samples[index]
        return self.mask_dir / self.classes[label] / f"{foreground_stem(path.name)}.npy"

    def __getitem__(self, index: int):
        path, label = self.samples[index]
        try:
            with Image.open(path) as img:
                array = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
        except OSError as err:
            raise RRXError(f"cannot read image {path}: {err}") from err
        x = torch.from_numpy(array).permute(2, 0, 1)  # (3, H, W)
        x = _resize(x, self.image_size, "bilinear")
        if self.mask_dir is None:
            return x, label
        mask_path = self.mask_path(index)
        if not mask_path.is_file():
            raise RRXError(f"no mask for image {path}: expected {mask_path}")
        mask = np.load(mask_path)
        if mask.shape != array.shape[:2]:
            raise RRXError(f"mask {mask_path} has size {mask.shape}, its image {path} has size {array.shape[:2]}")
        m = torch.from_numpy((mask > 0).astype(np.float32))[None]  # (1, H, W)
        return x, label, _resize(m, self.image_size, "nearest")


def _resize(t: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    if t.shape[-2:] == (size, size):
        return t
    kwargs = {"align_corners": False, "antialias": True} if mode == "bilinear" else {}
    return F.interpolate(t[None], size=(size, size), mode=mode, **kwargs)[0]
