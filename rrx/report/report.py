"""``rrx report``: thesis tables, figures and a ``report.md`` from a set of finished runs."""

from __future__ import annotations

import datetime
import logging
from pathlib import Path

from rrx.outputs import write_text
from rrx.report import segmentation
from rrx.report.analyses import analysis_figures, analysis_tables
from rrx.report.collect import Runs, find_metrics
from rrx.report.figures import figures, lambda_curves
from rrx.report.sweep import label_lambdas, lambda_tables
from rrx.report.tables import (
    LOWER_IS_BETTER,
    MIXED_VARIATIONS,
    SIGNAL_VARIATIONS,
    WORKING_ACCURACY,
    has_columns,
    markdown,
    table5,
    table8,
    table8_side_by_side,
    table9,
    table10,
    table11,
    table14,
    table_adversarial_backgrounds,
    table_snr,
    write_table,
)

log = logging.getLogger(__name__)

# table name -> (title, builder, which runs give a row, whether a best value is marked)
TABLES = {
    "table5": ("Background challenge (Table 5/6/12 shape)", table5, lambda m: has_columns(m, MIXED_VARIATIONS), True),
    "table8": ("Only object / only background (Table 8/13 shape; Only BG = only_bg_t)", table8,
               lambda m: has_columns(m, SIGNAL_VARIATIONS), True),
    "table9": ("Accuracy under attack (Table 9 shape)", table9, lambda m: "adversarial_accuracy" in m["challenges"], True),
    "table11": ("Texture task with a patch shortcut: AUC and F1 of class 1 (Table 11 shape)", table11,
                lambda m: "patches" in m["challenges"], True),
    "adversarial_backgrounds": ("Adversarial backgrounds (Xiao et al.; accuracy = 1 - vulnerable foregrounds)",
                                table_adversarial_backgrounds, lambda m: "adversarial_backgrounds" in m["challenges"], False),
    # SV is a description of how scores move, not a score to maximise
    "table14": ("Score variability of zero-shot models, percent (Table 14 shape)", table14,
                lambda m: "score_variability" in m["challenges"], False),
    # a higher SNR is not a better model (thesis 4.2.7), so none is marked
    "snr": ("Median signal-to-noise ratio of attributions (Figs. 18-19 as numbers)", table_snr, lambda m: "snr" in m["challenges"], False),
}


def _section(title: str, df, stem: Path, lines: list[str], tables: dict[str, str], mark_best: bool = True) -> None:
    paths = write_table(df, stem, mark_best)
    text = markdown(df, mark_best)
    tables[title] = text
    lines += [f"### {title}", "", text, "", f"Files: {', '.join(f'`{p.name}`' for p in paths)}", ""]


def _header(found: Runs, runs: list[str], command: str | None) -> list[str]:
    """report.md's opening: the command, the conventions, where the runs came from, their wall time, what was skipped."""
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
    timed = [m for m in metrics if "started" in m and "finished" in m]
    if timed:
        busy = sum(m["finished"] - m["started"] for m in timed) / 60
        span = (max(m["finished"] for m in timed) - min(m["started"] for m in timed)) / 60
        devices = sorted({m.get("train", {}).get("device", "?") for m in timed})
        lines += [f"Wall time of the {len(timed)} training runs (data, training and every challenge): {busy:.1f} min in all, "
                  f"{span:.1f} min from the first start to the last finish, on {', '.join(devices)}.", ""]
    if found.skipped:
        lines += [f"Skipped ({len(found.skipped)}):", ""] + [f"- `{path}`: {reason}" for path, reason in found.skipped] + [""]
    return lines


def report(runs: list[str], out_dir: Path, select_by: str = "val_accuracy", command: str | None = None) -> dict[str, str]:
    """Write the tables (CSV, Markdown, LaTeX), figures (PNG) and ``report.md`` into ``out_dir``.

    Per dataset: Table 5/6 and Table 8 shapes, Table 9 where runs were evaluated under attack, and for
    methods run with several lambdas ``lambda_sweep_<dataset>`` (every lambda) and
    ``best_lambda_<dataset>`` (highest ``select_by`` averaged over seeds); Table 10 (ColorMNIST and
    DecoyMNIST side by side) where digit runs exist. Runs of different datasets never share a table
    or a figure. Returns {title: markdown table}.
    """
    found = find_metrics(runs)
    metrics = [m for m in found.finished if not segmentation.is_segmentation(m)]
    out_dir.mkdir(parents=True, exist_ok=True)
    tables: dict[str, str] = {}
    lines = _header(found, runs, command)
    for dataset in sorted({m["run"]["dataset"] for m in metrics}):
        runs_of = [m for m in metrics if m["run"]["dataset"] == dataset]
        lines += [f"## Dataset `{dataset}` ({len(runs_of)} runs)", ""]
        for name, (title, build, selects, mark_best) in TABLES.items():
            rows = label_lambdas([m for m in runs_of if selects(m)])
            if rows:
                _section(f"{title}, {dataset}", build(rows), out_dir / f"{name}_{dataset}", lines, tables, mark_best)
        sweep = lambda_tables(runs_of, select_by)
        if sweep is not None:
            every, best = sweep
            _section(f"Every lambda, {dataset}", every, out_dir / f"lambda_sweep_{dataset}", lines, tables)
            _section(f"Best lambda by {select_by}, {dataset}", best, out_dir / f"best_lambda_{dataset}", lines, tables)
        for name, (title, df) in analysis_tables(label_lambdas(runs_of)).items():
            _section(f"{title}, {dataset}", df, out_dir / f"{name}_{dataset}", lines, tables, mark_best=False)
        made = figures(label_lambdas(runs_of), dataset, out_dir) | analysis_figures(label_lambdas(runs_of), dataset, out_dir)
        curve = lambda_curves(runs_of, dataset, out_dir / f"lambda_curve_{dataset}.png")
        if curve is not None:
            made["BG-Gap and original accuracy against lambda"] = curve
        for caption, path in made.items():
            lines += [f"### {caption}", "", f"![{caption}]({path.name})", ""]
    signal = [m for m in metrics if has_columns(m, SIGNAL_VARIATIONS)]
    if len({m["run"]["dataset"] for m in signal}) > 1:  # the thesis's Table 8: datasets side by side
        lines += ["## Datasets side by side", ""]
        labelled = [r for d in sorted({m["run"]["dataset"] for m in signal})
                    for r in label_lambdas([m for m in signal if m["run"]["dataset"] == d])]
        _section("Only object / only background (Table 8 as printed in the thesis)", table8_side_by_side(labelled),
                 out_dir / "table8", lines, tables)
    digits = [m for m in metrics if m["run"]["dataset"] in ("color_mnist", "decoy_mnist") and "original" in m["challenges"].get("accuracy", {})]
    if digits:  # Table 10 puts the two digit datasets side by side
        lines += ["## Digit datasets", ""]
        _section("Test accuracy (Table 10 shape)", table10(digits), out_dir / "table10", lines, tables)
    segmented = [m for m in found.finished if segmentation.is_segmentation(m)]
    for dataset in sorted({m["run"]["dataset"] for m in segmented}):  # thesis ch. 3: Tables 3-4, Figs. 8 and 10
        runs_of = [m for m in segmented if m["run"]["dataset"] == dataset]
        lines += [f"## Segmentation, dataset `{dataset}` ({len(runs_of)} runs)", "", segmentation.note(runs_of), ""]
        for name, (title, df) in segmentation.tables(runs_of).items():
            _section(f"{title}, {dataset}", df, out_dir / f"{name}_{dataset}", lines, tables, mark_best=False)
        for caption, path in segmentation.figures(runs_of, dataset, out_dir).items():
            lines += [f"### {caption}", "", f"![{caption}]({path.name})", ""]
    path = write_text(out_dir / "report.md", "\n".join(lines))
    log.info("Report in %s", path)
    return tables
