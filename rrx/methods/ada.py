"""Active image Data Augmentation, ADA (thesis ch. 3, Alg. 1, Eq. 3.1-3.4).

Alg. 1 line 1: the conventional data are the originals plus a classically augmented copy (``augment``:
``classic``, a fixed random flip, rotation, shift and scale per image moving the mask with it; ``none``: the
originals only). Train ``standard_epochs`` on the conventional data; then, ``cycles`` times: compute an
attribution map for every original image (Eq. 3.2), find the Z x Z window with the largest attribution
that lies wholly in the context (Eq. 3.3), zero it (Eq. 3.4), and train ``ada_epochs`` on the conventional
data plus these new images (Alg. 1 lines 4-7; each cycle replaces the previous ADA images). An image
without any window in its context gives no ADA image (counted in the log).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sized, cast

import torch
import torch.nn.functional as F
from torch.utils.data import ConcatDataset, Dataset, Subset
from tqdm import tqdm

from rrx.attributions import attribution_map, check_attribution
from rrx.attributions.ipha import IPHA_FILLS
from rrx.config import param
from rrx.data.augment import AUGMENTATIONS
from rrx.data.table2 import ROTATION_DEG, SCALE, SHIFT
from rrx.methods import register_method
from rrx.methods.base import MethodConfig
from rrx.methods.standard import Standard

log = logging.getLogger(__name__)
AUGMENTS = ("classic", "none")  # method.augment: the names of rrx.data.augment.AUGMENTATIONS that Alg. 1 line 1 takes


@dataclass
class ADAConfig(MethodConfig):
    """ADA (thesis ch. 3): standard epochs, then cycles adding images whose most important context window is zeroed"""

    name: str = param("ada", "the registered name of the method")
    standard_epochs: int = param(3, "epochs on the conventional data before the first cycle", low=0)
    cycles: int = param(1, "ADA cycles (Alg. 1 lines 3-8)", low=0)
    ada_epochs: int = param(2, "epochs of each cycle", low=1)
    window: int = param(8, "Z: side of the erased window, in pixels", low=1)
    attribution: str = param(
        "gradcam", "any name of rrx.attributions (saliency, gradcam, ipha, ...) or captum:<ClassName>"
    )
    ipha_iterations: int = param(50, "attribution=ipha (thesis 7.2, hill climbing): steps per image", low=1)
    ipha_neighbours: int = param(
        8, "attribution=ipha: candidate masks per image and step (each zeroes a 2x2 block)", low=1
    )
    ipha_fill: str = param(
        "zeros", f"attribution=ipha: C filling removed pixels (rrx.fills): {' | '.join(IPHA_FILLS)}", choices=IPHA_FILLS
    )
    ipha_seed: int = param(0, "attribution=ipha: start masks and block positions, redrawn from this seed each cycle")
    augment: str = param(
        "classic",
        f"Alg. 1 line 1: the originals plus {AUGMENTATIONS['classic']} | none: the originals only",
        choices=AUGMENTS,
    )
    augment_seed: int = param(0, "the fixed augmentation drawn for each image")


def affine_params(n: int, generator: torch.Generator) -> torch.Tensor:
    """One draw per image: (n, 5) = flip (0/1), rotation (degrees), shift x, shift y (fractions of the side), scale."""
    u = torch.rand(n, 5, generator=generator)
    return torch.stack(
        [
            (u[:, 0] < 0.5).float(),
            (2 * u[:, 1] - 1) * ROTATION_DEG,
            (2 * u[:, 2] - 1) * SHIFT,
            (2 * u[:, 3] - 1) * SHIFT,
            SCALE[0] + u[:, 4] * (SCALE[1] - SCALE[0]),
        ],
        dim=1,
    )


def classic_augment(x: torch.Tensor, m: torch.Tensor, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip, then rotate, shift and scale the images (B, C, H, W) bilinearly and their masks (B, 1, H, W) by
    nearest neighbour with the same transform, so the mask stays on the object; outside the image is black / context.

    Args:
        params (Tensor): (B, 5) from ``affine_params``: flip, rotation (deg), shift x, shift y (fractions), scale.
    """
    flip = params[:, 0].bool()
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    m = torch.where(flip[:, None, None, None], m.flip(-1), m)
    angle = torch.deg2rad(params[:, 1])
    cos, sin, scale = torch.cos(angle) / params[:, 4], torch.sin(angle) / params[:, 4], params[:, 4]
    # affine_grid maps output to input coordinates in [-1, 1]: the inverse rotation and scale, minus the shift
    theta = torch.stack(
        [torch.stack([cos, -sin, -2 * params[:, 2] / scale], 1), torch.stack([sin, cos, -2 * params[:, 3] / scale], 1)],
        1,
    )  # (B, 2, 3)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    m = F.grid_sample(m, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return x, m


class Augmented(Dataset):
    """Items (x, y, m) of ``base`` under one fixed classic augmentation per index (drawn from ``seed``)."""

    def __init__(self, base: Dataset, seed: int):
        self.base = base
        self.params = affine_params(len(cast(Sized, base)), torch.Generator().manual_seed(seed))

    def __len__(self) -> int:
        return len(cast(Sized, self.base))

    def __getitem__(self, index: int):
        x, y, m = self.base[index]
        x, m = classic_augment(x[None], m[None], self.params[index : index + 1])
        return x[0], y, m[0]


def window_sums(values: torch.Tensor, z: int) -> torch.Tensor:
    """Sum of every z x z window of ``values`` (B, H, W) via a summed-area table: (B, H-z+1, W-z+1)."""
    table = F.pad(values.cumsum(1).cumsum(2), (1, 0, 1, 0))  # table[:, i, j] = sum of values[:, :i, :j]
    return table[:, z:, z:] - table[:, :-z, z:] - table[:, z:, :-z] + table[:, :-z, :-z]


def best_context_window(attribution: torch.Tensor, mask: torch.Tensor, z: int) -> torch.Tensor:
    """Top-left corner (row, col) of the z x z window with the largest attribution sum among the windows
    without any object pixel, per image: (B, 2); (-1, -1) where every window touches the object.

    Args:
        attribution (Tensor): (B, H, W), non-negative importance.
        mask (Tensor): (B, 1, H, W), 1 on the object.
        z (int): window side.
    """
    scores = window_sums(attribution.float(), z)
    scores = scores.masked_fill(window_sums(mask[:, 0].float(), z) > 0, float("-inf"))
    best, index = scores.flatten(1).max(dim=1)
    corners = torch.stack([index // scores.shape[2], index % scores.shape[2]], dim=1)
    corners[~torch.isfinite(best)] = -1
    return corners


def erase_windows(x: torch.Tensor, corners: torch.Tensor, z: int) -> torch.Tensor:
    """x * mask, the mask 0 on each image's z x z window (Eq. 3.4); corner (-1, -1) leaves x unchanged."""
    keep = torch.ones_like(x[:, :1])
    for b, (row, col) in enumerate(corners.tolist()):
        if row >= 0:
            keep[b, :, row : row + z, col : col + z] = 0
    return x * keep


class Erased(Dataset):
    """Items of ``base`` (x, y, m) with a z x z window zeroed where ``corners`` has one."""

    def __init__(self, base: Dataset, corners: torch.Tensor, z: int):
        self.base, self.corners, self.z = base, corners, z

    def __len__(self) -> int:
        return len(cast(Sized, self.base))

    def __getitem__(self, index: int):
        x, y, m = self.base[index]
        return erase_windows(x[None], self.corners[index : index + 1], self.z)[0], y, m


@dataclass(frozen=True)
class AdaSchedule:
    """Alg. 1's epochs: ``standard_epochs`` on the conventional data, then ``cycles`` cycles of ``ada_epochs``, each
    starting with new ADA images. Epochs are counted from 1 on the model's path (the standard ones first)."""

    standard_epochs: int
    cycles: int
    ada_epochs: int

    @property
    def total(self) -> int:
        return self.standard_epochs + self.cycles * self.ada_epochs

    def starts_cycle(self, epoch: int) -> bool:
        """``epoch`` is the first of a cycle (Alg. 1 line 4: new ADA images)."""
        return epoch > self.standard_epochs and (epoch - self.standard_epochs - 1) % self.ada_epochs == 0

    def cycle(self, epoch: int) -> int:
        """The cycle (1-based) ``epoch`` belongs to; 0 for a standard epoch."""
        return 0 if epoch <= self.standard_epochs else (epoch - self.standard_epochs - 1) // self.ada_epochs + 1


@register_method("ada", config=ADAConfig)
class ADA(Standard):
    """Cross-entropy on the original images plus the ADA images of the current cycle.

    ``cfg``: ``standard_epochs``, ``cycles``, ``ada_epochs``, ``window`` (Z), ``attribution``
    (any of ``rrx.attributions``; ``ipha``, the thesis's "methods combination" future work (8.2), also reads
    ``ipha_iterations``, ``ipha_neighbours``, ``ipha_fill`` and ``ipha_seed``). Runs
    ``standard_epochs + cycles * ada_epochs`` epochs (``trainer.epochs`` is not used).
    """

    display_name = "ADA"
    needs_masks_for_loss = True

    def __init__(self, cfg):
        super().__init__(cfg)
        check_attribution("method.attribution", cfg.attribution)
        self.schedule = AdaSchedule(int(cfg.standard_epochs), int(cfg.cycles), int(cfg.ada_epochs))
        self.standard_epochs = self.schedule.standard_epochs
        self.window, self.attribution = int(cfg.window), cfg.attribution
        self.augment, self.seed = cfg.augment, int(cfg.augment_seed)
        self.ipha = {
            "ipha_iterations": int(cfg.ipha_iterations),
            "ipha_neighbours": int(cfg.ipha_neighbours),
            "ipha_fill": cfg.ipha_fill,
        }
        self.ipha_seed = int(cfg.ipha_seed)
        self.corners: torch.Tensor | None = None  # the current cycle's windows, (N, 2)

    def total_epochs(self, epochs: int) -> int:
        return self.schedule.total

    def data_factor(self, epoch: int) -> int:
        """How many times the original training set the data of ``epoch`` is, at most: the conventional data
        (1, or 2 with ``augment``), plus up to 1 during cycles."""
        conventional = 2 if self.augment == "classic" else 1
        return conventional if epoch <= self.standard_epochs else conventional + 1

    def conventional(self, base: Dataset) -> Dataset:
        """Alg. 1 line 1: the originals, plus their classic augmentations with ``augment=classic``."""
        return ConcatDataset([base, Augmented(base, self.seed)]) if self.augment == "classic" else base

    def training_set(self, epoch: int, base: Dataset, model, runtime) -> Dataset | None:
        """The conventional data at epoch 1, the conventional data plus fresh ADA images at the first epoch of
        each cycle; otherwise None."""
        if epoch == 1 and self.standard_epochs > 0:
            return self.current_set(base)
        if not self.schedule.starts_cycle(epoch):
            return None
        model.eval()
        options = self.attribution_options()
        corners = []
        for x, y, m in tqdm(
            runtime.loader(base, shuffle=False), desc="ADA windows", leave=False, disable=not runtime.progress
        ):
            x, y = x.to(runtime.device), y.to(runtime.device)
            maps = attribution_map(model, x, y, self.attribution, **options)
            corners.append(best_context_window(maps, m.to(runtime.device), self.window).cpu())
        self.corners = torch.cat(corners)
        found = int((self.corners[:, 0] >= 0).sum())
        log.info(
            "ADA cycle: %d of %d images got a %dx%d window (%s); %d without a window in their context are left out",
            found,
            len(self.corners),
            self.window,
            self.window,
            self.attribution,
            len(self.corners) - found,
        )
        model.train()
        return self.current_set(base)

    def attribution_options(self) -> dict:
        """Keyword arguments of ``attribution_map``: IPHA's settings and a generator seeded afresh each cycle
        (so a cycle's maps do not depend on a resume); the other attributions read none of them."""
        return {**self.ipha, "generator": torch.Generator().manual_seed(self.ipha_seed)}

    def state_dict(self) -> dict:
        return {"corners": self.corners}

    def load_state_dict(self, state: dict) -> None:
        self.corners = state.get("corners")

    def current_set(self, base: Dataset) -> Dataset | None:
        """The conventional data, plus the current cycle's ADA images (only of images that got a window)."""
        data = self.conventional(base)
        if self.corners is None:
            return data
        kept = torch.nonzero(self.corners[:, 0] >= 0).flatten().tolist()
        return ConcatDataset([data, Subset(Erased(base, self.corners, self.window), kept)])
