"""Lambda sweeps: every lambda of a method, and the best one by a declared criterion."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from rrx.challenges.background import TABLE5_COLUMNS, table5_row
from rrx.errors import RRXError
from rrx.record import Record


def criterion(metrics: Record, select_by: str) -> float | None:
    """``val_accuracy`` (held-out training images) or the accuracy on a challenge variation."""
    if select_by == "val_accuracy":
        return (metrics.train or {}).get("val_accuracy")
    return metrics.challenges.get("accuracy", {}).get(select_by)


def lambda_tables(runs: list[Record], select_by: str) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """(every lambda, best lambda per Architecture and Method) for methods run with several lambdas.

    One row per run (seeds are averaged when the tables are written); values in percent; the
    criterion column is named after ``select_by``. The best lambda has the highest criterion
    averaged over its runs. None when no method was run with more than one lambda.
    """
    rows = []
    for metrics in runs:
        value = criterion(metrics, select_by)
        row = table5_row(metrics)
        row.update({"lambda": metrics.run.get("lam"), select_by: None if value is None else 100 * value})
        rows.append(row)
    df = pd.DataFrame(rows, columns=["Architecture", "Method", "lambda", select_by, *TABLE5_COLUMNS[2:]])
    df[select_by] = df[select_by].astype(float)
    swept = df.groupby(["Architecture", "Method"])["lambda"].transform("nunique") > 1
    df = df[swept].reset_index(drop=True)
    if df.empty:
        return None
    if df[select_by].isna().all():
        raise RRXError(
            f"report.select_by={select_by}: no run of the sweep has it (val_accuracy needs trainer.val_fraction > 0)"
        )
    means = df.groupby(["Architecture", "Method", "lambda"])[select_by].mean().reset_index()
    best = means.loc[
        means.groupby(["Architecture", "Method"])[select_by].idxmax(), ["Architecture", "Method", "lambda"]
    ]
    return df, df.merge(best, on=["Architecture", "Method", "lambda"])


def label_lambdas(runs: list[Record]) -> list[Record]:
    """Runs with " (lambda=...)" added to the Method of methods run with several lambdas."""
    lams: dict[tuple, set] = {}
    for m in runs:
        lams.setdefault((m.run["architecture"], m.run["method"]), set()).add(m.run.get("lam"))
    labelled = []
    for m in runs:
        run = m.run
        if len(lams[(run["architecture"], run["method"])]) > 1:
            m = replace(m, run={**run, "method": f"{run['method']} (lambda={run['lam']:g})"})
        labelled.append(m)
    return labelled
