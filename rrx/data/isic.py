"""ISIC skin lesions as CDEP prepared them (thesis 5.2.2, Table 11; ``rrx.data.patch_task``), with the coloured
patches of some benign images segmented."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from rrx.config import param
from rrx.data import register_dataset
from rrx.data.base import (
    DatasetConfig,
    fraction_key,
    image_size_key,
    mean_key,
    num_classes_key,
    num_workers_key,
    root_key,
    std_key,
)
from rrx.data.image_io import IMAGE_SUFFIXES, load_rgb, resize
from rrx.data.patch_task import PatchTask
from rrx.errors import RRXError

log = logging.getLogger(__name__)

CLASS_FOLDERS = {"benign": ("benign", "no_cancer"), "malignant": ("malignant", "cancer")}
ISIC_LAYOUT = (
    "<root>/processed/{benign|no_cancer}/<isic id>.jpg, <root>/processed/{malignant|cancer}/<isic id>.jpg "
    "and <root>/segmentation/<isic id>.jpg (patch masks of the benign images that have patches)"
)


class ISICImages(Dataset):
    """Image files with labels; masks from the patch segmentation (channel 0 > 100, dilated by ``dilation``
    pixels as CDEP's 20x20 square at 299 px), 0 on the patch. Images are resized to ``size``."""

    def __init__(self, files: list[Path], labels: list[int], segmentation: Path, size: int, dilation: int):
        self.files, self.labels, self.segmentation = files, labels, segmentation
        self.size, self.dilation, self.masks = size, dilation, False

    def __len__(self) -> int:
        return len(self.files)

    def has_patch(self, index: int) -> bool:
        return (self.segmentation / self.files[index].name).is_file()

    def __getitem__(self, index: int):
        x = resize(torch.from_numpy(load_rgb(self.files[index])).permute(2, 0, 1), self.size, "bilinear")
        y = torch.tensor(self.labels[index])
        if not self.masks:
            return x, y
        seg_path = self.segmentation / self.files[index].name
        mask = torch.ones(1, self.size, self.size)
        if seg_path.is_file():
            patch = torch.from_numpy((load_rgb(seg_path)[:, :, 0] > 100.5 / 255).astype(np.float32))[
                None, None
            ]  # > 100 of 255
            if self.dilation:
                patch = F.max_pool2d(patch, 2 * self.dilation + 1, stride=1, padding=self.dilation)
            mask = 1 - resize(patch[0], self.size, "nearest")
        return x, y, mask


def _class_files(root: Path, label: str) -> list[Path]:
    for name in CLASS_FOLDERS[label]:
        folder = root / "processed" / name
        if folder.is_dir():
            return sorted(
                p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
            )
    raise RRXError(
        f"dataset.root={root} does not match CDEP's ISIC layout: "
        f"no folder processed/{' or processed/'.join(CLASS_FOLDERS[label])} "
        f"(expected {ISIC_LAYOUT})"
    )


@dataclass
class ISICConfig(DatasetConfig):
    """ISIC skin lesions as CDEP prepared them (benign / malignant, coloured patches on part of the benign images)"""

    name: str = param("isic", "the registered name of the dataset")
    root: Optional[str] = root_key("the folder with processed/ and segmentation/ (CDEP's layout)")
    image_size: int = image_size_key(224)
    test_fraction: float = fraction_key(0.2, "of each class, held out for test by a seeded split")
    dilation: int = param(10, "patch masks grown by this many pixels (CDEP: a 20x20 square at 299 px)", low=0)
    seed: int = param(0, "the split into training and test images")
    num_classes: int = num_classes_key(2, "the number of classes (benign, malignant)")
    mean: List[float] = mean_key([0.485, 0.456, 0.406], "per-channel normalisation mean (ImageNet's)")
    std: List[float] = std_key([0.229, 0.224, 0.225], "per-channel normalisation standard deviation (ImageNet's)")
    num_workers: int = num_workers_key(4)


@register_dataset("isic", config=ISICConfig)
def isic(cfg) -> PatchTask:
    """ISIC skin lesions in the layout of CDEP's ``ISIC/02_sort_imgs.py`` (images resized to 299 px, benign and
    malignant folders; the scripts name them ``benign``/``malignant`` or ``no_cancer``/``cancer`` depending on
    the version, both are read) with the patch segmentations under ``segmentation/``. A seeded split holds out
    ``test_fraction`` of each class for test (CDEP splits at random as well)."""
    if not cfg.root:
        raise RRXError(
            "dataset=isic needs dataset.root=<folder with processed/ and segmentation/> "
            "(dataset=textures is the embedded stand-in)"
        )
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise RRXError(f"dataset.root={root} does not exist")
    rng = np.random.default_rng(cfg.seed)
    splits: dict[str, tuple[list[Path], list[int]]] = {"train": ([], []), "test": ([], [])}
    for label, name in enumerate(PatchTask.classes):
        files = _class_files(root, name)
        if not files:
            raise RRXError(f"dataset.root={root}: no images for class {name} (expected {ISIC_LAYOUT})")
        order = rng.permutation(len(files))
        n_test = max(1, int(round(cfg.test_fraction * len(files))))
        for split, picks in (("test", order[:n_test]), ("train", order[n_test:])):
            splits[split][0].extend(files[i] for i in picks)
            splits[split][1].extend([label] * len(picks))
    segmentation = root / "segmentation"
    made = {
        split: ISICImages(files, labels, segmentation, cfg.image_size, cfg.dilation)
        for split, (files, labels) in splits.items()
    }
    has_patch = torch.tensor([made["test"].has_patch(i) for i in range(len(made["test"]))])
    log.info(
        "isic %s: %d training, %d test images (%d with a patch), resized to %d px",
        root,
        len(made["train"]),
        len(made["test"]),
        int(has_patch.sum()),
        cfg.image_size,
    )
    return PatchTask(cfg.name, made["train"], made["test"], has_patch, cfg.mean, cfg.std)
