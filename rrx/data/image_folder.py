"""Any labelled image tree (``dataset=image_folder``): a researcher's own data, with object masks if it has them.

Layout::

    <root>/<train_split>/<class>/<name>.{jpg,jpeg,png}     training images (dataset.train_split, default train)
    <root>/<test_split>/<class>/<name>.{jpg,jpeg,png}      test images, the 'original' variation
                                                           (dataset.test_split, default val)
    <root>/masks/<split>/<class>/<name>.{png,npy}          optional object masks, one per image of that split

The label is the class folder's index in sorted order; both splits must have the same class folders. Hidden
files and folders are ignored. A mask has the image's height and width; any non-zero value (grey level, palette
index or array entry) is object, so masks are 1 on the object. A ``.npy`` mask is used before a ``.png`` of the
same name. Images and masks are resized to ``dataset.image_size`` (bilinear and nearest). Only a split that has
a ``masks/<split>`` folder can give masks; the dataset has none (``has_masks`` false) without ``<root>/masks``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from rrx.config import param
from rrx.data import register_dataset
from rrx.data.base import (
    AugmentedConfig,
    check_classes,
    image_size_key,
    mean_key,
    num_classes_key,
    num_workers_key,
    root_key,
    std_key,
)
from rrx.data.image_io import BAD_SAMPLE_RULES, IMAGE_SUFFIXES, keep_readable, load_rgb, resize
from rrx.data.image_task import ImageTask, check_num_classes
from rrx.errors import RRXError

LAYOUT = "<root>/<split>/<class>/<name>.{jpg,jpeg,png} with splits dataset.train_split and dataset.test_split"
MASK_LAYOUT = "<root>/masks/<split>/<class>/<name>.{png,npy}, non-zero on the object"
MASK_SUFFIXES = (".npy", ".png")  # in order of preference


def list_split(folder: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """(sorted class folder names, [(image path, label)]) of one split folder."""
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise RRXError(f"{folder} holds no class folders (expected {LAYOUT})")
    samples = [
        (path, label)
        for label, name in enumerate(classes)
        for path in sorted((folder / name).iterdir())
        if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
    ]
    if not samples:
        raise RRXError(f"{folder} holds no images (expected {LAYOUT})")
    return classes, samples


def read_mask(path: Path) -> np.ndarray:
    """The (H, W) boolean mask in a ``.npy`` or ``.png`` file: True where it is non-zero."""
    try:
        if path.suffix == ".npy":
            mask = np.load(path, allow_pickle=False)
        else:
            with Image.open(path) as img:
                mask = np.asarray(img.convert("L") if img.mode in ("RGB", "RGBA", "LA") else img)
    except (OSError, ValueError) as err:
        raise RRXError(f"cannot read mask {path}: {err}") from err
    return mask > 0


class FolderImages(Dataset):
    """One split of an image tree.

    Args:
        samples (list[tuple[Path, int]]): image paths and labels.
        classes (list[str]): class names, to find each image's mask.
        image_size (int): images and masks are resized to this square size if needed.
        mask_dir (Path, optional): ``<root>/masks/<split>``; None: no masks. Default: None.
        skip_bad (bool, optional): check every sample now and drop (and log) unreadable ones. Default: False.

    Items are ``(x, y)`` or, with ``mask_dir``, ``(x, y, m)``: x (3, S, S) in [0, 1], m (1, S, S) in {0, 1}.
    """

    def __init__(
        self,
        samples: list[tuple[Path, int]],
        classes: list[str],
        image_size: int,
        mask_dir: Path | None = None,
        skip_bad: bool = False,
    ):
        self.samples, self.classes, self.image_size, self.mask_dir = samples, classes, image_size, mask_dir
        self.skipped: list[str] = []
        if skip_bad:
            self.samples, self.skipped = keep_readable(self.samples, self.__getitem__)

    @property
    def labels(self) -> list[int]:
        return [label for _, label in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def load_mask(self, index: int, shape: tuple[int, int]) -> np.ndarray:
        assert self.mask_dir is not None  # read only for a split loaded with masks
        path, label = self.samples[index]
        candidates = [self.mask_dir / self.classes[label] / f"{path.stem}{suffix}" for suffix in MASK_SUFFIXES]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise RRXError(f"no mask for image {path}: expected {' or '.join(map(str, candidates))}")
        mask = read_mask(found)
        if mask.shape != shape:
            raise RRXError(f"mask {found} has size {mask.shape}, its image {path} has size {shape}")
        return mask

    def __getitem__(self, index: int):
        path, label = self.samples[index]
        array = load_rgb(path)  # (H, W, 3)
        x = resize(torch.from_numpy(array).permute(2, 0, 1), self.image_size, "bilinear")  # (3, S, S)
        if self.mask_dir is None:
            return x, label
        m = torch.from_numpy(self.load_mask(index, array.shape[:2]).astype(np.float32))[None]  # (1, H, W)
        return x, label, resize(m, self.image_size, "nearest")


@dataclass
class ImageFolderConfig(AugmentedConfig):
    """any image tree: <root>/<split>/<class>/<name>.{jpg,jpeg,png}, optional masks in <root>/masks/<split>/

    Labels are the class folders in sorted order; the test split is the 'original' variation (challenge=original).
    """

    name: str = param("image_folder", "the registered name of the dataset")
    root: Optional[str] = root_key("the tree's folder (<root>/<split>/<class>/<name>.{jpg,jpeg,png})")
    train_split: str = param("train", "the folder of <root> to train on")
    test_split: str = param("val", "the folder of <root> to evaluate on (the 'original' variation)")
    num_classes: Optional[int] = num_classes_key(None, "required: the number of class folders (checked against them)")
    image_size: int = image_size_key(224, "images and masks are resized to this square size")
    mean: List[float] = mean_key([0.485, 0.456, 0.406], "per-channel mean (ImageNet's; set your data's own)")
    std: List[float] = std_key(
        [0.229, 0.224, 0.225], "per-channel standard deviation (ImageNet's; set your data's own)"
    )
    on_bad_sample: str = param(
        "error", "error | skip (check every image at load, log and count the bad ones)", choices=BAD_SAMPLE_RULES
    )
    num_workers: int = num_workers_key(4)


@register_dataset("image_folder", config=ImageFolderConfig)
def image_folder(cfg) -> ImageTask:
    """The tree at ``dataset.root``: ``dataset.train_split`` to train on, ``dataset.test_split`` as the
    ``original`` variation. Either split may be missing until it is used (an evaluation needs only the test
    split); both are listed now, so differing class folders stop the run before it starts."""
    if not cfg.root:
        raise RRXError(f"dataset=image_folder needs dataset.root=<folder> (expected {LAYOUT})")
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise RRXError(f"dataset.root={root} does not exist (expected {LAYOUT})")
    names = {"train": cfg.train_split, "test": cfg.test_split}
    listed = {split: list_split(root / name) for split, name in names.items() if (root / name).is_dir()}
    if not listed:
        raise RRXError(
            f"dataset.root={root} has neither {root / names['train']} nor {root / names['test']} (expected {LAYOUT})"
        )
    first = next(iter(listed))  # train when it is there
    classes = listed[first][0]
    check_num_classes(classes, cfg.num_classes, str(root / names[first]))
    if len(listed) == 2:
        check_classes(listed["test"][0], classes, str(root / names["test"]))

    def load(split: str, masks: bool) -> FolderImages:
        if split not in listed:
            raise RRXError(f"dataset.{split}_split={names[split]}: no folder {root / names[split]} (expected {LAYOUT})")
        mask_dir = root / "masks" / names[split] if masks else None
        if mask_dir is not None and not mask_dir.is_dir():
            raise RRXError(
                f"dataset {cfg.name} has no object masks for split {names[split]}: missing folder {mask_dir} "
                f"(expected {MASK_LAYOUT})"
            )
        return FolderImages(listed[split][1], classes, cfg.image_size, mask_dir, cfg.on_bad_sample == "skip")

    return ImageTask(
        cfg.name,
        classes,
        load,
        cfg.mean,
        cfg.std,
        cfg.image_size,
        has_masks=(root / "masks").is_dir(),
        masks_layout=MASK_LAYOUT,
    )
