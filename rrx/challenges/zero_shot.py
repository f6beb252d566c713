"""The zero-shot protocol of thesis ch. 6: accuracy per variation, score variability (Eq. 6.3, Table 14) and the
similarity distributions of the class texts (Fig. 25), for a zero-shot model (``model=clip`` / ``align``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from rrx.challenges import register_challenge
from rrx.config import ComponentConfig, param
from rrx.data.in9 import foreground_stem
from rrx.errors import RRXError
from rrx.plots import pyplot, save_figure
from rrx.predictions import concatenated, prediction_frame, share_correct
from rrx.record import Record
from rrx.runtime import Runtime
from rrx.tables import Figure, Table, model_name

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
    return {
        "sv_plus": 100 * plus.mean().item() if len(plus) else float("nan"),
        "n_plus": len(plus),
        "sv_minus": 100 * minus.mean().item() if len(minus) else float("nan"),
        "n_minus": len(minus),
    }


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
        return {
            "target": split_sv(score_variability(s_original[r, y], s_challenge[r, y])),
            "pred": split_sv(score_variability(s_original[r, p], s_challenge[r, p])),
            "pairs": int(keep.sum()),
        }

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
            raise RRXError(
                f"challenge=zero_shot: {path} has no original image {key[1]} of its class (score variability "
                "pairs each mixed image with its original)"
            )
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


@dataclass
class ZeroShotConfig(ComponentConfig):
    """thesis ch. 6 for zero-shot models (model=clip|align): accuracy, score variability, text similarities

    Accuracy per variation (Tables 12-13), score variability of each mixed image against its original (Eq. 6.3,
    Table 14), similarity distributions per class text (Fig. 25).
    """

    name: str = param("zero_shot", "the registered name of the challenge")
    variations: list[str] = param(
        ["original", "mixed_same", "mixed_rand", "mixed_next", "only_fg", "only_bg_t"],
        "the variations scored (original always is: the mixed ones' score variability is against it)",
    )


@register_challenge("zero_shot", config=ZeroShotConfig)
class ZeroShotChallenge:
    """Accuracy on ``cfg.variations`` (with BG-Gap), SV+/SV- of the target and the predicted class on each mixed
    variation against its original, over the misclassified pairs and over all pairs (Table 14, ``sv_of_pairs``),
    and box statistics of the similarity of each class's images with each text of their class per variation
    (Fig. 25). ``predictions``: a row per image (``rrx.predictions``; confidence: the softmax of the model's
    logits, its logit scale times s)."""

    def __init__(self, cfg):
        self.variations = list(dict.fromkeys(["original", *cfg.variations]))
        self.predictions: pd.DataFrame | None = None

    def needs(self) -> list[tuple[str, bool]]:
        return [(v, False) for v in self.variations]

    def evaluate(self, model, dataset, runtime: Runtime) -> dict:
        backbone = model.backbone
        if not hasattr(backbone, "class_scores"):
            raise RRXError("challenge=zero_shot needs a zero-shot model (model=clip or model=align)")
        model.eval()
        classes, texts, owner = list(dataset.classes), backbone.texts, backbone.owner.cpu()
        out: dict[str, Any] = {"accuracy": {}, "score_variability": {}, "similarities": {}}
        original, frames = None, []
        for variation in self.variations:
            data = dataset.variation_set(variation)
            s, sims, labels = scores(model, data, runtime, variation)
            pred = s.argmax(1)
            confidence = (
                (s * float(getattr(backbone, "scale", 1.0))).softmax(1).gather(1, pred[:, None])[:, 0]
            )  # of the model's logits
            found = {"label": labels, "prediction": pred, "confidence": confidence}
            frames.append(prediction_frame(dataset, variation, data, found, "zero_shot"))
            out["accuracy"][variation] = share_correct(found)
            out["similarities"][variation] = {
                classes[c]: {
                    texts[t]: box_stats(sims[labels == c, t].numpy())
                    for t in torch.nonzero(owner == c).flatten().tolist()
                }
                for c in range(len(classes))
                if (labels == c).any()
            }
            if variation == "original":
                original = (data, s)
            elif variation in MIXED:
                assert original is not None  # "original" is evaluated first
                s_orig = original[1][original_index(data, original[0])]
                out["score_variability"][variation] = sv_of_pairs(s_orig, s, labels)
            log.info("%-10s accuracy %.2f%%", variation, 100 * out["accuracy"][variation])
        self.predictions = concatenated(frames)
        acc = out["accuracy"]
        if "mixed_same" in acc and "mixed_rand" in acc:
            out["bg_gap"] = acc["mixed_same"] - acc["mixed_rand"]
        return out


# --- tables and figures (rrx report, and the run's folder) ---------------------------------------------------------
# Thesis Table 14: score variability (Eq. 6.3) of zero-shot models, per mixed challenge, in percent.
SV_CHALLENGES = {"mixed_same": "Mixed same", "mixed_rand": "Mixed rand", "mixed_next": "Mixed next"}
TABLE14_VALUES = ["Target", "Pred.", "Errors", "Target (all)", "Pred. (all)", "Pairs"]


def _sv_parts(sv: dict) -> tuple[dict, dict]:
    """(misclassified pairs, all pairs) of a ``score_variability`` entry; a metrics.json written before the
    misclassified pairs were kept has only the all-pairs numbers at the top level."""
    if "all_images" in sv:
        return sv["errors"], sv["all_images"]
    return {"target": {}, "pred": {}, "pairs": float("nan")}, sv


def table14(runs: list[Record]) -> pd.DataFrame:
    """One row per challenge, model and metric (SV+: the challenge image scores lower than its original, SV-: higher,
    as the mean magnitude). As in the thesis (6.2.4, "when making errors"), Target and Pred. (the class predicted on
    the challenge image) are taken over the pairs whose challenge image is misclassified, ``Errors`` of them;
    Target (all) and Pred. (all) over all ``Pairs``, where Pred. mostly repeats Target (pred = target when correct)."""
    rows = []
    for metric, key in (("SV+", "sv_plus"), ("SV-", "sv_minus")):
        for variation, challenge in SV_CHALLENGES.items():
            for metrics in runs:
                sv = metrics.challenges.get("score_variability", {}).get(variation)
                if sv is None:
                    continue
                errors, every = _sv_parts(sv)
                rows.append(
                    {
                        "Challenge": challenge,
                        "Model": model_name(metrics),
                        "Metric": metric,
                        "Target": errors["target"].get(key, float("nan")),
                        "Pred.": errors["pred"].get(key, float("nan")),
                        "Errors": errors["pairs"],
                        "Target (all)": every["target"][key],
                        "Pred. (all)": every["pred"][key],
                        "Pairs": every["pairs"],
                    }
                )
    columns = ["Challenge", "Model", "Metric", *TABLE14_VALUES]
    return pd.DataFrame(rows, columns=columns).astype({c: float for c in TABLE14_VALUES})


SV_VARIATIONS = ("original", "mixed_same", "mixed_rand", "mixed_next")


def similarity_boxplots(metrics: Record, path: Path) -> Path | None:
    """Fig. 25 shape: per class, the similarity of its images with each of its texts (descriptors), one box per
    variation (original and the mixed ones), from the box statistics the zero_shot challenge records."""
    plt = pyplot()
    import matplotlib.patches

    found = metrics.challenges.get("similarities", {})
    variations = [v for v in SV_VARIATIONS if v in found]
    if not variations:
        return None
    classes = list(found[variations[0]])
    cols = min(3, len(classes))
    rows = -(-len(classes) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.4 * rows), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, name in zip(axes.flat, classes):
        texts = list(found[variations[0]][name])
        width = 0.8 / len(variations)
        for j, variation in enumerate(variations):
            stats = [dict(found[variation].get(name, {}).get(t) or {}, label="") for t in texts]
            positions = [i + (j - (len(variations) - 1) / 2) * width for i in range(len(texts))]
            kept = [(p, s) for p, s in zip(positions, stats) if "med" in s]
            if kept:
                boxes = ax.bxp(
                    [s for _, s in kept],
                    positions=[p for p, _ in kept],
                    widths=width * 0.9,
                    showfliers=False,
                    patch_artist=True,
                )
                for box in boxes["boxes"]:
                    box.set_facecolor(colours[j % len(colours)])
        ax.set_xticks(
            range(len(texts)), [t.split(", which", 1)[-1].strip() for t in texts], rotation=40, ha="right", fontsize=6
        )
        ax.set_title(name)
        ax.set_ylabel("similarity")
    for ax in axes.flat[len(classes) :]:
        ax.axis("off")
    handles = [matplotlib.patches.Patch(color=colours[j % len(colours)], label=v) for j, v in enumerate(variations)]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(variations))
    fig.suptitle(f"Similarity with each class text: {model_name(metrics)} ({metrics.run['dataset']})")
    return save_figure(fig, path)


# SV is a description of how scores move, not a score to maximise
TABLES = [
    Table(
        "table14",
        "Score variability of zero-shot models, percent (Table 14 shape)",
        table14,
        lambda m: "score_variability" in m.challenges,
        14,
        mark_best=False,
    )
]
FIGURES = [
    Figure(
        "fig25",
        "Fig. 25: similarity distributions",
        similarity_boxplots,
        lambda m: "similarities" in m.challenges,
        25,
        per_run=True,
    )
]
