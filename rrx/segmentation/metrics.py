"""The metrics of thesis Table 1 (after Prados et al. 2017), the soft Dice loss, and the IoU of erased windows.

Per image, for a predicted mask P and a ground truth G (both binary):

- DSC = 2 |P and G| / (|P| + |G|) (Dice 1945), in percent; 100 when both are empty.
- HSD, the Hausdorff surface distance (Taha & Hanbury 2015): max(d(S_P, S_G), d(S_G, S_P)) with d(A, B) = max over a
  in A of the distance from a to the nearest b in B, between the surfaces S (the mask pixels with a 4-neighbour
  outside the mask or beyond the image border), in pixels or, with a pixel spacing, in millimetres; 0 when both
  are empty, undefined when only one is.
- TPR = TP / (TP + FN), TNR = TN / (TN + FP), PPV = TP / (TP + FP), in percent; undefined where the denominator is 0
  (no ground-truth foreground, no background, no predicted foreground).

An undefined value is NaN per image; the summary averages each metric over the images where it is defined and
records how many were not (``undefined``), so a mean is never taken over a NaN.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numpy.typing import ArrayLike
from scipy.ndimage import binary_erosion
from scipy.spatial.distance import directed_hausdorff

METRICS = ("DSC", "HSD", "TPR", "TNR", "PPV")  # Table 1, in the thesis's column order
FOUR_NEIGHBOURS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)


def soft_dice_loss(probs: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 - (2 sum(p g) + s) / (sum(p) + sum(g) + s) over the whole batch (Milletari et al. 2016; medicaltorch's
    ``dice_loss`` with smoothing s = 1): the training loss ``segmentation.loss=dice``.

    Args:
        probs (Tensor): (B, 1, H, W) foreground probabilities.
        target (Tensor): (B, 1, H, W) ground truth in {0, 1}.
    """
    p, g = probs.float().flatten(), target.float().flatten()
    return 1 - (2 * (p * g).sum() + smooth) / (p.sum() + g.sum() + smooth)


def surface(mask: np.ndarray) -> np.ndarray:
    """(K, 2) row, column coordinates of the surface pixels of a 2-D boolean mask: mask pixels with a 4-neighbour
    outside the mask (the image border counts as outside)."""
    inner = binary_erosion(mask, structure=FOUR_NEIGHBOURS, border_value=0)
    return np.argwhere(mask & ~inner)


def hausdorff_surface_distance(pred: np.ndarray, target: np.ndarray, spacing: ArrayLike = (1.0, 1.0)) -> float:
    """HSD between two 2-D boolean masks (see the module docstring); ``spacing`` is (row, column) per pixel."""
    a, b = surface(pred) * np.asarray(spacing), surface(target) * np.asarray(spacing)
    if len(a) == 0 and len(b) == 0:
        return 0.0
    if len(a) == 0 or len(b) == 0:
        return math.nan
    return max(directed_hausdorff(a, b)[0], directed_hausdorff(b, a)[0])


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """100 num / den per image, NaN where den is 0."""
    return torch.where(den > 0, 100 * num / den.clamp(min=1), torch.full_like(num, math.nan))


def per_image(pred: torch.Tensor, target: torch.Tensor, spacing: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Table 1's metrics of every image: {metric: (B,) float64}, NaN where undefined.

    Args:
        pred (Tensor): (B, 1, H, W) boolean prediction.
        target (Tensor): (B, 1, H, W) boolean ground truth.
        spacing (Tensor, optional): (B, 2) pixel size (row, column), e.g. in mm, for HSD. Default: None (pixels).
    """
    p, g = pred.flatten(1).bool().cpu(), target.flatten(1).bool().cpu()
    tp, fp = (p & g).sum(1).double(), (p & ~g).sum(1).double()
    fn, tn = (~p & g).sum(1).double(), (~p & ~g).sum(1).double()
    dice = torch.where(tp + fp + fn > 0, 200 * tp / (2 * tp + fp + fn).clamp(min=1), torch.full_like(tp, 100.0))
    masks_p, masks_g = pred[:, 0].bool().cpu().numpy(), target[:, 0].bool().cpu().numpy()
    steps = np.ones((len(p), 2)) if spacing is None else spacing.cpu().double().numpy()
    hsd = torch.tensor(
        [hausdorff_surface_distance(a, b, s) for a, b, s in zip(masks_p, masks_g, steps)], dtype=torch.float64
    )
    return {"DSC": dice, "HSD": hsd, "TPR": _ratio(tp, tp + fn), "TNR": _ratio(tn, tn + fp), "PPV": _ratio(tp, tp + fp)}


def summarise(values: dict[str, torch.Tensor]) -> dict:
    """{"mean": {metric: mean over the images where defined, or None}, "undefined": {metric: count}, "images": n}."""
    mean, undefined = {}, {}
    for name in METRICS:
        v = values[name]
        defined = ~torch.isnan(v)
        mean[name] = float(v[defined].mean()) if defined.any() else None
        undefined[name] = int((~defined).sum())
    return {"mean": mean, "undefined": undefined, "images": int(len(values["DSC"]))}


def window_iou(a: torch.Tensor, b: torch.Tensor, z: int) -> torch.Tensor:
    """IoU of two z x z windows per image, from their top-left corners a, b (N, 2); NaN where either is (-1, -1)
    (an image without a window). Intersection = max(0, z - |dr|) max(0, z - |dc|), union = 2 z^2 - intersection."""
    d = (a - b).abs().double()
    inter = (z - d).clamp(min=0).prod(dim=1)
    iou = inter / (2 * z * z - inter)
    return torch.where((a[:, 0] >= 0) & (b[:, 0] >= 0), iou, torch.full_like(iou, math.nan))


def iou_matrix(windows: dict[str, torch.Tensor], z: int) -> dict:
    """Thesis Fig. 10: the mean IoU between the windows every two methods erase, over the images where both found one.

    Args:
        windows (dict): method -> (N, 2) corners of the same N images.
    Returns:
        {"methods": [...], "matrix": [[...]], "images": [[...]]} (the images behind each mean).
    """
    names = list(windows)
    matrix, counts = [], []
    for a in names:
        row, count = [], []
        for b in names:
            iou = window_iou(windows[a], windows[b], z)
            defined = ~torch.isnan(iou)
            row.append(float(iou[defined].mean()) if defined.any() else None)
            count.append(int(defined.sum()))
        matrix.append(row)
        counts.append(count)
    return {"methods": names, "matrix": matrix, "images": counts}
