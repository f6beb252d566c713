"""A run's result files: the record (``metrics.json``) and the tables of what it holds.

The tables and figures come from the components that made the numbers: the module-level ``TABLES`` and ``FIGURES``
(``rrx.tables``) of every challenge, analysis and task module, collected through their registries. A new challenge
declares its tables in its own module; nothing here changes.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rrx.analyses import ANALYSES
from rrx.challenges import CHALLENGES
from rrx.loggers import record_numbers
from rrx.masks import MASK_SOURCES
from rrx.predictions import write_predictions
from rrx.record import Record
from rrx.tables import Figure, Table, markdown, write_table
from rrx.tasks import TASKS

log = logging.getLogger(__name__)
REGISTRIES = (CHALLENGES, ANALYSES, TASKS, MASK_SOURCES)  # whose modules declare TABLES and FIGURES


def _declared(name: str) -> list:
    found: dict[str, Table | Figure] = {}
    for registry in REGISTRIES:
        for spec in registry.declared(name):
            if spec.name in found and found[spec.name] is not spec:
                raise ValueError(f"{name} {spec.name!r} is declared twice")
            found[spec.name] = spec
    return sorted(found.values(), key=lambda spec: spec.order)


def table_specs() -> list[Table]:
    """Every component's tables, in their ``order``."""
    return _declared("TABLES")


def figure_specs() -> list[Figure]:
    """Every component's figures, in their ``order``."""
    return _declared("FIGURES")


def write_results(out_dir: Path, record: Record, tracker=None) -> None:
    """``metrics.json``, ``predictions.parquet`` where the record has per-image predictions, and the run's tables
    (``write_run_tables``) in ``out_dir``; with ``tracker`` (``rrx.loggers``), ``metrics.json`` names its run, which
    then gets the final numbers and the files as artifacts, and is closed."""
    if tracker is not None:
        record.sections["tracker"] = tracker.describe()
    record.write(out_dir)
    if record.predictions is not None:
        write_predictions(out_dir, record.predictions)
    write_run_tables(record, out_dir)
    if tracker is not None:
        tracker.log_results(record_numbers(record))
        tracker.log_artifacts(out_dir)
        tracker.finish("FINISHED")
    log.info("Results in %s", out_dir)


def write_run_tables(record: Record, out_dir: Path) -> list[str]:
    """Each table (``in_run``) whose numbers ``record`` holds, as CSV, Markdown and LaTeX in ``out_dir``; the tables
    are also logged. Returns the names written."""
    written = []
    for spec in table_specs():
        if spec.in_run and spec.holds(record):
            df = spec.build([record])
            write_table(df, out_dir / spec.name, mark_best=spec.mark_best)
            log.info("%s\n%s", spec.title, markdown(df, mark_best=spec.mark_best))
            written.append(spec.name)
    return written
