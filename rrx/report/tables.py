"""The tables ``rrx report`` makes across components and datasets: Table 8 with the datasets side by side and
Table 10 (the digit datasets side by side). Every other table comes from the component that made its numbers
(``rrx.results.table_specs``)."""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from rrx.challenges.background import TABLE8_SIGNALS, table8
from rrx.record import Record
from rrx.tables import model_name, percent


def table8_side_by_side(runs: list[Record]) -> pd.DataFrame:
    """Table 8 as the thesis prints it: per dataset an Only FG and an Only BG column, one row per run with its
    dataset's columns filled (rows of one Architecture and Method are joined when written)."""
    datasets = sorted({m.run["dataset"] for m in runs})
    columns = [f"{d} {c}" for d in datasets for c in TABLE8_SIGNALS]
    rows = []
    for metrics in runs:
        one = table8([metrics]).iloc[0]
        dataset = metrics.run["dataset"]
        row = {"Architecture": one["Architecture"], "Method": one["Method"], "_Original": one["_Original"]}
        rows.append(row | {f"{dataset} {c}": one[c] for c in TABLE8_SIGNALS})
    return pd.DataFrame(rows, columns=["Architecture", "Method", *columns, "_Original"]).astype(
        {c: float for c in columns}
    )


# Thesis Table 10: test accuracy per dataset, one row per model (method).
def table10(runs: list[Record], datasets: Sequence[str] = ("color_mnist", "decoy_mnist")) -> pd.DataFrame:
    """One row per run with its dataset's column filled; rows of one Model are joined when written (``over_seeds``).

    Decoy MNIST runs without a decoy (``dataset.variant=none``) fill a column of their own, "DecoyMNIST (no
    decoy)": the accuracy the trap is measured against."""
    names = {"color_mnist": "ColorMNIST", "decoy_mnist": "DecoyMNIST"}
    columns = [names[d] for d in datasets]
    rows = []
    for metrics in runs:
        dataset = metrics.run["dataset"]
        if dataset in datasets:
            column = names[dataset] + (" (no decoy)" if metrics.run.get("variant") == "none" else "")
            if column not in columns:
                columns.append(column)
            rows.append(
                {"Model": model_name(metrics), column: percent(metrics.challenges.get("accuracy", {}), "original")}
            )
    return pd.DataFrame(rows, columns=["Model", *columns]).astype({c: float for c in columns}).round(2)
