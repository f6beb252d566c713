"""``rrx report``: thesis tables from a set of finished runs."""

from __future__ import annotations

import logging
from pathlib import Path

from rrx.report.collect import find_metrics
from rrx.report.sweep import lambda_tables
from rrx.report.tables import BACKGROUND_VARIATIONS, has_columns, table5, table8, write_table

log = logging.getLogger(__name__)

# table name -> (builder, variations a run must have for a row)
TABLES = {"table5": (table5, BACKGROUND_VARIATIONS), "table8": (table8, ("only_fg", "only_bg_t"))}


def report(runs: list[str], out_dir: Path, select_by: str = "val_accuracy") -> dict[str, str]:
    """Write Table 5 and Table 8 shapes per dataset into ``out_dir``; returns {title: markdown table}.

    Methods run with several lambdas also get ``lambda_sweep_<dataset>`` (every lambda) and
    ``best_lambda_<dataset>`` (the lambda with the highest ``select_by`` per Architecture and
    Method). Runs of different datasets never share a table.
    """
    metrics = find_metrics(runs)
    tables = {}
    for dataset in sorted({m["run"]["dataset"] for m in metrics}):
        for name, (build, variations) in TABLES.items():
            rows = [m for m in metrics if m["run"]["dataset"] == dataset and has_columns(m, variations)]
            if not rows:
                continue
            df = build(rows)
            paths = write_table(df, out_dir / f"{name}_{dataset}")
            tables[f"{name} shape, dataset {dataset}"] = df.to_markdown(index=False, floatfmt=".2f", missingval="–")
            log.info("%s, dataset %s (%d runs) -> %s", name, dataset, len(rows), ", ".join(map(str, paths)))
        sweep = lambda_tables([m for m in metrics if m["run"]["dataset"] == dataset], select_by)
        for name, df in zip(("lambda_sweep", "best_lambda"), sweep or ()):
            write_table(df, out_dir / f"{name}_{dataset}")
            tables[f"{name}, dataset {dataset} (by {select_by})"] = df.to_markdown(index=False, missingval="–")
    return tables
