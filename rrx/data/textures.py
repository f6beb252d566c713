"""The embedded stand-in for ISIC (thesis 5.2.2, Table 11; ``rrx.data.patch_task``): oriented textures of two
classes with a coloured patch on some class-0 images."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import List

import numpy as np
import torch
from torch.utils.data import TensorDataset

from rrx.config import param
from rrx.data import register_dataset
from rrx.data.base import DatasetConfig, image_size_key, mean_key, num_classes_key, num_workers_key, std_key
from rrx.data.patch_task import PatchTask

log = logging.getLogger(__name__)


def oriented_textures(labels: np.ndarray, size: int, spread_deg: float, rng: np.random.Generator) -> np.ndarray:
    """Grey textures (N, size, size) in [0, 1]: each a sum of three random-phase gratings whose orientation is
    drawn around 0 degrees (class 0) or 90 degrees (class 1) with a Gaussian spread of ``spread_deg``, plus white
    noise. Both classes have the same grey-level statistics, so only the orientation (a texture) tells them apart."""
    n = len(labels)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    out: np.ndarray = np.zeros((n, size, size), dtype=np.float32)
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
        images[i, :, top : top + side, left : left + side] = PATCH_COLOURS[rng.integers(len(PATCH_COLOURS))][
            :, None, None
        ]
        masks[i, :, top : top + side, left : left + side] = 0
    return masks


def texture_split(n: int, cfg, rng: np.random.Generator):
    labels = (rng.random(n) < cfg.positive_fraction).astype(np.int64)
    grey = oriented_textures(labels, cfg.image_size, cfg.spread_deg, rng)
    tint = (
        rng.uniform(0.75, 1.0, (n, 3, 1, 1)).astype(np.float32)
        * np.array([1.0, 0.8, 0.7], dtype=np.float32)[None, :, None, None]
    )
    images = grey[:, None] * tint  # a skin-like tint, the same for both classes
    chosen = (labels == 0) & (rng.random(n) < cfg.patch_fraction)
    masks = add_patches(images, chosen, cfg.patch_size, rng)
    tensors = (torch.from_numpy(images), torch.from_numpy(labels), torch.from_numpy(masks))
    return TensorDataset(*tensors), torch.from_numpy(chosen)


@dataclass
class TexturesConfig(DatasetConfig):
    """embedded stand-in for ISIC (thesis Table 11): oriented textures with a coloured square as the shortcut

    Class 0 ~ 0 deg and class 1 ~ 90 deg, a coloured square on part of the class-0 images; masks are 0 on the square.
    """

    name: str = param("textures", "the registered name of the dataset")
    image_size: int = image_size_key(32, "the images' side")
    train_size: int = param(2000, "training images", low=1)
    test_size: int = param(1000, "test images", low=1)
    positive_fraction: float = param(0.5, "share of class 1 (malignant)", low=0.0, high=1.0)
    patch_fraction: float = param(0.5, "share of class-0 images with a patch, in training and test", low=0.0, high=1.0)
    patch_size: int = param(8, "the patch's side, in pixels", low=1)
    spread_deg: float = param(
        55.0, "orientation spread per class: the classes overlap, so the texture alone is not perfect", low=0.0
    )
    seed: int = param(0, "the textures, labels and patches")
    num_classes: int = num_classes_key(2)
    mean: List[float] = mean_key([0.5, 0.4, 0.35])
    std: List[float] = std_key([0.25, 0.2, 0.18])
    num_workers: int = num_workers_key(0)


@register_dataset("textures", config=TexturesConfig)
def textures(cfg) -> PatchTask:
    """Embedded stand-in for ISIC: oriented textures (class 0 ~ 0 deg, class 1 ~ 90 deg) with a coloured square
    on ``patch_fraction`` of the class-0 images, in training and test alike."""
    rng = np.random.default_rng(cfg.seed)
    train, _ = texture_split(cfg.train_size, cfg, rng)
    test, has_patch = texture_split(cfg.test_size, cfg, rng)
    log.info(
        "textures: %d training and %d test images of %d px; %d test images with a patch",
        cfg.train_size,
        cfg.test_size,
        cfg.image_size,
        int(has_patch.sum()),
    )
    return PatchTask(cfg.name, train, test, has_patch, cfg.mean, cfg.std)
