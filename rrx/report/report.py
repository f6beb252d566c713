"""``rrx report``: thesis tables from a set of finished runs."""

from __future__ import annotations

import logging
from pathlib import Path

from rrx.report.collect import find_metrics
from rrx.report.sweep import label_lambdas, lambda_tables
from rrx.report.tables import MIXED_VARIATIONS, has_columns, table5, table8, table9, table10, markdown, write_table

log = logging.getLogger(__name__)

# table name -> (builder, which runs give a row)
TABLES = {
    "table5": (table5, lambda m: has_columns(m, MIXED_VARIATIONS)),
    "table8": (table8, lambda m: has_columns(m, ("only_fg", "only_bg_t"))),
    "table9": (table9, lambda m: "adversarial_accuracy" in m["challenges"]),
}


def report(runs: list[str], out_dir: Path, select_by: str = "val_accuracy") -> dict[str, str]:
    """Write Table 5 and Table 8 shapes per dataset into ``out_dir``; returns {title: markdown table}.

    Table 9 where runs were evaluated under attack, Table 10 (ColorMNIST, DecoyMNIST side by side)
    where digit runs exist. Methods run with several lambdas also get ``lambda_sweep_<dataset>`` (every lambda) and
    ``best_lambda_<dataset>`` (the lambda with the highest ``select_by`` per Architecture and
    Method). Runs of different datasets never share a table.
    """
    metrics = find_metrics(runs)
    tables = {}
    for dataset in sorted({m["run"]["dataset"] for m in metrics}):
        for name, (build, selects) in TABLES.items():
            rows = label_lambdas([m for m in metrics if m["run"]["dataset"] == dataset and selects(m)])
            if not rows:
                continue
            df = build(rows)
            paths = write_table(df, out_dir / f"{name}_{dataset}")
            tables[f"{name} shape, dataset {dataset}"] = markdown(df)
            log.info("%s, dataset %s (%d runs) -> %s", name, dataset, len(rows), ", ".join(map(str, paths)))
        sweep = lambda_tables([m for m in metrics if m["run"]["dataset"] == dataset], select_by)
        for name, df in zip(("lambda_sweep", "best_lambda"), sweep or ()):
            write_table(df, out_dir / f"{name}_{dataset}")
            tables[f"{name}, dataset {dataset} (by {select_by})"] = markdown(df)
    digits = [m for m in metrics if m["run"]["dataset"] in ("color_mnist", "decoy_mnist") and "original" in m["challenges"].get("accuracy", {})]
    if digits:  # Table 10 puts the two digit datasets side by side
        df = table10(digits)
        write_table(df, out_dir / "table10")
        tables["table10 shape (test accuracy)"] = markdown(df)
    return tables
