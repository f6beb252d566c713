"""The thesis's table shapes as pandas DataFrames, written as CSV, Markdown and LaTeX."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rrx.outputs import write_text

# Thesis Table 5/6: accuracies and BG-Gap in percent.
TABLE5_COLUMNS = ["Architecture", "Method", "Mixed same", "Mixed rand", "Mixed next", "BG Gap", "Original"]
_VARIATION_COLUMNS = {"Mixed same": "mixed_same", "Mixed rand": "mixed_rand", "Mixed next": "mixed_next", "Original": "original"}


def table5_row(metrics: dict) -> dict:
    """One Table 5 row from a run's metrics; challenges that were not run are NaN."""
    acc = metrics["challenges"].get("accuracy", {})
    row = {"Architecture": metrics["run"]["architecture"], "Method": metrics["run"]["method"]}
    for column, variation in _VARIATION_COLUMNS.items():
        row[column] = 100 * acc[variation] if variation in acc else float("nan")
    gap = metrics["challenges"].get("bg_gap")
    row["BG Gap"] = 100 * gap if gap is not None else float("nan")
    return row


def table5(runs: list[dict]) -> pd.DataFrame:
    """Table 5 shape, values in percent with two decimals, one row per run."""
    df = pd.DataFrame([table5_row(m) for m in runs], columns=TABLE5_COLUMNS)
    return df.round(2)


def write_table(df: pd.DataFrame, stem: Path) -> list[Path]:
    """Write ``stem.csv``, ``stem.md`` and ``stem.tex``; returns the paths written."""
    return [
        write_text(stem.with_suffix(".csv"), df.to_csv(index=False)),
        write_text(stem.with_suffix(".md"), df.to_markdown(index=False, floatfmt=".2f", missingval="–") + "\n"),
        write_text(stem.with_suffix(".tex"), df.to_latex(index=False, float_format="%.2f", na_rep="--")),
    ]
