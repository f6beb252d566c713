"""The texture-based task with a coloured-patch shortcut (thesis 5.2.2, Table 11): ISIC skin lesions as CDEP
prepared them, and an embedded stand-in of two texture classes.

Both give masks that are 1 everywhere except on the patch (the patch is the context a method must not use)
and two evaluation variations: ``original`` (every test image) and ``no_patch`` (the test images without a
patch), which ``challenge=patches`` scores with AUC and F1 (Table 11). Class 1 is the positive class
(malignant); patches appear on class 0 (benign) only.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Subset, TensorDataset

from rrx.data import register_dataset
from rrx.data.in9 import IMAGE_SUFFIXES, _resize, load_rgb
from rrx.errors import RRXError

log = logging.getLogger(__name__)
VARIATIONS = ("original", "no_patch")


def _check_variation(name: str, variation: str) -> None:
    if variation not in VARIATIONS:
        raise RRXError(f"dataset {name} has the variations {', '.join(VARIATIONS)}, not {variation!r}")


class PatchTask:
    """Train and test splits of a two-class task in which some class-0 images carry a patch.

    ``train_set(masks)``; ``variation_set("original" | "no_patch", masks)``; ``has_patch`` per test image.
    """

    classes = ["benign", "malignant"]
    num_classes = 2
    has_masks = True

    def __init__(self, name: str, train: Dataset, test: Dataset, test_has_patch: torch.Tensor, mean, std):
        self.name, self.train, self.test = name, train, test
        self.test_has_patch = test_has_patch.bool()
        self.mean, self.std = list(mean), list(std)

    def train_set(self, masks: bool) -> Dataset:
        return _with_masks(self.train, masks)

    def variation_set(self, variation: str, masks: bool = False) -> Dataset:
        _check_variation(self.name, variation)
        data = _with_masks(self.test, masks)
        if variation == "no_patch":
            data = Subset(data, torch.nonzero(~self.test_has_patch).flatten().tolist())
        return data


def _with_masks(data: Dataset, masks: bool) -> Dataset:
    """The same images, with or without their masks (a copy: sets handed out earlier keep theirs)."""
    if isinstance(data, TensorDataset):
        return data if masks else TensorDataset(*data.tensors[:2])
    data = copy.copy(data)
    data.masks = masks
    return data


# --- the embedded stand-in -------------------------------------------------------------------------------------

def oriented_textures(labels: np.ndarray, size: int, spread_deg: float, rng: np.random.Generator) -> np.ndarray:
    """Grey textures (N, size, size) in [0, 1]: each a sum of three random-phase gratings whose orientation is
    drawn around 0 degrees (class 0) or 90 degrees (class 1) with a Gaussian spread of ``spread_deg``, plus white
    noise. Both classes have the same grey-level statistics, so only the orientation (a texture) tells them apart."""
    n = len(labels)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    out = np.zeros((n, size, size), dtype=np.float32)
    for _ in range(3):
        theta = np.deg2rad(90.0 * labels + rng.normal(0.0, spread_deg, n))
        freq = rng.uniform(3.0, 7.0, n) * 2 * np.pi
        phase = rng.uniform(0, 2 * np.pi, n)
        proj = np.cos(theta)[:, None, None] * xx + np.sin(theta)[:, None, None] * yy
        out += np.sin(freq[:, None, None] * proj + phase[:, None, None])
    out = out / 6 + 0.5 + rng.normal(0.0, 0.15, out.shape)
    return np.clip(out, 0, 1).astype(np.float32)


PATCH_COLOURS = np.array([[1.0, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.3, 1.0], [1.0, 0.8, 0.0]], dtype=np.float32)


def add_patches(images: np.ndarray, chosen: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    """Paint a ``side`` x ``side`` square of a random saturated colour at a random place on each chosen image
    (in place; images (N, 3, H, W)); returns masks (N, 1, H, W), 0 on the patch and 1 elsewhere."""
    n, _, h, w = images.shape
    masks = np.ones((n, 1, h, w), dtype=np.float32)
    for i in np.nonzero(chosen)[0]:
        top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        images[i, :, top : top + side, left : left + side] = PATCH_COLOURS[rng.integers(len(PATCH_COLOURS))][:, None, None]
        masks[i, :, top : top + side, left : left + side] = 0
    return masks


def texture_split(n: int, cfg, rng: np.random.Generator):
    labels = (rng.random(n) < cfg.positive_fraction).astype(np.int64)
    grey = oriented_textures(labels, cfg.image_size, cfg.spread_deg, rng)
    tint = rng.uniform(0.75, 1.0, (n, 3, 1, 1)).astype(np.float32) * np.array([1.0, 0.8, 0.7], dtype=np.float32)[None, :, None, None]
    images = grey[:, None] * tint  # a skin-like tint, the same for both classes
    chosen = (labels == 0) & (rng.random(n) < cfg.patch_fraction)
    masks = add_patches(images, chosen, cfg.patch_size, rng)
    tensors = (torch.from_numpy(images), torch.from_numpy(labels), torch.from_numpy(masks))
    return TensorDataset(*tensors), torch.from_numpy(chosen)


@register_dataset("textures")
def textures(cfg) -> PatchTask:
    """Embedded stand-in for ISIC: oriented textures (class 0 ~ 0 deg, class 1 ~ 90 deg) with a coloured square
    on ``patch_fraction`` of the class-0 images, in training and test alike."""
    rng = np.random.default_rng(cfg.seed)
    train, _ = texture_split(cfg.train_size, cfg, rng)
    test, has_patch = texture_split(cfg.test_size, cfg, rng)
    log.info("textures: %d training and %d test images of %d px; %d test images with a patch",
             cfg.train_size, cfg.test_size, cfg.image_size, int(has_patch.sum()))
    return PatchTask(cfg.name, train, test, has_patch, cfg.mean, cfg.std)


# --- ISIC as CDEP prepared it --------------------------------------------------------------------------------

CLASS_FOLDERS = {"benign": ("benign", "no_cancer"), "malignant": ("malignant", "cancer")}
ISIC_LAYOUT = ("<root>/processed/{benign|no_cancer}/<isic id>.jpg, <root>/processed/{malignant|cancer}/<isic id>.jpg "
               "and <root>/segmentation/<isic id>.jpg (patch masks of the benign images that have patches)")


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
        x = _resize(torch.from_numpy(load_rgb(self.files[index])).permute(2, 0, 1), self.size, "bilinear")
        y = torch.tensor(self.labels[index])
        if not self.masks:
            return x, y
        seg_path = self.segmentation / self.files[index].name
        mask = torch.ones(1, self.size, self.size)
        if seg_path.is_file():
            patch = torch.from_numpy((load_rgb(seg_path)[:, :, 0] > 100.5 / 255).astype(np.float32))[None, None]  # > 100 of 255
            if self.dilation:
                patch = F.max_pool2d(patch, 2 * self.dilation + 1, stride=1, padding=self.dilation)
            mask = 1 - _resize(patch[0], self.size, "nearest")
        return x, y, mask


def _class_files(root: Path, label: str) -> list[Path]:
    for name in CLASS_FOLDERS[label]:
        folder = root / "processed" / name
        if folder.is_dir():
            return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    raise RRXError(f"dataset.root={root} does not match CDEP's ISIC layout: no folder processed/{' or processed/'.join(CLASS_FOLDERS[label])} "
                   f"(expected {ISIC_LAYOUT})")


@register_dataset("isic")
def isic(cfg) -> PatchTask:
    """ISIC skin lesions in the layout of CDEP's ``ISIC/02_sort_imgs.py`` (images resized to 299 px, benign and
    malignant folders; the scripts name them ``benign``/``malignant`` or ``no_cancer``/``cancer`` depending on
    the version, both are read) with the patch segmentations under ``segmentation/``. A seeded split holds out
    ``test_fraction`` of each class for test (CDEP splits at random as well)."""
    if not cfg.root:
        raise RRXError("dataset=isic needs dataset.root=<folder with processed/ and segmentation/> "
                       "(dataset=textures is the embedded stand-in)")
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise RRXError(f"dataset.root={root} does not exist")
    rng = np.random.default_rng(cfg.seed)
    splits = {"train": ([], []), "test": ([], [])}
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
    made = {split: ISICImages(files, labels, segmentation, cfg.image_size, cfg.dilation) for split, (files, labels) in splits.items()}
    has_patch = torch.tensor([made["test"].has_patch(i) for i in range(len(made["test"]))])
    log.info("isic %s: %d training, %d test images (%d with a patch), resized to %d px",
             root, len(made["train"]), len(made["test"]), int(has_patch.sum()), cfg.image_size)
    return PatchTask(cfg.name, made["train"], made["test"], has_patch, cfg.mean, cfg.std)
