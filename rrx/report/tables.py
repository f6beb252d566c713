"""The thesis's table shapes as pandas DataFrames, written as CSV, Markdown and LaTeX."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rrx.outputs import write_text

# Thesis Table 5/6: accuracies and BG-Gap in percent.
TABLE5_COLUMNS = ["Architecture", "Method", "Mixed same", "Mixed rand", "Mixed next", "BG Gap", "Original"]
MIXED_VARIATIONS = ("mixed_same", "mixed_rand", "mixed_next")  # a run with any of these gets a Table 5 row
_VARIATION_COLUMNS = {"Mixed same": "mixed_same", "Mixed rand": "mixed_rand", "Mixed next": "mixed_next", "Original": "original"}


def _percent(acc: dict, variation: str) -> float:
    return 100 * acc[variation] if variation in acc else float("nan")


def table5_row(metrics: dict) -> dict:
    """One Table 5 row from a run's metrics; challenges that were not run are NaN."""
    acc = metrics["challenges"].get("accuracy", {})
    row = {"Architecture": metrics["run"]["architecture"], "Method": metrics["run"]["method"]}
    for column, variation in _VARIATION_COLUMNS.items():
        row[column] = _percent(acc, variation)
    gap = metrics["challenges"].get("bg_gap")
    row["BG Gap"] = 100 * gap if gap is not None else float("nan")
    return row


def table5(runs: list[dict]) -> pd.DataFrame:
    """Table 5 shape, values in percent with two decimals, one row per run."""
    df = pd.DataFrame([table5_row(m) for m in runs], columns=TABLE5_COLUMNS)
    return df.round(2)


# Thesis Table 8: accuracy with only the object / only the background, in percent.
TABLE8_COLUMNS = ["Architecture", "Method", "Only FG", "Only BG"]
_SIGNAL_COLUMNS = {"Only FG": "only_fg", "Only BG": "only_bg_t"}


def table8(runs: list[dict]) -> pd.DataFrame:
    """Table 8 shape (Only BG = accuracy on ``only_bg_t``), one row per run."""
    rows = []
    for metrics in runs:
        acc = metrics["challenges"].get("accuracy", {})
        row = {"Architecture": metrics["run"]["architecture"], "Method": metrics["run"]["method"]}
        rows.append(row | {column: _percent(acc, variation) for column, variation in _SIGNAL_COLUMNS.items()})
    return pd.DataFrame(rows, columns=TABLE8_COLUMNS).round(2)


# Thesis Table 9: accuracy on the test set and under the run's attack, in percent.
TABLE9_COLUMNS = ["Model", "Test Accuracy", "Adversarial Accuracy"]


def table9(runs: list[dict]) -> pd.DataFrame:
    rows = []
    for metrics in runs:
        challenges = metrics["challenges"]
        rows.append({
            "Model": f'{metrics["run"]["architecture"]} {metrics["run"]["method"]}',
            "Test Accuracy": _percent(challenges.get("accuracy", {}), "original"),
            "Adversarial Accuracy": _percent(challenges.get("adversarial_accuracy", {}), "original"),
        })
    return pd.DataFrame(rows, columns=TABLE9_COLUMNS).round(2)


# Thesis Table 10: test accuracy per dataset, one row per model (method).
def table10(runs: list[dict], datasets=("color_mnist", "decoy_mnist")) -> pd.DataFrame:
    names = {"color_mnist": "ColorMNIST", "decoy_mnist": "DecoyMNIST"}
    rows: dict[str, dict] = {}
    for metrics in runs:
        dataset = metrics["run"]["dataset"]
        if dataset in datasets:
            model = f'{metrics["run"]["architecture"]} {metrics["run"]["method"]}'
            rows.setdefault(model, {"Model": model})[names[dataset]] = _percent(metrics["challenges"].get("accuracy", {}), "original")
    return pd.DataFrame(list(rows.values()), columns=["Model", *(names[d] for d in datasets)]).round(2)


def edge_grid(metrics: dict) -> pd.DataFrame:
    """Edge-removal accuracy in percent: one row per variation, one column per width W (Fig. 17b)."""
    grid = metrics["challenges"]["edge"]
    df = pd.DataFrame({variation: {int(w): 100 * a for w, a in accs.items()} for variation, accs in grid.items()}).T
    df.index.name = "Variation"
    df.columns = [f"W={w}" for w in df.columns]
    return df.round(2).reset_index()


def has_columns(metrics: dict, variations) -> bool:
    """Whether a run evaluated any of ``variations``."""
    return any(v in metrics["challenges"].get("accuracy", {}) for v in variations)


def markdown(df: pd.DataFrame) -> str:
    """Two decimals, except a ``lambda`` column, which is shown as written (1e-05, 0.001)."""
    return df.to_markdown(index=False, floatfmt=["g" if c == "lambda" else ".2f" for c in df.columns], missingval="–")


def write_table(df: pd.DataFrame, stem: Path) -> list[Path]:
    """Write ``stem.csv``, ``stem.md`` and ``stem.tex``; returns the paths written."""
    formatters = {"lambda": "{:g}".format} if "lambda" in df.columns else None
    return [
        write_text(stem.with_suffix(".csv"), df.to_csv(index=False)),
        write_text(stem.with_suffix(".md"), markdown(df) + "\n"),
        write_text(stem.with_suffix(".tex"), df.to_latex(index=False, float_format="%.2f", na_rep="--", formatters=formatters)),
    ]
