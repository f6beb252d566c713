"""Lambda sweeps: every lambda of a method, and the best one by a declared criterion."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from rrx.challenges.background import TABLE5_COLUMNS, table5_row
from rrx.errors import RRXError
from rrx.record import Record

# held-out training images (trainer.val_fraction): accuracy, and accuracy with objects on each other's backgrounds
HELD_OUT = ("val_accuracy", "val_mixed_rand")


def criterion(metrics: Record, select_by: str) -> float | None:
    """``val_accuracy`` or ``val_mixed_rand`` (held-out training images, ``HELD_OUT``) or the accuracy on a
    challenge variation (``selects_on_test``)."""
    if select_by in HELD_OUT:
        return (metrics.train or {}).get(select_by)
    return metrics.challenges.get("accuracy", {}).get(select_by)


def selects_on_test(select_by: str) -> bool:
    """Whether ``select_by`` is a test-split number: a model chosen by it is chosen on the test set, and its test
    numbers are no longer held-out results (WILDS's rule: select on validation data only)."""
    return select_by not in HELD_OUT


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
            f"report.select_by={select_by}: no run of the sweep has it (val_accuracy and val_mixed_rand need "
            "trainer.val_fraction > 0; val_mixed_rand also a dataset with training masks)"
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
