"""Several runs of one configuration (seeds) as one table row: mean, standard deviation, count."""

from __future__ import annotations

import pandas as pd

# The thesis orders rows by architecture, then method (Tables 5, 6 and 8).
ARCHITECTURE_ORDER = ["ResNet-18", "ViT", "SmallCNN", "ViT (test)", "MLP"]
METHOD_ORDER = ["Standard", "ActDiff", "GradMask", "ADA", "RRR", "ActDiff + RRDA", "Standard + RRDA"]
SEEDS = "Seeds"


def key_columns(df: pd.DataFrame) -> list[str]:
    """The columns that name a row (text columns, and ``lambda``); the rest are values."""
    return [c for c in df.columns if c == "lambda" or not pd.api.types.is_numeric_dtype(df[c])]


def _rank(value: str, order: list[str]) -> tuple[int, str]:
    """Position in ``order`` of ``value`` or of its base (``RRR + FGSM`` -> RRR, ``RRR (lambda=10)`` -> RRR)."""
    base = value.split(" (lambda=")[0]
    for candidate in (base, base.split(" + ")[0]):
        if candidate in order:
            return order.index(candidate), value
    return len(order), value


def thesis_order(df: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by Architecture, then Method in the thesis's order, then lambda; other tables keep their order."""
    sort = [c for c in ("Architecture", "Method", "lambda") if c in df.columns]
    if "Architecture" not in sort or "Method" not in sort:
        return df.reset_index(drop=True)
    keys = {
        "Architecture": lambda s: s.map(lambda v: _rank(v, ARCHITECTURE_ORDER)),
        "Method": lambda s: s.map(lambda v: _rank(v, METHOD_ORDER)),
    }
    return df.sort_values(sort, key=lambda s: keys[s.name](s) if s.name in keys else s, kind="stable").reset_index(drop=True)


def over_seeds(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(mean, std) of the value columns per key (``key_columns``), in thesis order.

    ``mean`` gets a ``Seeds`` column: the number of runs behind the row (for a column filled by
    only some runs, the largest count). ``std`` is the sample standard deviation (NaN for one run).
    """
    keys = key_columns(df)
    values = [c for c in df.columns if c not in keys]
    grouped = df.groupby(keys, sort=False, dropna=False)[values]
    mean, std = grouped.mean().reset_index(), grouped.std(ddof=1).reset_index()
    mean[SEEDS] = grouped.count().max(axis=1).to_numpy() if values else grouped.size().to_numpy()
    order = thesis_order(mean.assign(_row=range(len(mean))))["_row"]
    return mean.iloc[order].reset_index(drop=True), std.iloc[order].reset_index(drop=True)
