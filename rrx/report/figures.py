"""The figure ``rrx report`` draws across runs of several lambdas; every other figure comes from the component
that made its numbers (``rrx.results.figure_specs``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rrx.plots import pyplot, save_figure
from rrx.record import Record
from rrx.tables import model_name, percent


def lambda_curves(runs: list[Record], dataset: str, path: Path) -> Path | None:
    """BG-Gap and original accuracy against lambda (log scale), mean ± std over seeds, for every method run with
    at least two positive lambdas (``runs`` as measured, Method without the lambda label)."""
    plt = pyplot()
    rows = [
        {
            "Model": model_name(m),
            "lambda": m.run.get("lam"),
            "BG Gap": 100 * m.challenges["bg_gap"],
            "Original": percent(m.challenges.get("accuracy", {}), "original"),
        }
        for m in runs
        if "bg_gap" in m.challenges and (m.run.get("lam") or 0) > 0
    ]
    df = pd.DataFrame(rows)
    if df.empty:
        return None
    swept = [model for model, group in df.groupby("Model") if group["lambda"].nunique() >= 2]
    if not swept:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), squeeze=False)
    for ax, column in zip(axes[0], ("BG Gap", "Original")):
        for model in swept:
            stats = df[df["Model"] == model].groupby("lambda")[column].agg(["mean", "std"]).fillna(0.0)
            ax.errorbar(stats.index, stats["mean"], yerr=stats["std"], marker="o", capsize=3, label=model)
        ax.set_xscale("log")
        ax.set_xlabel("lambda")
        ax.set_ylabel(f"{column} (%)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"BG-Gap and original accuracy against lambda ({dataset}; mean ± std over seeds)", fontsize=9)
    return save_figure(fig, path)
