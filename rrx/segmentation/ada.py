"""ADA for segmentation (thesis ch. 3, Alg. 1, Eq. 3.2-3.4) and the robustness set (Alg. 2).

The attribution (Eq. 3.2) is taken of the summed foreground output y = sum_ij f(x)_ij with respect to the input
(``ForegroundScore``), by any attribution of ``rrx.attributions`` that a one-output model can take (the thesis's
five: saliency, input x gradient, Grad-CAM, guided backprop, guided Grad-CAM) through ``attribution_map``; the
window erased (Eq. 3.3-3.4) is the Z x Z one with the largest attribution among those without a ground-truth
foreground pixel, found with the summed-area search of classification ADA (``rrx.methods.ada``).
"""

from __future__ import annotations

import torch
from torch.utils.data import ConcatDataset, Dataset, Subset

from rrx.attributions import attribution_map, attribution_names, display_name
from rrx.errors import RRXError
from rrx.methods.ada import Erased, best_context_window, erase_windows
from rrx.models.unet import ForegroundScore, Segmenter
from rrx.runtime import Runtime

# name -> display name (the tables') of every registered attribution of a one-output model: not those that score a
# class among several (IPHA's softmax probability of the only output is always 1)
ATTRIBUTIONS = {name: display_name(name) for name in attribution_names(lambda a: not a.needs_classes)}


def check_window(key: str, z: int, image_size: int) -> None:
    """A Z x Z window must fit in the image."""
    if z > image_size:
        raise RRXError(
            f"{key}={z} is larger than the {image_size}x{image_size} images (dataset.image_size): "
            f"use a window of at most {image_size} pixels"
        )


def foreground_attribution(model: Segmenter, x: torch.Tensor, method: str) -> torch.Tensor:
    """(B, H, W) non-negative attribution of the summed foreground output (Eq. 3.2) by ``method``."""
    target = torch.zeros(len(x), dtype=torch.long, device=x.device)
    return attribution_map(ForegroundScore(model), x, target, method)


def ada_windows(model: Segmenter, data: Dataset, method: str, z: int, runtime: Runtime) -> torch.Tensor:
    """Top-left corners (N, 2) of the window ADA erases in each image of ``data`` (items (x, y, m)), (-1, -1) where
    every Z x Z window touches the ground truth (Eq. 3.3). The model is put in eval mode and left there."""
    model.eval()
    corners = []
    for x, _, m in runtime.loader(data, shuffle=False):
        x, m = x.to(runtime.device), m.to(runtime.device)
        corners.append(best_context_window(foreground_attribution(model, x, method), m, z).cpu())
    return torch.cat(corners)


def with_ada_images(conventional: Dataset, originals: Dataset, corners: torch.Tensor, z: int) -> Dataset:
    """Alg. 1 line 5: the conventional data plus the originals with their window erased (Eq. 3.4), for the images
    that got one."""
    kept = torch.nonzero(corners[:, 0] >= 0).flatten().tolist()
    return ConcatDataset([conventional, Subset(Erased(originals, corners, z), kept)])


def robustness_corners(h: int, w: int, z: int) -> torch.Tensor:
    """Alg. 2 lines 3-4: the top-left corners (P, 2) of the erased region, rows every z pixels from 0 while < h,
    columns likewise while < w (the thesis's n = h = w); a region past the border is cut there (``erase_region``
    sets the pixels from (i, j) to (i + z, j + z) that exist)."""
    return torch.cartesian_prod(torch.arange(0, h, z), torch.arange(0, w, z))


def robustness_batch(x: torch.Tensor, m: torch.Tensor, z: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Alg. 2 for a batch: every image (B, C, H, W) with a z x z region erased at each grid position, image-major
    (B P, C, H, W), and the unchanged ground truth repeated alike (B P, 1, H, W)."""
    h, w = x.shape[-2:]
    corners = robustness_corners(h, w, z)
    p = len(corners)
    erased = erase_windows(x.repeat_interleave(p, dim=0), corners.repeat(len(x), 1), z)
    return erased, m.repeat_interleave(p, dim=0)
