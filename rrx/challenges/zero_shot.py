"""The zero-shot protocol of thesis ch. 6: accuracy per variation, score variability (Eq. 6.3, Table 14) and the
similarity distributions of the class texts (Fig. 25), for a zero-shot model (``model=clip`` / ``align``)."""

from __future__ import annotations

import logging

import numpy as np
import torch
from tqdm import tqdm

from rrx.challenges import register_challenge
from rrx.data.in9 import foreground_stem
from rrx.errors import RRXError
from rrx.runtime import Runtime

log = logging.getLogger(__name__)

MIXED = ("mixed_same", "mixed_rand", "mixed_next")


def score_variability(s_original: torch.Tensor, s_challenge: torch.Tensor) -> torch.Tensor:
    """Thesis Eq. 6.3, elementwise:

        SV(x_original, x_challenge, c) = (s(c, x_original) - s(c, x_challenge)) / s(c, x_original)
    """
    return (s_original - s_challenge) / s_original


def split_sv(sv: torch.Tensor) -> dict:
    """SV+ (mean of the positive SVs: the challenge image scores lower) and SV- (mean magnitude of the negative
    ones: it scores higher), in percent, with their counts; NaN where there are none."""
    plus, minus = sv[sv > 0], -sv[sv < 0]
    return {"sv_plus": 100 * plus.mean().item() if len(plus) else float("nan"), "n_plus": len(plus),
            "sv_minus": 100 * minus.mean().item() if len(minus) else float("nan"), "n_minus": len(minus)}


def sv_of_pairs(s_original: torch.Tensor, s_challenge: torch.Tensor, labels: torch.Tensor) -> dict:
    """Table 14's score variability of N (original, challenge) image pairs from their class scores (N, K) and
    labels (N,).

    Thesis 6.2.4 defines SV for the model "when making errors on challenge images", and the Pred. column "if class c
    is not the target": ``errors`` holds SV+/SV- of the target class (``target``) and of the class predicted on the
    challenge image (``pred``) over the pairs whose challenge image is misclassified (pred != label), with their
    number ``pairs``. ``all_images`` is the same over every pair, where on the correctly classified ones pred = target.
    """
    pred = s_challenge.argmax(1)
    rows = torch.arange(len(labels))

    def columns(keep: torch.Tensor) -> dict:
        r, y, p = rows[keep], labels[keep], pred[keep]
        return {"target": split_sv(score_variability(s_original[r, y], s_challenge[r, y])),
                "pred": split_sv(score_variability(s_original[r, p], s_challenge[r, p])),
                "pairs": int(keep.sum())}

    return {"errors": columns(pred != labels), "all_images": columns(torch.ones_like(labels, dtype=torch.bool))}


BOX_KEYS = ("q1", "med", "q3", "whislo", "whishi", "mean")


def box_stats(values: np.ndarray) -> dict:
    """Matplotlib's box statistics (quartiles, whiskers at the furthest points within 1.5 IQR, mean), as JSON
    numbers for ``Axes.bxp``."""
    from matplotlib.cbook import boxplot_stats

    stats = boxplot_stats(values)[0]
    return {key: float(stats[key]) for key in BOX_KEYS}


def original_index(challenge_set, original_set) -> np.ndarray:
    """For each image of a mixed variation, the index of its foreground's image in ``original``.

    IN-9 layout: ``<class>/fg_<stem>_bg_<stem2>`` pairs with ``<class>/<stem>``; RIVAL10's mixed image i is built on
    test image i. An image without its original is an error naming it.
    """
    if not hasattr(challenge_set, "samples"):
        return np.arange(len(challenge_set))
    where = {(label, foreground_stem(path.name)): i for i, (path, label) in enumerate(original_set.samples)}
    index = []
    for path, label in challenge_set.samples:
        key = (label, foreground_stem(path.name))
        if key not in where:
            raise RRXError(f"challenge=zero_shot: {path} has no original image {key[1]} of its class (score variability "
                           "pairs each mixed image with its original)")
        index.append(where[key])
    return np.asarray(index)


@torch.no_grad()
def scores(model, data, runtime: Runtime, desc: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(class scores s (N, K), text similarities (N, T), labels (N,)) of every image of ``data``, on the CPU."""
    backbone = model.backbone
    s, sims, labels = [], [], []
    for x, y, *_ in tqdm(runtime.loader(data, shuffle=False), desc=desc, leave=False, disable=not runtime.progress):
        with runtime.autocast():
            features = model.forward_features(x.to(runtime.device))
        s.append(backbone.class_scores(features).float().cpu())
        sims.append(backbone.similarities(features).float().cpu())
        labels.append(y)
    return torch.cat(s), torch.cat(sims), torch.cat(labels)


@register_challenge("zero_shot")
class ZeroShotChallenge:
    """Accuracy on ``cfg.variations`` (with BG-Gap), SV+/SV- of the target and the predicted class on each mixed
    variation against its original, over the misclassified pairs and over all pairs (Table 14, ``sv_of_pairs``),
    and box statistics of the similarity of each class's images with each text of their class per variation
    (Fig. 25)."""

    def __init__(self, cfg):
        self.variations = list(dict.fromkeys(["original", *cfg.variations]))

    def needs(self) -> list[tuple[str, bool]]:
        return [(v, False) for v in self.variations]

    def evaluate(self, model, dataset, runtime: Runtime) -> dict:
        backbone = model.backbone
        if not hasattr(backbone, "class_scores"):
            raise RRXError("challenge=zero_shot needs a zero-shot model (model=clip or model=align)")
        model.eval()
        classes, texts, owner = list(dataset.classes), backbone.texts, backbone.owner.cpu()
        out = {"accuracy": {}, "score_variability": {}, "similarities": {}}
        original = None
        for variation in self.variations:
            data = dataset.variation_set(variation)
            s, sims, labels = scores(model, data, runtime, variation)
            pred = s.argmax(1)
            out["accuracy"][variation] = (pred == labels).float().mean().item()
            out["similarities"][variation] = {
                classes[c]: {texts[t]: box_stats(sims[labels == c, t].numpy())
                             for t in torch.nonzero(owner == c).flatten().tolist()}
                for c in range(len(classes)) if (labels == c).any()}
            if variation == "original":
                original = (data, s)
            elif variation in MIXED:
                s_orig = original[1][original_index(data, original[0])]
                out["score_variability"][variation] = sv_of_pairs(s_orig, s, labels)
            log.info("%-10s accuracy %.2f%%", variation, 100 * out["accuracy"][variation])
        acc = out["accuracy"]
        if "mixed_same" in acc and "mixed_rand" in acc:
            out["bg_gap"] = acc["mixed_same"] - acc["mixed_rand"]
        return out
