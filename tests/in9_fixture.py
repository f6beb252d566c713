"""A tiny ImageNet-9 ``bg_challenge`` root in the real on-disk layout, written by the tests.

Image ``i`` of class ``k`` is a grey background (value 40 + 10 i) with a square object of colour
COLOURS[k] at rows/cols [8k + 16, 8k + 16 + SIDE); its mask is that square. Like the real data
there is no ``fg_mask/train``: training masks must be derived from ``only_fg/train``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = [
    "00_dog",
    "01_bird",
    "02_wheeled vehicle",
    "03_reptile",
    "04_carnivore",
    "05_insect",
    "06_musical instrument",
    "07_primate",
    "08_fish",
]
VARIATIONS = ["original", "only_fg", "no_fg", "only_bg_b", "only_bg_t", "mixed_same", "mixed_rand", "mixed_next"]
SIDE = 40
COLOURS = [
    (230, 30, 30),
    (30, 230, 30),
    (30, 30, 230),
    (230, 230, 30),
    (230, 30, 230),
    (30, 230, 230),
    (250, 130, 20),
    (130, 20, 250),
    (200, 200, 200),
]


def object_mask(label: int, size: int = 224) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    start = 8 * label + 16
    mask[start : start + SIDE, start : start + SIDE] = 1
    return mask


def _image(label: int, i: int, size: int) -> np.ndarray:
    img = np.full((size, size, 3), 40 + 10 * i, np.uint8)
    img[object_mask(label, size) == 1] = COLOURS[label]
    return img


def _save(img: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, quality=95)


def write_in9(root: Path, per_class: int = 2, size: int = 224) -> Path:
    """Write the fixture under ``root/bg_challenge`` and return that folder."""
    base = root / "bg_challenge"
    for label, name in enumerate(CLASSES):
        for i in range(per_class):
            stem = f"n0{label}_{i}"
            img, mask = _image(label, i, size), object_mask(label, size)
            only_fg = img * mask[..., None]
            for split in ("train", "val"):
                _save(img, base / "original" / split / name / f"{stem}.JPEG")
            _save(only_fg, base / "only_fg" / "train" / name / f"{stem}.JPEG")
            _save(img, base / "in9l" / "train" / name / f"{stem}.JPEG")
            _save(only_fg, base / "only_fg" / "val" / name / f"{stem}.JPEG")
            for variation in ("no_fg", "only_bg_b", "only_bg_t"):
                _save(img * (1 - mask[..., None]), base / variation / "val" / name / f"{stem}.JPEG")
            for variation in ("mixed_same", "mixed_rand", "mixed_next"):
                _save(img, base / variation / "val" / name / f"fg_{stem}_bg_n09_{i}.JPEG")
            (base / "fg_mask" / "val" / name).mkdir(parents=True, exist_ok=True)
            np.save(base / "fg_mask" / "val" / name / f"{stem}.npy", mask)
    return base
