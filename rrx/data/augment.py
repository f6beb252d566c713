"""Training augmentations that move the object masks with their images (``dataset.augment``), on the device.

A random resized crop (as torchvision's ``RandomResizedCrop``: a box of ``scale`` x the image's area and aspect
ratio in ``ratio``, resized back to the image's size) and a horizontal flip with probability 1/2, drawn per
image and applied to the whole batch at once with ``torchvision.ops.roi_align``; masks go through the same
boxes and are thresholded back to {0, 1}. Real photographs gain from them; the embedded benchmark trains
without (its objects are small and placed anywhere already).
"""

from __future__ import annotations

import math

import torch
from torchvision.ops import roi_align

# One vocabulary for every ``augment`` key (dataset.augment, method.augment, segmentation.augment): each key takes the
# names that apply where it acts, and a name means the same transform wherever it is taken.
AUGMENTATIONS = {
    "none": "no augmentation",
    "crop_flip": "a random resized crop and flip per image and batch (dataset.augment: classification's pipeline)",
    "classic": "a fixed copy of each image under Table 2's flip, rotation, shift and scale (method=ada, Alg. 1 line 1)",
    "table2": "a copy of each image under all of Table 2, drawn afresh each epoch (task=segmentation)",
}
DATASET_AUGMENTS = ("none", "crop_flip")  # dataset.augment: the names of AUGMENTATIONS that act on a training batch


def crop_boxes(
    count: int, size: int, scale: tuple[float, float], ratio: tuple[float, float], generator: torch.Generator
) -> torch.Tensor:
    """(count, 4) boxes (x0, y0, x1, y1) in pixels inside a ``size`` x ``size`` image: area a fraction of the
    image drawn uniformly from ``scale``, aspect ratio w / h log-uniformly from ``ratio``, clipped to the
    image, placed uniformly."""
    area = torch.empty(count).uniform_(*scale, generator=generator) * size * size
    aspect = torch.exp(torch.empty(count).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=generator))
    width = torch.sqrt(area * aspect).clamp(1, size)
    height = torch.sqrt(area / aspect).clamp(1, size)
    x0 = torch.rand(count, generator=generator) * (size - width)
    y0 = torch.rand(count, generator=generator) * (size - height)
    return torch.stack([x0, y0, x0 + width, y0 + height], dim=1)


def resized_crop(x: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Each image of ``x`` (B, C, H, W) cut to its box and resized (bilinear) back to H x W."""
    rois = torch.cat([torch.arange(len(x), device=x.device, dtype=x.dtype)[:, None], boxes.to(x)], dim=1)
    return roi_align(x, rois, output_size=x.shape[-2:], spatial_scale=1.0, sampling_ratio=1, aligned=True)


def augment(
    x: torch.Tensor, mask: torch.Tensor | None, generator: torch.Generator, scale=(0.35, 1.0), ratio=(3 / 4, 4 / 3)
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``x`` (B, C, S, S) and ``mask`` (B, 1, S, S) or None, each image randomly cropped and flipped alike.
    The draws come from ``generator`` (on the CPU), so a run's augmentations are reproducible."""
    boxes = crop_boxes(len(x), x.shape[-1], scale, ratio, generator)
    flip = (torch.rand(len(x), generator=generator) < 0.5).to(x.device)[:, None, None, None]
    x = resized_crop(x, boxes)
    x = torch.where(flip, x.flip(-1), x)
    if mask is not None:
        mask = (resized_crop(mask.float(), boxes) >= 0.5).to(mask.dtype)
        mask = torch.where(flip, mask.flip(-1), mask)
    return x, mask
