"""The classic augmentations of thesis Table 2, applied to an image and its mask together.

Per image one draw of: rotation in [-4.6, 4.6] degrees, shift in [-3 %, 3 %] of the side along each axis, scale in
[0.98, 1.02], channel shift in [-0.17, 0.17] and an elastic deformation with alpha = 30, sigma = 4. The geometric
ones move image and mask with the same transform, through torchvision's ``transforms.v2.functional`` (``affine``,
``elastic``), which interpolates a ``tv_tensors.Image`` bilinearly and a ``tv_tensors.Mask`` by nearest neighbour,
so the mask stays binary; outside the image is black (image) and background (mask).

Elastic deformation (Simard et al. 2003, as Perone et al.'s medicaltorch): a displacement per pixel and axis,
alpha x (uniform noise in [-1, 1] smoothed by a Gaussian of standard deviation sigma), in pixels. torchvision's
``ElasticTransform`` scales its alpha to half that many pixels, so rrx draws the field itself and hands it to
``elastic`` in torchvision's normalised units (2 / side per pixel). Channel shift (Keras's ``channel_shift_range``,
which the thesis's parameter names follow): one value added to every channel, clipped to the image's own
[min, max]; it changes the image only.

Draws come from a ``torch.Generator`` seeded per (seed, epoch, image), so an epoch's augmented copies are the same
on a resumed run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sized, cast

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as TF

from rrx.data.table2 import CHANNEL_SHIFT, ELASTIC_ALPHA, ELASTIC_SIGMA, ROTATION_DEG, SCALE, SHIFT


@dataclass
class AugmentParams:
    """One image's draw: rotation (degrees, clockwise as torchvision's), shift (dx, dy) in pixels, scale, channel shift,
    and the elastic displacement (2, H, W): (dx, dy) per pixel, in pixels."""

    angle: float
    shift: tuple[float, float]
    scale: float
    channel_shift: float
    displacement: torch.Tensor


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand(1, generator=generator))


def gaussian_kernel_size(sigma: float, side: int | None = None) -> int:
    """torchvision ``ElasticTransform``'s kernel: 8 sigma + 1, made odd; at most 2 ``side`` - 1, as the blur pads by
    reflection, which needs less padding than the image side."""
    size = int(8 * sigma + 1)
    size += 1 - size % 2
    return size if side is None else min(size, 2 * side - 1)


def elastic_field(size: tuple[int, int], alpha: float, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """(2, H, W) displacement in pixels: alpha x Gaussian-smoothed uniform noise in [-1, 1], per axis (Simard)."""
    noise = torch.rand(2, 1, *size, generator=generator) * 2 - 1
    k = gaussian_kernel_size(sigma, min(size))
    return alpha * TF.gaussian_blur(noise, [k, k], [sigma, sigma])[:, 0]


def draw(size: tuple[int, int], generator: torch.Generator) -> AugmentParams:
    """One draw of Table 2's ranges for an image of ``size`` (H, W)."""
    h, w = size
    return AugmentParams(
        angle=_uniform(generator, -ROTATION_DEG, ROTATION_DEG),
        shift=(_uniform(generator, -SHIFT, SHIFT) * w, _uniform(generator, -SHIFT, SHIFT) * h),
        scale=_uniform(generator, *SCALE),
        channel_shift=_uniform(generator, -CHANNEL_SHIFT, CHANNEL_SHIFT),
        displacement=elastic_field(size, ELASTIC_ALPHA, ELASTIC_SIGMA, generator),
    )


def channel_shift(x: torch.Tensor, shift: float) -> torch.Tensor:
    """x + shift on every channel, clipped to [x.min(), x.max()] (Keras ``apply_channel_shift``)."""
    return (x + shift).clamp(float(x.min()), float(x.max()))


def apply(x: torch.Tensor, m: torch.Tensor, params: AugmentParams) -> tuple[torch.Tensor, torch.Tensor]:
    """Affine (rotation, shift, scale about the centre), then the elastic field, to image x (C, H, W) and mask
    m (1, H, W) alike; then the channel shift to the image."""
    image, mask = tv_tensors.Image(x), tv_tensors.Mask(m)
    affine = dict(angle=params.angle, translate=list(params.shift), scale=params.scale, shear=[0.0, 0.0])
    image = TF.affine(image, **affine, interpolation=TF.InterpolationMode.BILINEAR, fill=0)
    mask = TF.affine(mask, **affine, fill=0)
    h, w = x.shape[-2:]
    field = params.displacement.permute(1, 2, 0)[None] * torch.tensor([2 / w, 2 / h])  # (1, H, W, 2), normalised
    image = TF.elastic(image, field, interpolation=TF.InterpolationMode.BILINEAR, fill=0)
    mask = TF.elastic(mask, field, fill=0)
    return channel_shift(image.as_subclass(torch.Tensor), params.channel_shift), mask.as_subclass(torch.Tensor)


def item_seed(seed: int, epoch: int, index: int) -> int:
    """A seed for one image's draw in one epoch, independent of the others'."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])


class Augmented(Dataset):
    """Items (x, y, m) of ``base`` under a fresh Table 2 draw per image and epoch (``set_epoch``)."""

    def __init__(self, base: Dataset, seed: int):
        self.base, self.seed, self.epoch = base, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(cast(Sized, self.base))  # torch's Dataset declares no __len__; every base here has one

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any, torch.Tensor]:
        x, y, m = self.base[index]
        generator = torch.Generator().manual_seed(item_seed(self.seed, self.epoch, index))
        x, m = apply(x, m, draw(tuple(x.shape[-2:]), generator))
        return x, y, m
