"""The background challenge (Xiao et al. 2021; thesis 4.2.1): accuracy per IN-9 variation."""

from __future__ import annotations

import logging
from collections.abc import Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from rrx.challenges import register_challenge
from rrx.challenges.groups import group_accuracy, group_matrix_figure, group_table, has_groups
from rrx.config import ComponentConfig, param
from rrx.plots import box_plot, pyplot, save_figure
from rrx.predictions import predict, prediction_frame, share_correct
from rrx.record import Record
from rrx.runtime import Runtime
from rrx.tables import Figure, Table, percent

log = logging.getLogger(__name__)
BACKGROUND_VARIATIONS = ["original", "mixed_same", "mixed_rand", "mixed_next"]  # challenge=background, and the edge's
EVERY_VARIATION = [*BACKGROUND_VARIATIONS, "only_fg", "no_fg", "only_bg_b", "only_bg_t"]  # challenge=all


@dataclass
class BackgroundConfig(ComponentConfig):
    """the background challenge: accuracy per variation, plus BG-Gap = mixed_same - mixed_rand"""

    name: str = param("background", "the registered name of the challenge")
    variations: list[str] = param(BACKGROUND_VARIATIONS, "the variations whose accuracy is measured")


# challenge=<variation> (original, mixed_rand, ...): accuracy on that variation alone; challenge=signal: thesis
# Table 8, accuracy with only the object (only_fg) and only the background (only_bg_t)
PRESETS = {variation: BackgroundConfig(variations=[variation]) for variation in EVERY_VARIATION}
PRESETS["signal"] = BackgroundConfig(variations=["original", "only_fg", "only_bg_t"])


@register_challenge("background", config=BackgroundConfig, presets=PRESETS)
class BackgroundChallenge:
    """Accuracy on each of ``cfg.variations``; BG-Gap = acc(mixed_same) - acc(mixed_rand).

    Results: ``{"accuracy": {variation: float}, "bg_gap": float, "groups": {variation: ...}}`` (bg_gap only when
    both mixed variations were evaluated; ``groups``, the worst-group accuracy and the object x background matrix of
    each mixed variation whose backgrounds' classes are known, ``rrx.challenges.groups``), accuracies as fractions;
    ``predictions`` holds the per-image predictions
    they are computed from (``rrx.predictions``), which the run writes as ``predictions.parquet``.
    """

    def __init__(self, cfg):
        self.variations = list(cfg.variations)
        self.predictions: pd.DataFrame | None = None

    def needs(self) -> list[tuple[str, bool]]:
        return [(v, False) for v in self.variations]

    def evaluate(self, model, dataset, runtime: Runtime) -> dict:
        results: dict[str, Any] = {"accuracy": {}}
        frames = []
        for variation in self.variations:
            data = dataset.variation_set(variation)
            found = predict(model, runtime.loader(data, shuffle=False), runtime, desc=variation)
            frames.append(prediction_frame(dataset, variation, data, found))
            acc = share_correct(found)
            results["accuracy"][variation] = acc
            log.info("%-10s accuracy %.2f%% (%d images)", variation, 100 * acc, len(cast(Sized, data)))
        self.predictions = pd.concat(frames, ignore_index=True)
        groups = group_accuracy(self.predictions)
        if groups:
            results["groups"] = groups
        accuracies = results["accuracy"]
        if "mixed_same" in accuracies and "mixed_rand" in accuracies:
            results["bg_gap"] = accuracies["mixed_same"] - accuracies["mixed_rand"]
            log.info("BG-Gap %.2f points", 100 * results["bg_gap"])
        return results


# --- tables and figures (rrx report, and the run's folder) ---------------------------------------------------------
MIXED_VARIATIONS = ("mixed_same", "mixed_rand", "mixed_next")  # a run with any of these gets a Table 5 row
# Thesis Table 5/6: accuracies and BG-Gap in percent.
TABLE5_COLUMNS = ["Architecture", "Method", "Mixed same", "Mixed rand", "Mixed next", "BG Gap", "Original"]
_VARIATION_COLUMNS = {
    "Mixed same": "mixed_same",
    "Mixed rand": "mixed_rand",
    "Mixed next": "mixed_next",
    "Original": "original",
}


def table5_row(metrics: Record) -> dict:
    """One Table 5 row from a run's metrics; challenges that were not run are NaN."""
    acc = metrics.challenges.get("accuracy", {})
    row = {"Architecture": metrics.run["architecture"], "Method": metrics.run["method"]}
    for column, variation in _VARIATION_COLUMNS.items():
        row[column] = percent(acc, variation)
    gap = metrics.challenges.get("bg_gap")
    row["BG Gap"] = 100 * gap if gap is not None else float("nan")
    return row


def table5(runs: list[Record]) -> pd.DataFrame:
    """Table 5 shape, values in percent, one row per run (rounded to two decimals only when written, after the
    seeds are averaged: ``rrx.tables.write_table``)."""
    return pd.DataFrame([table5_row(m) for m in runs], columns=TABLE5_COLUMNS)


# Thesis Table 8: accuracy with only the object / only the background, in percent.
TABLE8_COLUMNS = ["Architecture", "Method", "Only FG", "Only BG"]
TABLE8_SIGNALS = {"Only FG": "only_fg", "Only BG": "only_bg_t"}
SIGNAL_VARIATIONS = tuple(TABLE8_SIGNALS.values())  # a run with any of these gets a Table 8 row


def table8(runs: list[Record]) -> pd.DataFrame:
    """Table 8 shape (Only BG = accuracy on ``only_bg_t``), one row per run, plus the hidden ``_Original``."""
    rows = []
    for metrics in runs:
        acc = metrics.challenges.get("accuracy", {})
        row = {"Architecture": metrics.run["architecture"], "Method": metrics.run["method"]}
        row |= {column: percent(acc, variation) for column, variation in TABLE8_SIGNALS.items()}
        rows.append(row | {"_Original": percent(acc, "original")})
    return pd.DataFrame(rows, columns=[*TABLE8_COLUMNS, "_Original"])


def has_columns(metrics: Record, variations) -> bool:
    """Whether a run evaluated any of ``variations``."""
    return any(v in metrics.challenges.get("accuracy", {}) for v in variations)


# the signal variations beside Table 5's columns (table5_row); Fig. 14 correlates all of them
SIGNAL_COLUMNS = {"Only FG": "only_fg", "No FG": "no_fg", "Only BG (b)": "only_bg_b", "Only BG (t)": "only_bg_t"}
CHALLENGE_COLUMNS = ["Original", "Mixed same", "Mixed rand", "Mixed next", *SIGNAL_COLUMNS]
ORIGINAL_AT_LEAST = 80.0  # Fig. 16 correlates runs with an original accuracy of at least 80 %


def run_frame(runs: list[Record]) -> pd.DataFrame:
    """One row per run: Table 5's columns, RRDA, and the signal variations in percent (NaN where not run)."""
    rows = []
    for m in runs:
        acc = m.challenges.get("accuracy", {})
        row = table5_row(m) | {"RRDA": bool(m.run.get("rrda"))}
        rows.append(row | {column: percent(acc, v) for column, v in SIGNAL_COLUMNS.items()})
    return pd.DataFrame(rows)


def correlation_matrix(df: pd.DataFrame, dataset: str, path: Path) -> Path | None:
    """Fig. 14: Pearson correlation between the challenges' accuracies over runs (needs 3 runs)."""
    plt = pyplot()
    columns = [c for c in CHALLENGE_COLUMNS if df[c].notna().sum() >= 3 and df[c].nunique() > 1]
    if len(df) < 3 or len(columns) < 2:
        return None
    corr = df[columns].corr(method="pearson")
    fig, ax = plt.subplots(figsize=(0.75 * len(columns) + 1.8, 0.65 * len(columns) + 1))
    image = ax.imshow(corr.to_numpy(), vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
    ax.set_yticks(range(len(columns)), columns)
    for (i, j), value in np.ndenumerate(corr.to_numpy()):
        ax.text(
            j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="white" if abs(value) > 0.6 else "black"
        )
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="Pearson r")
    ax.set_title(f"Correlation between the challenges ({dataset}, {len(df)} runs)")
    return save_figure(fig, path)


def bg_gap_distributions(df: pd.DataFrame, dataset: str, path: Path) -> Path | None:
    """Fig. 15: BG-Gap distribution a) per architecture, b) with RRDA vs without."""
    plt = pyplot()
    df = df[df["BG Gap"].notna()]
    if df.empty:
        return None
    fig, (a, b) = plt.subplots(1, 2, figsize=(7, 3), sharey=True)
    by_arch = {f"{k}\n(median {v.median():.2f})": v for k, v in df.groupby("Architecture", sort=False)["BG Gap"]}
    box_plot(a, by_arch, "BG Gap (points)")
    a.set_title("a) by architecture")
    by_rrda = {f"{'RRDA' if k else 'Non-RRDA'}\n(median {v.median():.2f})": v for k, v in df.groupby("RRDA")["BG Gap"]}
    box_plot(b, by_rrda, "")
    b.set_title("b) RRDA vs non-RRDA")
    fig.suptitle(f"BG-Gap distributions ({dataset}, {len(df)} runs)")
    return save_figure(fig, path)


def bg_gap_vs_original(df: pd.DataFrame, dataset: str, path: Path) -> Path | None:
    """Fig. 16: BG-Gap against original accuracy; Spearman correlation over runs with original >= 80 %."""
    plt = pyplot()
    df = df[df["BG Gap"].notna() & df["Original"].notna()]
    if df.empty:
        return None
    kept = df[df["Original"] >= ORIGINAL_AT_LEAST]
    varies = len(kept) >= 3 and kept["BG Gap"].nunique() > 1 and kept["Original"].nunique() > 1
    rho = kept["BG Gap"].corr(kept["Original"], method="spearman") if varies else np.nan
    fig, ax = plt.subplots(figsize=(4.5, 3.4))
    for (arch, rrda), group in df.groupby(["Architecture", "RRDA"], sort=False):
        ax.scatter(
            group["Original"],
            group["BG Gap"],
            marker="o" if rrda else "^",
            label=f"{arch}{' + RRDA' if rrda else ''}",
            alpha=0.8,
        )
    ax.axvline(ORIGINAL_AT_LEAST, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("Original accuracy (%)")
    ax.set_ylabel("BG Gap (points)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    ax.set_title(
        f"BG-Gap vs original ({dataset}): Spearman ρ = {rho:.2f} "
        f"(n = {len(kept)}, original ≥ {ORIGINAL_AT_LEAST:.0f} %)"
    )
    return save_figure(fig, path)


def _frame_figure(draw):
    """A Fig. 14-16 function of the runs' ``run_frame`` as a ``Figure.draw`` of records."""
    return lambda runs, dataset, path: draw(run_frame(runs), dataset, path)


def _has_gap(m: Record) -> bool:
    return "bg_gap" in m.challenges


TABLES = [
    Table("table5", "Background challenge (Table 5/6/12 shape)", table5, lambda m: has_columns(m, MIXED_VARIATIONS), 5),
    Table(
        "table8",
        "Only object / only background (Table 8/13 shape; Only BG = only_bg_t)",
        table8,
        lambda m: has_columns(m, SIGNAL_VARIATIONS),
        8,
    ),
    Table(
        "groups",
        "Worst-group accuracy (groups: object class x background class)",
        group_table,
        has_groups,
        5.5,
    ),
]
FIGURES = [
    Figure(
        "fig14_correlation",
        "Fig. 14: correlation between the challenges",
        _frame_figure(correlation_matrix),
        lambda m: "accuracy" in m.challenges,
        14,
    ),
    Figure("fig15_bg_gap", "Fig. 15: BG-Gap distributions", _frame_figure(bg_gap_distributions), _has_gap, 15),
    Figure(
        "fig16_bg_gap_vs_original",
        "Fig. 16: BG-Gap vs original accuracy",
        _frame_figure(bg_gap_vs_original),
        _has_gap,
        16,
    ),
    Figure(
        "groups_matrix",
        "Accuracy per object class x background class (mixed_rand; seeds pooled)",
        group_matrix_figure,
        has_groups,
        16.5,
    ),
]
