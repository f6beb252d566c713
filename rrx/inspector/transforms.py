"""The Model Inspector's image transforms (thesis 7.3.1, Fig. 28): texture and structure, each seeded.

Texture transforms change colour and texture, pixel by pixel (Hendrycks & Dietterich 2019, ImageNet-C's noises;
the thesis's Gaussian, shot and impulse noise, and speckle noise):

- ``gaussian_noise``: x + N(0, sigma^2) per pixel and channel.
- ``shot_noise``: Poisson(lambda * x) / lambda (photon counting: fewer photons, more noise).
- ``impulse_noise``: salt and pepper: each pixel and channel is replaced with probability ``amount``, by 1 or 0
  with equal chance.
- ``speckle_noise``: x + x * N(0, sigma^2) (multiplicative).

Structure transforms keep every pixel's colour and move it (thesis 7.3.1): the image is cut into disjoint blocks
that are permuted.

- ``patch_shuffle``: W x W squares.
- ``horizontal_shuffle``: strips of height H across the whole width.
- ``vertical_shuffle``: strips of width W down the whole height.

Where the block side does not divide the image side, the blocks that fit are shuffled and the remaining border
rows (columns) stay in place. Every result is clamped to [0, 1], the range rrx's models take.

Example (shapes)::

    x = torch.rand(3, 224, 224)
    y = apply_transform("patch_shuffle", x, 56, seed=0)      # (3, 224, 224), 16 patches permuted
    TRANSFORMS["gaussian_noise"].parameter                   # the slider: name, range, step, default
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from rrx.errors import RRXError, check_choice


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def gaussian_noise(x: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """clamp(x + sigma * N(0, 1)) for x (..., H, W) in [0, 1]."""
    return (x + sigma * torch.randn(x.shape, generator=generator, dtype=x.dtype)).clamp(0, 1)


def shot_noise(x: torch.Tensor, photons: float, generator: torch.Generator) -> torch.Tensor:
    """clamp(Poisson(photons * x) / photons): ``photons`` is the count at full brightness."""
    return (torch.poisson(x * photons, generator=generator) / photons).clamp(0, 1)


def impulse_noise(x: torch.Tensor, amount: float, generator: torch.Generator) -> torch.Tensor:
    """Each pixel and channel replaced with probability ``amount`` by salt (1) or pepper (0), half each."""
    replaced = torch.rand(x.shape, generator=generator) < amount
    salt = torch.rand(x.shape, generator=generator) < 0.5
    return torch.where(replaced, salt.to(x.dtype), x)


def speckle_noise(x: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """clamp(x + x * sigma * N(0, 1))."""
    return (x + x * sigma * torch.randn(x.shape, generator=generator, dtype=x.dtype)).clamp(0, 1)


def block_shuffle(x: torch.Tensor, block_h: int, block_w: int, generator: torch.Generator) -> torch.Tensor:
    """x (..., C, H, W) with its disjoint ``block_h`` x ``block_w`` blocks permuted (one permutation, drawn with
    ``generator``, for all leading dimensions). The floor(H / block_h) x floor(W / block_w) blocks from the top
    left corner are shuffled; border rows and columns they leave out stay in place."""
    h, w = x.shape[-2:]
    if not (1 <= block_h <= h and 1 <= block_w <= w):
        raise RRXError(f"block {block_h} x {block_w} px does not fit the {h} x {w} image; give 1 .. {min(h, w)} px")
    rows, cols = h // block_h, w // block_w
    inner = x[..., : rows * block_h, : cols * block_w]
    lead = inner.shape[:-2]
    blocks = (
        inner.reshape(*lead, rows, block_h, cols, block_w).movedim(-3, -2).reshape(*lead, rows * cols, block_h, block_w)
    )
    order = torch.randperm(rows * cols, generator=generator)
    shuffled = blocks[..., order, :, :].reshape(*lead, rows, cols, block_h, block_w).movedim(-2, -3)
    out = x.clone()
    out[..., : rows * block_h, : cols * block_w] = shuffled.reshape(*lead, rows * block_h, cols * block_w)
    return out


def patch_shuffle(x: torch.Tensor, size: float, generator: torch.Generator) -> torch.Tensor:
    """``size`` x ``size`` patches permuted."""
    return block_shuffle(x, int(size), int(size), generator)


def horizontal_shuffle(x: torch.Tensor, height: float, generator: torch.Generator) -> torch.Tensor:
    """Horizontal strips of ``height`` rows (the full width) permuted."""
    return block_shuffle(x, int(height), x.shape[-1], generator)


def vertical_shuffle(x: torch.Tensor, width: float, generator: torch.Generator) -> torch.Tensor:
    """Vertical strips of ``width`` columns (the full height) permuted."""
    return block_shuffle(x, x.shape[-2], int(width), generator)


@dataclass(frozen=True)
class Parameter:
    """A transform's one parameter, as a slider shows it. ``pixels``: a size in pixels, whose range is set by the
    image (``low`` .. the image side)."""

    name: str
    low: float
    high: float
    step: float
    default: float
    pixels: bool = False

    def check(self, value: float, side: int) -> None:
        high = side if self.pixels else self.high
        if not self.low <= value <= high:
            raise RRXError(f"{self.name}={value} is out of range; give {self.low:g} .. {high:g}")


@dataclass(frozen=True)
class Transform:
    """``function(x, value, generator)``; ``kind``: texture or structure."""

    name: str
    label: str
    kind: str
    parameter: Parameter
    function: Callable[[torch.Tensor, float, torch.Generator], torch.Tensor]


TRANSFORMS = {
    t.name: t
    for t in (
        Transform(
            "gaussian_noise", "Gaussian noise", "texture", Parameter("sigma", 0.0, 1.0, 0.01, 0.1), gaussian_noise
        ),
        Transform("shot_noise", "Shot noise", "texture", Parameter("photons", 1.0, 200.0, 1.0, 25.0), shot_noise),
        Transform(
            "impulse_noise", "Impulse noise", "texture", Parameter("amount", 0.0, 1.0, 0.01, 0.05), impulse_noise
        ),
        Transform("speckle_noise", "Speckle noise", "texture", Parameter("sigma", 0.0, 2.0, 0.01, 0.3), speckle_noise),
        Transform(
            "patch_shuffle", "Patch shuffle", "structure", Parameter("patch size", 1, 0, 1, 0.25, True), patch_shuffle
        ),
        Transform(
            "horizontal_shuffle",
            "Horizontal-strip shuffle",
            "structure",
            Parameter("strip height", 1, 0, 1, 0.25, True),
            horizontal_shuffle,
        ),
        Transform(
            "vertical_shuffle",
            "Vertical-strip shuffle",
            "structure",
            Parameter("strip width", 1, 0, 1, 0.25, True),
            vertical_shuffle,
        ),
    )
}
TEXTURES = tuple(name for name, t in TRANSFORMS.items() if t.kind == "texture")


def default_value(name: str, side: int) -> float:
    """The slider's start: the parameter's default, for pixel sizes a fraction (``default``) of the image side."""
    parameter = TRANSFORMS[name].parameter
    return max(1, round(parameter.default * side)) if parameter.pixels else parameter.default


def apply_transform(name: str, x: torch.Tensor, value: float, seed: int) -> torch.Tensor:
    """Transform ``name`` with parameter ``value`` of x (C, H, W) or (B, C, H, W) in [0, 1], drawn from a generator
    seeded with ``seed``: the same seed gives the same noise and the same permutation every time."""
    check_choice("transform", name, list(TRANSFORMS))
    transform = TRANSFORMS[name]
    transform.parameter.check(value, min(x.shape[-2:]))
    return transform.function(x, value, _generator(seed))
