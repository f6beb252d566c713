"""STL-10 (Coates et al. 2011) from torchvision's on-disk binary format, never downloaded.

Layout: ``<root>/stl10_binary/`` (or ``dataset.root`` pointing at that folder itself) with ``train_X.bin``,
``train_y.bin``, ``test_X.bin``, ``test_y.bin`` and ``class_names.txt``, as stl10_binary.tar.gz ships them
(``unlabeled_X.bin`` and ``fold_indices.txt`` are not needed). ``*_X.bin`` holds uint8 images of 3x96x96,
each channel (red, green, blue) stored column-major; ``*_y.bin`` one uint8 label per image, 1..10 on disk
(0..9 in rrx); ``class_names.txt`` one name per line. There are no object masks; the test split is the
``original`` variation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import numpy as np

from rrx.config import param
from rrx.data import register_dataset
from rrx.data.base import (
    DatasetConfig,
    image_size_key,
    mean_key,
    num_classes_key,
    num_workers_key,
    root_key,
    std_key,
)
from rrx.data.image_task import ImageTask, array_task, check_num_classes, find_folder
from rrx.errors import RRXError

FOLDER = "stl10_binary"
SPLIT_FILES = {"train": ("train_X.bin", "train_y.bin"), "test": ("test_X.bin", "test_y.bin")}
CLASS_NAMES = "class_names.txt"
LAYOUT = (
    f"<root>/{FOLDER}/ with train_X.bin, train_y.bin, test_X.bin, test_y.bin and {CLASS_NAMES}: "
    "torchvision's STL-10 binary format, stl10_binary.tar.gz extracted"
)
SIDE = 96


def read_split(images_file: Path, labels_file: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 3, 96, 96) uint8, labels (N,) int64 in 0..num_classes-1) of one STL-10 split."""
    raw = np.fromfile(images_file, dtype=np.uint8)
    if raw.size == 0 or raw.size % (3 * SIDE * SIDE):
        raise RRXError(
            f"{images_file} holds {raw.size} bytes, not a whole number of 3x{SIDE}x{SIDE} images (expected {LAYOUT})"
        )
    images = raw.reshape(-1, 3, SIDE, SIDE).transpose(0, 1, 3, 2)  # column-major planes: (N, 3, W, H) -> (N, 3, H, W)
    labels = np.fromfile(labels_file, dtype=np.uint8).astype(np.int64) - 1
    if len(labels) != len(images):
        raise RRXError(
            f"{labels_file} holds {len(labels)} labels for the {len(images)} images of {images_file} "
            f"(expected {LAYOUT})"
        )
    if (labels < 0).any() or (labels >= num_classes).any():
        raise RRXError(
            f"{labels_file}: labels must be 1..{num_classes} on disk, found {sorted(set((labels + 1).tolist()))}"
        )
    return np.ascontiguousarray(images), labels


def read_stl10(folder: Path, num_classes: int) -> tuple[list[str], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """(class names, {"train": (images, labels), "test": ...}) from an ``stl10_binary`` folder."""
    names = [
        line.strip()
        for line in (folder / CLASS_NAMES).read_text(encoding="utf-8", errors="replace").splitlines()
        if line.strip()
    ]
    check_num_classes(names, num_classes, str(folder / CLASS_NAMES))
    return names, {split: read_split(folder / x, folder / y, len(names)) for split, (x, y) in SPLIT_FILES.items()}


@dataclass
class STL10Config(DatasetConfig):
    """STL-10's labelled splits in torchvision's binary format (never downloaded), without object masks

    The test split is the 'original' variation (challenge=original).
    """

    name: str = param("stl10", "the registered name of the dataset")
    root: Optional[str] = root_key(
        f"the folder holding {FOLDER}/ (or that folder itself), with train_X.bin, train_y.bin, test_X.bin, "
        f"test_y.bin, {CLASS_NAMES}"
    )
    num_classes: int = num_classes_key(10, f"the number of classes (checked against {CLASS_NAMES})")
    image_size: int = image_size_key(96, "another size resizes every image (bilinear)")
    mean: List[float] = mean_key([0.4467, 0.4398, 0.4066], "per-channel mean of the training images")
    std: List[float] = std_key([0.2603, 0.2566, 0.2713], "per-channel standard deviation of the training images")
    num_workers: int = num_workers_key(0, "data-loader worker processes (images are held in memory)")


@register_dataset("stl10", config=STL10Config)
def stl10(cfg) -> ImageTask:
    """STL-10's labelled splits at ``dataset.root`` (never downloaded): 5,000 training and 8,000 test images of
    96x96, 10 classes."""
    folder = find_folder(cfg.root, FOLDER, [*SPLIT_FILES["train"], *SPLIT_FILES["test"], CLASS_NAMES], "stl10", LAYOUT)
    names, splits = read_stl10(folder, cfg.num_classes)
    return array_task(cfg, names, splits)
