"""A run's identity and its result files: ``metrics.json`` plus the Table 5 row."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from rrx.outputs import write_json
from rrx.report.tables import table5, write_table

log = logging.getLogger(__name__)


def run_info(cfg: DictConfig, method) -> dict:
    """What a table needs to name the run."""
    return {
        "architecture": cfg.model.display_name,
        "method": method.label,
        "dataset": cfg.dataset.name,
        "model": cfg.model.name,
        "method_name": cfg.method.name,
        "lam": float(cfg.method.lam),
        "rrda": bool(cfg.method.rrda),
        "seed": int(cfg.seed),
    }


def write_results(out_dir: Path, metrics: dict) -> None:
    """``metrics.json`` and ``table5.{csv,md,tex}`` in ``out_dir``; the table is also logged."""
    write_json(out_dir / "metrics.json", metrics)
    df = table5([metrics])
    write_table(df, out_dir / "table5")
    log.info("Results in %s\n%s", out_dir, df.to_markdown(index=False, floatfmt=".2f", missingval="–"))
