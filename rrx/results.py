"""A run's identity and its result files: ``metrics.json`` plus the Table 5 row."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from rrx.outputs import write_json
from rrx.report.tables import (MIXED_VARIATIONS, SIGNAL_VARIATIONS, edge_grid, has_columns, markdown, table5, table8, table9,
                               table14, table_adversarial_backgrounds, write_table)

log = logging.getLogger(__name__)


def run_info(cfg: DictConfig, method) -> dict:
    """What a table needs to name the run; an attack used in training is part of the method name."""
    attack = cfg.attack.display_name
    return {
        "architecture": cfg.model.display_name,
        "method": f"{method.label} + {attack}" if attack else method.label,
        "attack": cfg.attack.name,
        "dataset": cfg.dataset.name,
        "variant": cfg.dataset.get("variant"),  # Decoy MNIST: ross, cdep, or none (no decoy)
        "model": cfg.model.name,
        "method_name": cfg.method.name,
        "lam": float(cfg.method.lam),
        "rrda": bool(cfg.method.rrda),
        "seed": int(cfg.seed),
    }


def write_results(out_dir: Path, metrics: dict) -> None:
    """``metrics.json`` and the tables of ``write_tables`` in ``out_dir``."""
    write_json(out_dir / "metrics.json", metrics)
    write_tables(out_dir, metrics)
    log.info("Results in %s", out_dir)


def write_tables(out_dir: Path, metrics: dict) -> None:
    """For what was evaluated, ``table5``, ``table8``, ``table9``, ``edge``, ``adversarial_backgrounds`` and
    ``table14`` as CSV, Markdown and LaTeX in ``out_dir``; the tables are also logged."""
    tables = {}
    if has_columns(metrics, MIXED_VARIATIONS):
        tables["table5"] = table5([metrics])
    if has_columns(metrics, SIGNAL_VARIATIONS):
        tables["table8"] = table8([metrics])
    if "adversarial_accuracy" in metrics["challenges"]:
        tables["table9"] = table9([metrics])
    if "edge" in metrics["challenges"]:
        tables["edge"] = edge_grid(metrics)
    if "adversarial_backgrounds" in metrics["challenges"]:
        tables["adversarial_backgrounds"] = table_adversarial_backgrounds([metrics])
    if "score_variability" in metrics["challenges"]:
        tables["table14"] = table14([metrics])
    for name, df in tables.items():
        rank = name not in ("edge", "table14", "adversarial_backgrounds")  # one model's rows: no best to mark
        write_table(df, out_dir / name, mark_best=rank)
        log.info("%s\n%s", name, markdown(df, mark_best=rank))
