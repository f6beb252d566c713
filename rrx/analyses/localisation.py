"""Does an attribution map fall on the object? Batched metrics of maps against object masks (1 on the object).

Maps are (B, H, W) relevance, masks (B, H, W) or (B, 1, H, W) in {0, 1}. Every metric returns one value per image
(B,), NaN for an image whose mask holds no object pixel (nothing to localise) or whose map is constant, e.g. all zero
(it points nowhere; Quantus refuses such a map).

- Pointing game (Zhang et al. 2018): 1 when a pixel of maximal relevance lies on the object (ties: any of them).
- Relevance mass accuracy (Arras et al. 2022): the share of positive relevance that lies on the object.
- Relevance rank accuracy (Arras et al. 2022): of the |mask| most relevant pixels, the share on the object.
- Weighted IoU, ObEy (seed 002, Eq. 1): wIoU(p, q) = sum_j p_j q_j / sum_j max(p_j, q_j), p the saliency map
  normalised to [0, 1], q the object mask; the unweighted IoU of the paper's appendix thresholds p first.

``rrx analyze analysis=localisation`` and ``analysis=obey`` run them over a model's test images (``Localisation``,
``ObEy``).
"""

from __future__ import annotations

import torch

from rrx.analyses import register_analysis
from rrx.analyses.common import TARGETS, attribution_list, batches, explain, predict, summary
from rrx.errors import check_choice


def _flat(maps: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, N) maps, (B, N) boolean masks, and (B,) True where the metric is undefined: an empty mask or a constant map."""
    a = maps.reshape(maps.shape[0], -1).float()
    s = masks.reshape(masks.shape[0], -1) > 0.5
    if a.shape != s.shape:
        raise ValueError(f"maps {tuple(maps.shape)} and masks {tuple(masks.shape)} differ in size")
    return a, s, (s.sum(1) == 0) | (a.amax(1) == a.amin(1))


def _nan_where(values: torch.Tensor, undefined: torch.Tensor) -> torch.Tensor:
    return torch.where(undefined, torch.full_like(values, float("nan")), values)


def pointing_game(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    a, s, undefined = _flat(maps, masks)
    at_max = a == a.max(1, keepdim=True).values
    return _nan_where((at_max & s).any(1).float(), undefined)


def relevance_mass(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    a, s, undefined = _flat(maps, masks)
    positive = a.clamp(min=0)
    return _nan_where((positive * s).sum(1) / positive.sum(1), undefined)


def relevance_rank(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    a, s, undefined = _flat(maps, masks)
    k = s.sum(1)  # (B,)
    order = torch.sort(a, dim=1, descending=True, stable=True).indices
    inside = s.gather(1, order)  # the mask along the relevance ranking
    top = torch.arange(a.shape[1], device=a.device)[None] < k[:, None]
    return _nan_where((inside & top).sum(1) / k.clamp(min=1), undefined)


def normalise_map(maps: torch.Tensor) -> torch.Tensor:
    """Each map scaled to [0, 1] by its minimum and maximum (a constant map becomes 0)."""
    flat = maps.reshape(maps.shape[0], -1).float()
    low, high = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    return ((flat - low) / (high - low).clamp(min=1e-12)).reshape(maps.shape)


def weighted_iou(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """ObEy's wIoU between the [0, 1]-normalised maps and the masks."""
    p = normalise_map(maps).reshape(maps.shape[0], -1)
    _, s, undefined = _flat(maps, masks)
    q = s.float()
    return _nan_where((p * q).sum(1) / torch.maximum(p, q).sum(1).clamp(min=1e-12), undefined)


def iou(maps: torch.Tensor, masks: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """The unweighted variant: IoU of {normalised map >= threshold} with the mask."""
    p = normalise_map(maps).reshape(maps.shape[0], -1) >= threshold
    _, s, undefined = _flat(maps, masks)
    return _nan_where((p & s).sum(1) / (p | s).sum(1).clamp(min=1), undefined)


LOCALISATION = {"pointing_game": pointing_game, "relevance_mass": relevance_mass, "relevance_rank": relevance_rank}


@register_analysis("localisation")
class Localisation:
    """Pointing game, relevance mass and relevance rank accuracy of each attribution in ``cfg.attribution``, on the test
    images of ``cfg.variation`` with their object masks, explaining ``cfg.target`` (the label or the prediction).

    Results: ``{attribution: {metric: {"mean", "std", "n", "undefined"}}}``; an image without object pixels, or whose map is constant, is undefined.
    """

    needs_masks = True
    keyed = ("attribution",)  # the settings its result keys name

    def __init__(self, cfg):
        self.attributions = attribution_list("analysis.attribution", cfg.attribution)
        check_choice("analysis.target", cfg.target, TARGETS)
        self.target, self.ig_steps = cfg.target, int(cfg.ig_steps)

    def run(self, model, data, dataset, runtime, out_dir) -> dict:
        values = {name: {metric: [] for metric in LOCALISATION} for name in self.attributions}
        for x, y, mask in batches(data, runtime, "localisation"):
            target = predict(model, x) if self.target == "prediction" else y
            for name in self.attributions:
                maps = explain(model, x, target, name, self.ig_steps)
                for metric, fn in LOCALISATION.items():
                    values[name][metric] += fn(maps, mask).tolist()
        return {name: {metric: summary(v) for metric, v in per.items()} for name, per in values.items()}


@register_analysis("obey")
class ObEy:
    """ObEy (seed 002, Eq. 2): the weighted IoU of each prediction's saliency map (normalised to [0, 1]) with the
    object mask, averaged over the test images; also the thresholded IoU (the paper's appendix) and both split by
    correct and wrong predictions (its Table 14 use). rrx's datasets hold one object per image and a classifier makes
    one prediction per image, so the paper's max over objects and mean over predictions are that one value.

    Results: ``{attribution: {"wiou" | "iou": {"all" | "correct" | "wrong": {"mean", "std", "n", "undefined"}}}}``.
    """

    needs_masks = True
    keyed = ("attribution",)  # the settings its result keys name

    def __init__(self, cfg):
        self.attributions = attribution_list("analysis.attribution", cfg.attribution)
        self.threshold, self.ig_steps = float(cfg.iou_threshold), int(cfg.ig_steps)

    def run(self, model, data, dataset, runtime, out_dir) -> dict:
        scores = {name: {"wiou": [], "iou": []} for name in self.attributions}
        correct: list[bool] = []
        for x, y, mask in batches(data, runtime, "obey"):
            prediction = predict(model, x)
            correct += (prediction == y).tolist()
            for name in self.attributions:
                maps = explain(model, x, prediction, name, self.ig_steps)
                scores[name]["wiou"] += weighted_iou(maps, mask).tolist()
                scores[name]["iou"] += iou(maps, mask, self.threshold).tolist()
        split = {"all": [True] * len(correct), "correct": correct, "wrong": [not c for c in correct]}
        return {name: {metric: {part: summary([v for v, keep in zip(values, chosen) if keep]) for part, chosen in split.items()}
                       for metric, values in per.items()} for name, per in scores.items()}
