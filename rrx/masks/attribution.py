"""``mask=attribution``: masks made without human labelling, from a trained classifier's attribution maps (thesis
8.2: masks built "automatically"). A seeded share ``p`` of each class keeps its labelled mask (as ``mask=fraction``);
every other training image gets the mask of its map, computed once before training:

- the map of the image's label by ``attribution`` (any of ``rrx.attributions``, non-negative) of the model in
  ``checkpoint``, at the image's size;
- ``rule=top_share``: the ``share`` most relevant pixels (k = max(1, round(share * H * W)) of them, ties by position)
  are the object;
- ``rule=otsu``: the pixels above Otsu's threshold of the map (Otsu 1979: of 256 bins over the map's range, the
  threshold t that maximises the between-class variance w0(t) w1(t) (mu0(t) - mu1(t))^2).

Quality against the labelled masks, which the training images have: the IoU |A ∩ L| / |A ∪ L| of each made mask A
with the image's labelled mask L, its mean over the images that use them (those without a labelled mask), and per
class, in ``metrics.json`` (``train.masks``, ``rrx.masks.made_mask_quality``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from omegaconf import MISSING

from rrx.config import ComponentConfig, param
from rrx.data.base import labels_of
from rrx.masks import (
    KeptMasks,
    cached_masks,
    counts_per_class,
    log_made_masks,
    made_mask_quality,
    masks_of,
    register_mask_source,
)
from rrx.masks.fraction import kept_per_class

RULES = ("top_share", "otsu")


def top_share_masks(maps: torch.Tensor, share: float) -> torch.Tensor:
    """(B, 1, H, W) in {0, 1}: of each map (B, H, W) its k = max(1, round(share * H * W)) largest pixels (the first
    of equal values in position order)."""
    flat = maps.flatten(1)
    k = max(1, round(share * flat.shape[1]))
    order = torch.sort(flat, dim=1, descending=True, stable=True).indices[:, :k]
    return torch.zeros_like(flat).scatter_(1, order, 1.0).view(maps.shape[0], 1, *maps.shape[1:])


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of ``values``: the bin edge t maximising w0 w1 (mu0 - mu1)^2 over ``bins`` bins spanning
    their range (the first of equal maxima); pixels above t are the object. A constant map has none above."""
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return high
    counts, edges = np.histogram(values, bins=bins, range=(low, high))
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(counts)[:-1].astype(float)  # the classes below and above each inner edge
    w1 = counts.sum() - w0
    sum0 = np.cumsum(counts * centres)[:-1]
    mu0 = sum0 / np.maximum(w0, 1)
    mu1 = ((counts * centres).sum() - sum0) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(edges[1:-1][int(np.argmax(between))])


def otsu_masks(maps: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) in {0, 1}: each map above its Otsu threshold."""
    masks = [(m > otsu_threshold(m.numpy().ravel())).float() for m in maps.cpu()]
    return torch.stack(masks)[:, None]


@dataclass
class AttributionMaskConfig(ComponentConfig):
    """masks without labelling: a trained classifier's attribution maps, thresholded (a share p keeps its labels)"""

    name: str = param("attribution", "the registered name of the mask source")
    checkpoint: str = param(MISSING, "the classifier whose maps make the masks: a run folder or its checkpoint.pt")
    attribution: str = param("gradcam", "the attribution of the image's label (rrx.attributions)")
    rule: str = param(
        "top_share", "top_share: the share most relevant pixels | otsu: the map above Otsu's threshold", choices=RULES
    )
    share: float = param(
        0.25, "top_share: the share of each image's pixels that is its object", low=0, low_open=True, high=1
    )
    p: float = param(0.0, "the share of each class's training images that keeps its labelled mask", low=0, high=1)
    seed: int | None = param(None, "the seed of which images keep their labelled masks (null: the run's seed)")


@register_mask_source("attribution", config=AttributionMaskConfig)
class AttributionMasks:
    def __init__(self, cfg):
        from rrx.attributions import check_attribution

        check_attribution("mask.attribution", cfg.attribution)
        self.cfg = cfg
        self.label = f"{cfg.attribution} masks" + (f", {100 * float(cfg.p):g}% labelled" if cfg.p else "")

    def made(self, model, train_set, runtime) -> tuple[torch.Tensor, torch.Tensor]:
        """(the rule's masks of every training image's map of its label, its labelled masks), each (N, 1, H, W), in
        order, from one pass over the images."""
        from rrx.attributions import attribution_map

        model.eval()

        def rule(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            maps = attribution_map(model, x, y, self.cfg.attribution).detach()
            return top_share_masks(maps, float(self.cfg.share)) if self.cfg.rule == "top_share" else otsu_masks(maps)

        return masks_of(train_set, runtime, "attribution masks", rule)

    def apply(self, train_set, classes: list[str], run_seed: int, dataset=None, runtime=None, cache=None) -> tuple:
        from rrx.checkpoint import load_checkpoint
        from rrx.models import model_from_checkpoint
        from rrx.provenance import file_sha256

        assert dataset is not None and runtime is not None  # the task gives them
        ckpt, file = load_checkpoint(self.cfg.checkpoint)
        settings = {k: self.cfg[k] for k in ("attribution", "rule", "share")}
        key = {"source": "attribution", **settings, "sha256": file_sha256(file), "images": len(train_set)}
        masks, labelled = cached_masks(
            cache,
            key,
            lambda: self.made(runtime.place(model_from_checkpoint(ckpt, dataset)), train_set, runtime),
            runtime.rank == 0,
        )
        labels = labels_of(train_set)
        seed = self.cfg.seed if self.cfg.seed is not None else run_seed
        kept = kept_per_class(labels, float(self.cfg.p), torch.Generator().manual_seed(seed))
        report = {
            "source": "attribution",
            "p": float(self.cfg.p),
            "images": len(labels),
            "with_mask": len(kept),
            "per_class": counts_per_class(labels, kept, classes),
            "checkpoint": str(file.resolve()),
            "attribution": self.cfg.attribution,
            "rule": self.cfg.rule,
            "share": float(self.cfg.share) if self.cfg.rule == "top_share" else None,
            **made_mask_quality(masks, labelled, labels, kept, classes),
        }
        log_made_masks("attribution", f"{self.cfg.attribution} ({self.cfg.rule})", report)
        return KeptMasks(train_set, kept, masks), report
