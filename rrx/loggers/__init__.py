"""Experiment trackers (config group ``logger``): ``create_logger(cfg, out_dir)`` by ``cfg.name``.

Every logger implements the ``Tracker`` contract below. What rrx logs: the resolved config (``start``), per-epoch
loss and accuracy of training (``log_metrics``; the ranks' counts are summed before, as in ``metrics.json``), the
final challenge and analysis numbers (``log_results``: ``metrics.json``'s numbers flattened to ``challenges/...``,
``analyses/...`` and ``train/...`` keys), and the run's tables, figures and ``metrics.json`` as artifacts
(``log_artifacts``). The tracker's run is named after the run's folder and tagged with its path, and
``metrics.json`` names the tracker's run (``tracker``). A tracker that cannot start is one ``rrx: error:`` line before
any training; one that fails later only warns, so a run is never lost to its tracker.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from rrx.config import ComponentConfig
from rrx.errors import RRXError
from rrx.registry import Registry

LOGGERS = Registry("logger", __name__)
register_logger = LOGGERS.register
log = logging.getLogger(__name__)
# what a run writes that a tracker keeps as artifacts: its record, tables and figures
ARTIFACT_SUFFIXES = (".json", ".csv", ".md", ".tex", ".png", ".parquet")


@dataclass
class LoggerConfig(ComponentConfig):
    """an experiment tracker"""


class Tracker:
    """The contract of a logger: ``start`` once with the run's config, then ``log_metrics`` per epoch,
    ``log_results`` and ``log_artifacts`` at the end, and ``finish``; ``describe`` is what ``metrics.json`` records of
    the tracker's run (its name, id and where it is stored)."""

    name = "tracker"

    def start(self, config: dict) -> None:
        """Open the tracker's run and log ``config``; an RRXError when it cannot."""

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Numbers of one epoch (``step``)."""

    def log_results(self, results: dict[str, float]) -> None:
        """The final numbers."""

    def log_artifacts(self, folder: Path) -> None:
        """The run's result files (``artifacts(folder)``)."""

    def finish(self, status: str = "FINISHED") -> None:
        """Close the tracker's run: ``FINISHED`` or ``FAILED``."""

    def describe(self) -> dict:
        return {"logger": self.name}


def artifacts(folder: Path) -> list[Path]:
    """The result files of a run folder (``ARTIFACT_SUFFIXES``, not the checkpoint or logs), in name order."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix in ARTIFACT_SUFFIXES)


def flat_numbers(node: Any, prefix: str = "") -> dict[str, float]:
    """The numbers in a nested dict as ``{"a/b/c": value}`` (booleans, strings and lists left out)."""
    out: dict[str, float] = {}
    if isinstance(node, dict):
        for key, value in node.items():
            out.update(flat_numbers(value, f"{prefix}/{key}" if prefix else str(key)))
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        out[prefix] = float(node)
    return out


def record_numbers(record) -> dict[str, float]:
    """What ``log_results`` gets from a run's record: its challenges', analyses' and training's numbers."""
    numbers = flat_numbers({"challenges": record.challenges, "analyses": record.analyses})
    train = dict(record.train or {})
    train.pop("epochs", None)  # logged per epoch already
    return {**numbers, **flat_numbers({"train": train})}


def create_logger(cfg, out_dir: Path) -> Tracker:
    """The logger ``cfg.name`` for the run folder ``out_dir``, after its keys are checked."""
    from rrx.config import typed

    factory = LOGGERS.get(cfg["name"])
    return factory(typed("logger", cfg), Path(out_dir))


class Guarded:
    """A tracker whose failures after ``start`` are warnings (the run goes on and keeps its files)."""

    def __init__(self, tracker: Tracker):
        self.tracker = tracker
        self.failed = False

    def start(self, config: dict) -> None:
        try:
            self.tracker.start(config)
        except RRXError:
            raise
        except Exception as err:  # noqa: BLE001 - any tracker's own error: one line, before training
            raise RRXError(f"logger={self.tracker.name} cannot start: {str(err).splitlines()[0]}") from err

    def __getattr__(self, name: str):
        call = getattr(self.tracker, name)
        if not callable(call):
            return call

        def guarded(*args, **kwargs):
            if self.failed:
                return None
            try:
                return call(*args, **kwargs)
            except Exception as err:  # noqa: BLE001 - the run outlives its tracker
                self.failed = True
                log.warning("logger=%s failed (%s); the run goes on, its files are complete", self.tracker.name, err)
                return None

        return guarded


def open_tracker(cfg, out_dir: Path, config: dict) -> Guarded:
    """``create_logger`` and ``start``: the tracker of a run, guarded (``Guarded``)."""
    tracker = Guarded(create_logger(cfg, out_dir))
    tracker.start(config)
    return tracker


@contextmanager
def tracked(cfg, out_dir: Path) -> Iterator[Guarded | None]:
    """The tracker of a command's run in ``out_dir`` (``cfg.logger``; None where the config has none), opened with
    the resolved config; closed as failed when the command fails (``rrx.results.write_results`` closes it
    otherwise)."""
    from omegaconf import OmegaConf

    if "logger" not in cfg:
        yield None
        return
    tracker = open_tracker(cfg.logger, out_dir, cast(dict, OmegaConf.to_container(cfg, resolve=True)))
    try:
        yield tracker
    except BaseException:
        tracker.finish("FAILED")
        raise


def list_loggers() -> list[str]:
    return LOGGERS.names()
