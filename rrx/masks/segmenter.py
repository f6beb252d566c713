"""``mask=segmenter``: masks from a segmentation model trained on the labelled share (thesis 8.2: RRDA "with a few
examples" labelled). The segmenter is a ``task=segmentation mask=fraction mask.p=<p>`` run (the thesis's U-Net,
ch. 3) on the same training images: it trained on the seeded share p of each class's labelled masks, and those
images keep their labelled masks here; every other training image gets the segmenter's mask, computed once before
training: the pixels whose foreground probability is above the segmenter's own ``segmentation.threshold``
(Table 1's prediction, ``rrx.tasks.segmentation.score``).

The labelled share is the segmenter's, so that no image it was not trained on keeps a label: its indices are drawn
again from its ``mask.p`` and seed over the base training set (``rrx.masks.fraction.kept_per_class``), and the
segmenter's recorded counts per class must match, else the two runs read different training sets. A classification
run that holds out ``trainer.val_fraction`` of the images trains on its share of them.

Quality against the labelled masks: the IoU |A ∩ L| / |A ∪ L| (``rrx.masks.iou``) of each made mask A with
the image's labelled mask L, over the images the segmenter did not train on (its mean and per class), and over the
ones it did, in ``metrics.json`` (``train.masks``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from omegaconf import MISSING

from rrx.config import ComponentConfig, param
from rrx.data.base import labels_of, unwrapped
from rrx.errors import RRXError
from rrx.masks import (
    KeptMasks,
    cached_masks,
    counts_per_class,
    iou,
    log_made_masks,
    made_mask_quality,
    masks_of,
    register_mask_source,
)
from rrx.masks.fraction import kept_per_class


@dataclass
class SegmenterMaskConfig(ComponentConfig):
    """masks from a U-Net trained on the labelled share (task=segmentation mask=fraction), for the other images"""

    name: str = param("segmenter", "the registered name of the mask source")
    checkpoint: str = param(MISSING, "the segmenter: a task=segmentation mask=fraction run folder or its checkpoint.pt")


def segmenter_share(ckpt: dict, where: str) -> dict:
    """The ``mask=fraction`` report a segmentation checkpoint trained on (its p, seed, counts); one RRXError for a
    classifier or a segmenter of every labelled mask."""
    if ckpt.get("task") != "segmentation":
        raise RRXError(
            f"mask.checkpoint={where} is a classifier; mask=segmenter reads a segmenter: "
            "rrx train task=segmentation mask=fraction mask.p=<share>"
        )
    share = ckpt.get("masks")
    if share is None:
        raise RRXError(
            f"mask.checkpoint={where} trained on every training image's labelled mask, which leaves mask=segmenter "
            "no image to make a mask for: train it with mask=fraction mask.p=<share>"
        )
    return share


def predicted_masks(model, data, runtime, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(``model(x) > threshold`` of every item of ``data``, its labelled masks), each (N, 1, H, W) uint8, in order."""
    model.eval()

    def predicted(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model(x) > threshold

    return masks_of(data, runtime, "segmenter masks", predicted)


@register_mask_source("segmenter", config=SegmenterMaskConfig)
class SegmenterMasks:
    def __init__(self, cfg):
        from rrx.checkpoint import load_checkpoint

        self.cfg = cfg
        self.ckpt, self.file = load_checkpoint(cfg.checkpoint, segmentation=True)
        self.share = segmenter_share(self.ckpt, cfg.checkpoint)
        self.label = f"U-Net masks, {100 * float(self.share['p']):g}% labelled"

    def apply(self, train_set, classes: list[str], run_seed: int, dataset=None, runtime=None, cache=None) -> tuple:
        from rrx.checkpoint import saved_config
        from rrx.models import model_from_checkpoint
        from rrx.provenance import file_sha256

        assert dataset is not None and runtime is not None  # the task gives them
        where, ckpt, share = self.cfg.checkpoint, self.ckpt, self.share
        base, indices = unwrapped(train_set)
        base_labels = labels_of(base)
        seen = set(kept_per_class(base_labels, float(share["p"]), torch.Generator().manual_seed(int(share["seed"]))))
        if len(base_labels) != share["images"] or counts_per_class(base_labels, sorted(seen), classes) != {
            k: list(v) for k, v in share["per_class"].items()
        }:
            raise RRXError(
                f"mask.checkpoint={where} trained on another training set ({share['images']} images) than this run's "
                f"({len(base_labels)}): train the segmenter with this run's dataset settings"
            )
        positions = list(range(len(base_labels))) if indices is None else indices
        kept = [i for i, b in enumerate(positions) if b in seen]  # this run's items the segmenter trained on
        channels = int(train_set[0][0].shape[0])
        threshold = float(saved_config(ckpt["config"]).segmentation.threshold)
        masks, labelled = cached_masks(
            cache,
            {"source": "segmenter", "sha256": file_sha256(self.file), "images": len(train_set)},
            lambda: predicted_masks(
                runtime.place(model_from_checkpoint(ckpt, dataset, channels)), train_set, runtime, threshold
            ),
            runtime.rank == 0,
        )
        if masks.shape != labelled.shape:
            raise RRXError(
                f"mask.checkpoint={where} segments images of another size ({tuple(masks.shape[-2:])}) than this "
                f"run's ({tuple(labelled.shape[-2:])}): train the segmenter with this run's dataset.image_size"
            )
        labels = [base_labels[b] for b in positions]
        seen_iou = iou(masks[kept].float(), labelled[kept].float()) if kept else None
        report: dict = {
            "source": "segmenter",
            "p": float(share["p"]),
            "images": len(labels),
            "with_mask": len(kept),
            "per_class": counts_per_class(labels, kept, classes),
            "checkpoint": str(self.file.resolve()),
            "threshold": threshold,
            **made_mask_quality(masks, labelled, labels, kept, classes),
            "iou_trained_on": None if seen_iou is None else float(seen_iou.mean()),
        }
        log_made_masks("segmenter", "U-Net", report)
        return KeptMasks(train_set, kept, masks), report
