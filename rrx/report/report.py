"""``rrx report``: thesis tables, figures and a ``report.md`` from a set of finished runs.

The tables and figures are the components' (``rrx.results.table_specs``, ``figure_specs``): per task and dataset,
each one whose numbers some run holds, in their ``order``. The report adds what spans components or datasets: the
lambda sweeps, the lambda curves, Table 8 with the datasets side by side and Table 10.
"""

from __future__ import annotations

import datetime
import logging
import time
from pathlib import Path

from rrx.challenges.background import SIGNAL_VARIATIONS, has_columns
from rrx.outputs import write_json, write_text
from rrx.provenance import collect
from rrx.record import Record
from rrx.report.collect import Runs, find_metrics
from rrx.report.figures import lambda_curves
from rrx.report.provenance import provenance_lines, results
from rrx.report.sweep import label_lambdas, lambda_tables, selects_on_test
from rrx.report.tables import table8_side_by_side, table10
from rrx.results import figure_specs, table_specs
from rrx.tables import LOWER_IS_BETTER, WORKING_ACCURACY, markdown, model_name, write_table
from rrx.tasks import TASKS

log = logging.getLogger(__name__)
SWEEP_ORDER = 50  # the lambda sweeps come after the challenges' tables (orders below) and before the analyses'


def _section(title: str, df, stem: Path, lines: list[str], tables: dict[str, str], mark_best: bool = True) -> None:
    paths = write_table(df, stem, mark_best)
    text = markdown(df, mark_best)
    tables[title] = text
    lines += [f"### {title}", "", text, "", f"Files: {', '.join(f'`{p.name}`' for p in paths)}", ""]


def _header(found: Runs, runs: list[str], command: str | None) -> list[str]:
    """report.md's opening: the command, the conventions, where the runs came from, their wall time,
    what was skipped."""
    metrics = found.finished
    lines = [
        "# rrx report",
        "",
        f"Produced by `{command or 'rrx report runs=' + ','.join(runs)}` on {datetime.date.today().isoformat()}.",
        "",
        f"{len(metrics)} finished runs from {', '.join(f'`{r}`' for r in runs)}. Accuracies in percent; "
        "BG Gap = Mixed same - Mixed rand. Several runs of one configuration (seeds) are shown as mean ± sample "
        "standard deviation with their number in the Seeds column. The best value per column is in bold: the highest, "
        f"except {' and '.join(sorted(LOWER_IS_BETTER))}, where the lowest is best among the models that classify "
        f"(an accuracy of at least {WORKING_ACCURACY:.0f} % in the table; a model at chance has a BG Gap of 0).",
        "",
    ]
    if found.sweeps:
        lines += ["The runs come from:", ""] + [f"    {sweep}" for sweep in found.sweeps] + [""]
    timed = [(m, m.started, m.finished) for m in metrics if m.started is not None and m.finished is not None]
    if timed:
        busy = sum(finished - started for _, started, finished in timed) / 60
        span = (max(finished for *_, finished in timed) - min(started for _, started, _ in timed)) / 60
        devices = sorted({(m.train or {}).get("device", "?") for m, _, _ in timed})
        lines += [
            f"Wall time of the {len(timed)} training runs (data, training and every challenge): {busy:.1f} min in all, "
            f"{span:.1f} min from the first start to the last finish, on {', '.join(devices)}.",
            "",
        ]
    if found.skipped:
        lines += (
            [f"Skipped ({len(found.skipped)}):", ""]
            + [f"- `{path}`: {reason}" for path, reason in found.skipped]
            + [""]
        )
    return lines


def _figures(runs: list[Record], dataset: str, out_dir: Path) -> dict[str, Path]:
    """Every component figure some run of ``dataset`` has data for: {caption: PNG path}. A figure is drawn from all
    of the dataset's runs (those without its data add nothing); a per-run figure once per run that has it."""
    made = {}
    for spec in figure_specs():
        if spec.per_run:
            for i, m in enumerate(runs):
                if spec.holds(m):
                    slug = "".join(c if c.isalnum() else "_" for c in model_name(m)).strip("_").lower()
                    made[f"{spec.caption}, {model_name(m)}"] = spec.draw(
                        m, out_dir / f"{spec.name}_{slug}_{dataset}_{i}.png"
                    )
        elif any(spec.holds(m) for m in runs):
            made[spec.caption] = spec.draw(runs, dataset, out_dir / f"{spec.name}_{dataset}.png")
    return {caption: path for caption, path in made.items() if path is not None}


def _sweeps(
    runs: list[Record], dataset: str, select_by: str, out_dir: Path, lines: list[str], tables: dict[str, str]
) -> None:
    sweep = lambda_tables(runs, select_by)
    if sweep is not None:
        every, best = sweep
        _section(f"Every lambda, {dataset}", every, out_dir / f"lambda_sweep_{dataset}", lines, tables)
        title = f"Best lambda by {select_by}, {dataset}"
        if selects_on_test(select_by):
            warning = (
                f"lambda chosen by {select_by}, a test-split accuracy: the test numbers of the chosen runs are not "
                "held-out results; choose by val_accuracy or val_mixed_rand (trainer.val_fraction > 0)"
            )
            log.warning("%s", warning)
            title += " (selected on the test set)"
            lines += [f"> **Warning:** {warning}", ""]
        _section(title, best, out_dir / f"best_lambda_{dataset}", lines, tables)


def _dataset_sections(
    task, runs: list[Record], dataset: str, select_by: str, out_dir: Path, lines: list[str], tables: dict[str, str]
) -> None:
    """One dataset's runs of one task: its heading and note, the tables, the sweeps, the figures."""
    lines += [f"## {task.report_heading} `{dataset}` ({len(runs)} runs)", ""]
    note = task.report_note(runs)
    if note:
        lines += [note, ""]
    labelled = label_lambdas(runs)
    swept = False
    for spec in table_specs():
        if not swept and spec.order >= SWEEP_ORDER:
            _sweeps(runs, dataset, select_by, out_dir, lines, tables)
            swept = True
        rows = [m for m in labelled if spec.holds(m)]
        if spec.in_report and rows:
            _section(
                f"{spec.title}, {dataset}",
                spec.build(rows),
                out_dir / f"{spec.name}_{dataset}",
                lines,
                tables,
                spec.mark_best,
            )
    if not swept:
        _sweeps(runs, dataset, select_by, out_dir, lines, tables)
    made = _figures(labelled, dataset, out_dir)
    curve = lambda_curves(runs, dataset, out_dir / f"lambda_curve_{dataset}.png")
    if curve is not None:
        made["BG-Gap and original accuracy against lambda"] = curve
    for caption, path in made.items():
        lines += [f"### {caption}", "", f"![{caption}]({path.name})", ""]


def _across_datasets(metrics: list[Record], out_dir: Path, lines: list[str], tables: dict[str, str]) -> None:
    """Table 8 with the datasets side by side, and Table 10 (the two digit datasets)."""
    signal = [m for m in metrics if has_columns(m, SIGNAL_VARIATIONS)]
    if len({m.dataset for m in signal}) > 1:  # the thesis's Table 8: datasets side by side
        lines += ["## Datasets side by side", ""]
        labelled = [
            r for d in sorted({m.dataset for m in signal}) for r in label_lambdas([m for m in signal if m.dataset == d])
        ]
        _section(
            "Only object / only background (Table 8 as printed in the thesis)",
            table8_side_by_side(labelled),
            out_dir / "table8",
            lines,
            tables,
        )
    digits = [
        m
        for m in metrics
        if m.dataset in ("color_mnist", "decoy_mnist") and "original" in m.challenges.get("accuracy", {})
    ]
    if digits:  # Table 10 puts the two digit datasets side by side
        lines += ["## Digit datasets", ""]
        _section("Test accuracy (Table 10 shape)", table10(digits), out_dir / "table10", lines, tables)


def report(
    runs: list[str], out_dir: Path, select_by: str = "val_accuracy", command: str | None = None
) -> dict[str, str]:
    """Write the tables (CSV, Markdown, LaTeX), figures (PNG) and ``report.md`` into ``out_dir``.

    Per task and dataset, every component table and figure some run has numbers for (Table 5/6 and Table 8 shapes,
    Table 9 where runs were evaluated under attack, the analyses' tables, segmentation's Tables 3-4, ...), and for
    methods run with several lambdas ``lambda_sweep_<dataset>`` (every lambda) and ``best_lambda_<dataset>``
    (highest ``select_by`` averaged over seeds); then Table 8 side by side and Table 10 (ColorMNIST and DecoyMNIST)
    where several datasets have them. Runs of different datasets never share a table or a figure. Returns {title:
    markdown table}.
    """
    started = time.time()
    found = find_metrics(runs)
    out_dir.mkdir(parents=True, exist_ok=True)
    tables: dict[str, str] = {}
    lines = _header(found, runs, command)
    for name in TASKS.names():
        task = TASKS.get(name)
        of_task = [m for m in found.finished if m.task == name]
        for dataset in sorted({m.dataset for m in of_task}):
            _dataset_sections(
                task, [m for m in of_task if m.dataset == dataset], dataset, select_by, out_dir, lines, tables
            )
    _across_datasets([m for m in found.finished if m.task == "classification"], out_dir, lines, tables)
    lines += provenance_lines(found.finished)
    write_json(
        out_dir / "provenance.json",
        {"report": collect(started, None), "results": {str(m.source): m.provenance for m in results(found.finished)}},
    )
    path = write_text(out_dir / "report.md", "\n".join(lines))
    log.info("Report in %s", path)
    return tables
