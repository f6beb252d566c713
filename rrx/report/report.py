"""``rrx report``: thesis tables from a set of finished runs."""

from __future__ import annotations

import logging
from pathlib import Path

from rrx.report.collect import find_metrics
from rrx.report.tables import table5, write_table

log = logging.getLogger(__name__)


def report(runs: list[str], out_dir: Path) -> dict[str, str]:
    """Write one Table 5 per dataset into ``out_dir``; returns {dataset: markdown table}."""
    metrics = find_metrics(runs)
    tables = {}
    for dataset in sorted({m["run"]["dataset"] for m in metrics}):
        rows = [m for m in metrics if m["run"]["dataset"] == dataset]
        df = table5(rows)
        paths = write_table(df, out_dir / f"table5_{dataset}")
        tables[dataset] = df.to_markdown(index=False, floatfmt=".2f", missingval="–")
        log.info("Table 5 shape, dataset %s (%d runs) -> %s", dataset, len(rows), ", ".join(map(str, paths)))
    return tables
