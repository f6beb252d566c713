"""Tables: the thesis's table layout (mean ± std over seeds, the best value in bold) as CSV, Markdown and LaTeX,
and the ``Table`` and ``Figure`` a component declares for what it measured.

A challenge's, an analysis's or a task's module lists ``TABLES`` and ``FIGURES``: the registries collect them
(``Registry.declared``), a run's folder gets the tables its record holds (``rrx.results.write_run_tables``) and
``rrx report`` every table and figure of the records it reads, in their ``order``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from rrx.outputs import write_text
from rrx.record import Record

# The thesis orders rows by architecture, then method (Tables 5, 6 and 8); several runs of one configuration (seeds)
# are one row: mean, standard deviation, count.
ARCHITECTURE_ORDER = ["ResNet-18", "ViT", "SmallCNN", "ViT (test)", "MLP"]
METHOD_ORDER = ["Standard", "ActDiff", "GradMask", "ADA", "RRR", "ActDiff + RRDA", "Standard + RRDA"]
SEEDS = "Seeds"


def key_columns(df: pd.DataFrame) -> list[str]:
    """The columns that name a row (text columns, and ``lambda``); the rest are values."""
    return [c for c in df.columns if c == "lambda" or not pd.api.types.is_numeric_dtype(df[c])]


def _natural(value: str) -> tuple:
    """``value`` split into text and numbers, so that ``(5% masks)`` sorts before ``(25% masks)`` and ``(100%``."""
    parts = re.split(r"(\d+(?:\.\d+)?)", value)
    return tuple(float(part) if i % 2 else part for i, part in enumerate(parts))


def _rank(value: str, order: list[str]) -> tuple[int, tuple]:
    """Position in ``order`` of ``value`` or of its base (``RRR + FGSM`` -> RRR, ``RRR (lambda=10)`` -> RRR), then
    ``value`` in natural order (its numbers as numbers)."""
    base = value.split(" (lambda=")[0]
    for candidate in (base, base.split(" + ")[0]):
        if candidate in order:
            return order.index(candidate), _natural(value)
    return len(order), _natural(value)


def thesis_order(df: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by Architecture, then Method in the thesis's order, then lambda; other tables keep their order."""
    sort = [c for c in ("Architecture", "Method", "lambda") if c in df.columns]
    if "Architecture" not in sort or "Method" not in sort:
        return df.reset_index(drop=True)
    keys = {
        "Architecture": lambda s: s.map(lambda v: _rank(v, ARCHITECTURE_ORDER)),
        "Method": lambda s: s.map(lambda v: _rank(v, METHOD_ORDER)),
    }
    return df.sort_values(sort, key=lambda s: keys[s.name](s) if s.name in keys else s, kind="stable").reset_index(
        drop=True
    )


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


@dataclass(frozen=True)
class Table:
    """A table a component makes from records.

    Args:
        name (str): the file stem (``rrx report`` adds ``_<dataset>``), e.g. ``table5``.
        title (str): the heading in ``report.md``.
        build: records -> DataFrame, one row per record (seeds are joined when written).
        holds: record -> whether it has this table's numbers.
        order (float): the position in the report; the thesis's table number where there is one.
        mark_best (bool): mark the best value per column (False for descriptions, e.g. score variability).
        in_run (bool): also written into the folder of each run that holds it.
        in_report (bool): a section of ``rrx report``.
    """

    name: str
    title: str
    build: Callable[[list[Record]], pd.DataFrame]
    holds: Callable[[Record], bool]
    order: float
    mark_best: bool = True
    in_run: bool = True
    in_report: bool = True


@dataclass(frozen=True)
class Figure:
    """A figure a component draws for ``rrx report``.

    Args:
        name (str): the file stem, ``<name>_<dataset>.png`` (per run: ``<name>_<model>_<dataset>_<i>.png``).
        caption (str): the heading in ``report.md`` (per run: with the model's name added).
        draw: (records, dataset, path) -> the PNG written, or None where the records lack the data; per run:
            (record, path) -> path or None.
        holds: record -> whether it has the figure's data.
        order (float): the position in the report; the thesis's figure number where there is one.
        per_run (bool): one figure per record instead of one for all.
    """

    name: str
    caption: str
    draw: Callable
    holds: Callable[[Record], bool]
    order: float
    per_run: bool = False


def percent(acc: dict, variation: str) -> float:
    """Accuracy on ``variation`` in percent; NaN where it was not evaluated."""
    return 100 * acc[variation] if variation in acc else float("nan")


def model_name(record: Record) -> str:
    """The Model column of Tables 9, 10 and 11: architecture and method, e.g. ``MLP RRR + FGSM``."""
    return f"{record.run['architecture']} {record.run['method']}"


HIDDEN = "_"  # columns named "_..." are not shown or written; "_Original" decides who may hold a lowest-is-best mark


# The best value per column is marked: the highest, except where lower means less use of the background.
# A model at chance has a BG Gap of 0, so the lowest is only taken among models that classify: their original
# accuracy (the Original or hidden _Original column; else their best accuracy in the table) reaches
# WORKING_ACCURACY (the threshold of Fig. 16).
LOWER_IS_BETTER = {"BG Gap", "Only BG"}
WORKING_ACCURACY = 80.0
_LATEX_SPECIAL = {c: "\\" + c for c in "&%$#_{}"} | {
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "\\": r"\textbackslash{}",
}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(c, c) for c in text)


def lower_is_better(column: str) -> bool:
    """``BG Gap``, ``Only BG``, also as a dataset's column of a side-by-side table (``in9 Only BG``)."""
    return any(column == c or column.endswith(f" {c}") for c in LOWER_IS_BETTER)


def best_mask(mean: pd.DataFrame, name: str, values: list[str]) -> pd.Series:
    """Rows holding column ``name``'s best value at two decimals (ties all marked); none for a single row.

    For LOWER_IS_BETTER columns only rows whose original accuracy is >= WORKING_ACCURACY compete.
    """
    column = mean[name].round(2)
    if lower_is_better(name):
        reference = next((c for c in ("Original", "_Original") if c in mean), None)
        accuracies = [reference] if reference else [c for c in values if not lower_is_better(c)]
        column = column.where(mean[accuracies].max(axis=1) >= WORKING_ACCURACY) if accuracies else column
    if column.notna().sum() < 2:
        return pd.Series(False, index=mean.index)
    best = column.min() if lower_is_better(name) else column.max()
    return column == best


def render(df: pd.DataFrame, style: str, mark_best: bool = True) -> pd.DataFrame:
    """Per-run rows -> one text row per configuration: "mean ± std" over seeds (with a Seeds column) when
    some configuration has several runs, else the value; two decimals; the best per column in bold.

    ``style``: ``markdown`` or ``latex`` (escaped text, $\\pm$, \\textbf).
    """
    mean, std = over_seeds(df)
    keys = key_columns(df)
    values = [c for c in mean.columns if c not in keys and c != SEEDS]
    several = (mean[SEEDS] > 1).any()
    latex = style == "latex"
    missing, pm = ("--", r" $\pm$ ") if latex else ("–", " ± ")
    bold = (lambda t: rf"\textbf{{{t}}}") if latex else (lambda t: f"**{t}**")
    out = pd.DataFrame(index=mean.index)
    for column in mean.columns:
        if column.startswith(HIDDEN):
            continue
        if column == SEEDS:
            if several:
                out[SEEDS] = mean[SEEDS].astype(int).astype(str)
            continue
        if column in keys:
            text = mean[column].map(lambda v: f"{v:g}" if isinstance(v, float) else str(v))
            out[_latex_escape(column) if latex else column] = text.map(_latex_escape) if latex else text
            continue
        marks = best_mask(mean, column, values) if mark_best else pd.Series(False, index=mean.index)
        cells = []
        for m, s, n, is_best in zip(mean[column], std[column], mean[SEEDS], marks):
            if pd.isna(m):
                cells.append(missing)
                continue
            cell = f"{m:.2f}" + (f"{pm}{s:.2f}" if several and n > 1 and pd.notna(s) else "")
            cells.append(bold(cell) if is_best else cell)
        out[_latex_escape(column) if latex else column] = cells
    return out


def markdown(df: pd.DataFrame, mark_best: bool = True) -> str:
    """The table as GitHub Markdown (``render``), text columns left-aligned, values right-aligned."""
    text = render(df, "markdown", mark_best)
    keys = set(key_columns(df)) - {"lambda"}
    align = ["left" if c in keys else "right" for c in text.columns]
    return text.to_markdown(index=False, colalign=align, disable_numparse=True)


def latex(df: pd.DataFrame, mark_best: bool = True) -> str:
    """The table as a booktabs LaTeX tabular (``render``)."""
    text = render(df, "latex", mark_best)
    keys = {_latex_escape(c) for c in key_columns(df)} - {"lambda"}
    layout = "".join("l" if c in keys else "r" for c in text.columns)
    return text.to_latex(index=False, escape=False, column_format=layout)


def write_table(df: pd.DataFrame, stem: Path, mark_best: bool = True) -> list[Path]:
    """Write ``stem.csv`` (means, ``<column> std`` and ``Seeds`` when some configuration has several runs),
    ``stem.md`` and ``stem.tex``; returns the paths written."""
    mean, std = over_seeds(df.drop(columns=[c for c in df.columns if c.startswith(HIDDEN)]))
    if (mean[SEEDS] > 1).any():
        values = [c for c in mean.columns if c not in key_columns(df) and c != SEEDS]
        table = pd.concat([mean, std[values].add_suffix(" std")], axis=1).round(2)
    else:
        table = mean.drop(columns=SEEDS).round(2)
    return [
        write_text(stem.with_suffix(".csv"), table.to_csv(index=False)),
        write_text(stem.with_suffix(".md"), markdown(df, mark_best) + "\n"),
        write_text(stem.with_suffix(".tex"), latex(df, mark_best)),
    ]
