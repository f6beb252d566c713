"""The labelled-mask curve (issue 29): what a method that uses masks measures against the share p of the training
images whose masks it had (``mask=fraction``), the curve of thesis 8.2's open problem.

Per run: the background challenge's Original, Mixed rand and BG Gap, Table 8's Only FG and the worst-group accuracy
of mixed_rand (``rrx.challenges.groups``), each in percent; the report averages the seeds of each (model, method,
p) and draws them against p.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rrx.plots import pyplot, save_figure
from rrx.record import Record
from rrx.tables import Figure, Table

CURVE_COLUMNS = ["Original", "Only FG", "Mixed rand", "Worst group mixed rand", "BG Gap"]


CURVE_SOURCES = ("fraction", "attribution", "segmenter")  # the sources with a labelled share p


def _has_curve(m: Record) -> bool:
    return (m.train or {}).get("masks", {}).get("source") in CURVE_SOURCES and "accuracy" in m.challenges


def _others(masks: dict) -> str:
    """What the images without a labelled mask have: ``none`` (mask=fraction) or the source's masks (the
    attribution's, or the U-Net's trained on the labelled share)."""
    if masks["source"] == "attribution":
        return f"{masks['attribution']} ({masks['rule']})"
    if masks["source"] == "segmenter":
        return "U-Net segmenter"
    return "none"


def _or_nan(value) -> float:
    return np.nan if value is None else float(value)


def _base_method(m: Record) -> str:
    """The method column without its mask source: ``Standard + RRDA (5% masks)`` -> ``Standard + RRDA``."""
    return str(m.run["method"]).rsplit(" (", 1)[0]


def mask_curve_table(runs: list[Record]) -> pd.DataFrame:
    """One row per run: Architecture, Method (without its source), Other masks (what the images without a labelled
    mask have: none, the attribution's or the segmenter's), p (percent, as text), Images with a mask, the IoU of the
    other masks with the labelled ones (percent; NaN for none), and ``CURVE_COLUMNS`` in percent (NaN where the run
    did not measure it)."""
    rows = []
    for m in runs:
        masks, acc = (m.train or {})["masks"], m.challenges["accuracy"]
        groups = m.challenges.get("groups", {}).get("mixed_rand", {})
        gap = m.challenges.get("bg_gap")
        rows.append(
            {
                "Architecture": m.run["architecture"],
                "Method": _base_method(m),
                "Other masks": _others(masks),
                "p (%)": f"{100 * float(masks['p']):g}",  # text: a key, the seeds of one p are averaged
                "Images with a mask": float(masks["with_mask"]),
                "IoU of the other masks": 100 * _or_nan(masks.get("iou", {}).get("mean")),
                "Original": 100 * acc.get("original", np.nan),
                "Only FG": 100 * acc.get("only_fg", np.nan),
                "Mixed rand": 100 * acc.get("mixed_rand", np.nan),
                "Worst group mixed rand": 100 * groups.get("worst_group_accuracy", np.nan),
                "BG Gap": np.nan if gap is None else 100 * gap,
            }
        )
    columns = ["Architecture", "Method", "Other masks", "p (%)", "Images with a mask", "IoU of the other masks"]
    return pd.DataFrame(rows, columns=[*columns, *CURVE_COLUMNS])


def mask_curve_figure(runs: list[Record], dataset: str, path: Path) -> Path | None:
    """Each curve column against p (the share of training images with a labelled mask), mean ± sample standard
    deviation over the seeds, one line per model and method; p on evenly spaced ticks."""
    df = mask_curve_table([m for m in runs if _has_curve(m)])
    if df.empty:
        return None
    df["p"] = df["p (%)"].astype(float)
    plt = pyplot()
    shares = sorted(df["p"].unique())
    fig, axes = plt.subplots(1, len(CURVE_COLUMNS), figsize=(3.0 * len(CURVE_COLUMNS), 3.0), squeeze=False)
    for ax, column in zip(axes[0], CURVE_COLUMNS):
        for (architecture, method, others), part in df.groupby(["Architecture", "Method", "Other masks"], sort=False):
            stats = part.groupby("p")[column].agg(["mean", "std"]).reindex(shares)
            x = [shares.index(p) for p in stats.index]
            ax.errorbar(
                x,
                stats["mean"],
                yerr=stats["std"].fillna(0),
                marker="o",
                capsize=3,
                label=f"{architecture} {method}, other masks: {others}",
            )
        ax.set_xticks(range(len(shares)), [f"{p:g}" for p in shares])
        ax.set_xlabel("training images with a mask (%)")
        ax.set_title(column)
        ax.set_ylabel("percentage points" if column == "BG Gap" else "accuracy (%)")
    axes[0][0].legend(fontsize=6)
    fig.suptitle(f"Labelled-mask fraction p: {dataset}")
    return save_figure(fig, path)


def _made_masks(m: Record) -> bool:
    return (m.train or {}).get("masks", {}).get("iou", {}).get("mean") is not None


def mask_quality_table(runs: list[Record]) -> pd.DataFrame:
    """One row per run whose source made masks: Other masks (the source), p (%), the images it made masks for, the
    share of their pixels marked as object and their IoU with the labelled masks (percent): the mean over those
    images and the mean of each class (a column per class)."""
    rows = []
    for m in runs:
        masks = (m.train or {})["masks"]
        rows.append(
            {
                "Other masks": _others(masks),
                "p (%)": f"{100 * float(masks['p']):g}",
                "Images with made masks": float(masks["images"] - masks["with_mask"]),
                "Object share": 100 * _or_nan(masks.get("object_share")),
                "IoU": 100 * float(masks["iou"]["mean"]),
                **{f"IoU {name}": 100 * float(v) for name, v in masks["iou"].get("per_class", {}).items()},
            }
        )
    return pd.DataFrame(rows)


TABLES = [
    Table(
        "mask_quality",
        "Made masks: their IoU with the labelled masks, overall and per class",
        mask_quality_table,
        _made_masks,
        16.5,
        mark_best=False,
    ),
    Table(
        "mask_curve",
        "Labelled-mask fraction p: the challenges against the share of training images with a labelled mask",
        mask_curve_table,
        _has_curve,
        16.6,
        mark_best=False,
        in_run=False,
    ),
]
FIGURES = [Figure("mask_curve", "Labelled-mask fraction p", mask_curve_figure, _has_curve, 16.6)]
