"""Finding finished runs' ``metrics.json`` files, and the runs that did not finish."""

from __future__ import annotations

import glob
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from rrx.checkpoint import SAME_RUN_IGNORES
from rrx.outputs import read_status
from rrx.errors import RRXError

log = logging.getLogger(__name__)


@dataclass
class Runs:
    """Finished runs (their metrics dicts, each with ``path``) and skipped folders/files with the reason."""

    finished: list[dict]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    sweeps: list[str] = field(default_factory=list)  # the command of each Hydra multirun found


def sweep_command(multirun_yaml: Path) -> str:
    """``rrx <app> -m <overrides>`` as typed, from the ``multirun.yaml`` Hydra writes into a sweep folder."""
    hydra = OmegaConf.load(multirun_yaml).hydra
    own = [o for o in hydra.overrides.hydra if str(o).startswith("hydra.sweep.dir=")]
    return " ".join(["rrx", str(hydra.job.name), "-m", *map(str, hydra.overrides.task), *map(str, own)])


def _skip(runs: Runs, path: Path, reason: str) -> None:
    log.warning("skipped %s: %s", path, reason)
    runs.skipped.append((str(path), reason))


def _checkpoint_of(metrics: dict, folder: Path) -> str | None:
    """The checkpoint a run wrote (training) or read (evaluation), as an absolute path."""
    name = metrics.get("checkpoint")
    return None if name is None else str((folder / name).resolve())


def merge_evaluations(runs: list[dict]) -> list[dict]:
    """Add each ``rrx evaluate`` and ``rrx analyze`` result to the training run of the same checkpoint and dataset.

    An evaluation's challenges extend (or replace, variation by variation) the training run's, an analysis's
    settings (``analyses.<name>.<setting>``) likewise;
    evaluations whose training run is not among ``runs`` stay rows of their own.
    """
    trained = {(m["checkpoint_path"], m["run"]["dataset"]): m for m in runs if m.get("train") and m["checkpoint_path"]}
    kept = []
    for m in runs:
        target = None if m.get("train") else trained.get((m["checkpoint_path"], m["run"]["dataset"]))
        if target is None:
            kept.append(m)
            continue
        for key, value in m["challenges"].items():
            if isinstance(value, dict) and isinstance(target["challenges"].get(key), dict):
                target["challenges"][key] = {**target["challenges"][key], **value}
            else:
                target["challenges"][key] = value
        for name, results in m.get("analyses", {}).items():  # rrx analyze: keyed by all its settings, a sweep adds up
            known = target.setdefault("analyses", {}).setdefault(name, {})
            for key in sorted(set(known) & set(results)):
                log.warning("analysis %s %s of %s: the result in %s replaces an earlier one with the same settings",
                            name, key, target["path"], m["path"])
            known.update(results)
        log.info("evaluation %s added to run %s", m["path"], target["path"])
    return kept


def find_metrics(patterns: list[str]) -> Runs:
    """Every readable ``metrics.json`` under the given folders or globs, in path order.

    Files that cannot be read or lack results are skipped with the reason, and so are run
    folders with a checkpoint or an ``error.txt`` but no ``metrics.json`` (failed or unfinished jobs, with the
    reason from their ``status.json``), evaluations of unfinished checkpoints, and second ``metrics-N.json`` files.
    Evaluations are merged into their training runs (``merge_evaluations``).
    """
    files: set[Path] = set()
    orphans: set[Path] = set()
    sweeps: set[Path] = set()
    extra: set[Path] = set()
    for pattern in patterns:
        matches = glob.glob(str(Path(pattern).expanduser()))
        if not matches:
            raise RRXError(f"runs={pattern}: no such folder or file")
        for match in map(Path, matches):
            if match.is_dir():
                files.update(match.rglob("metrics.json"))
                extra.update(p for p in match.rglob("metrics*.json") if p.name != "metrics.json")
                orphans.update(p.parent for name in ("error.txt", "checkpoint.pt") for p in match.rglob(name))
                sweeps.update(match.rglob("multirun.yaml"))
            else:
                files.add(match)
    runs = Runs([])
    for file in sorted(extra):  # earlier rrx let a second run write metrics-1.json into a run folder
        _skip(runs, file, "a second metrics file in one run folder (two runs shared it; its checkpoint and config "
                          "belong to one of them only): not used")
    for file in sorted(sweeps):
        try:
            runs.sweeps.append(sweep_command(file))
        except Exception as err:  # an old or edited multirun.yaml only loses the provenance line
            log.warning("%s: cannot read the sweep's command (%s)", file, err)
    for folder in sorted(orphans - {f.parent for f in files}):
        error = folder / "error.txt"
        status = read_status(folder)
        if error.is_file():
            lines = error.read_text().strip().splitlines()
            _skip(runs, folder, f"failed: {lines[-1] if lines else 'error.txt is empty'}")
        elif status is not None and status.get("reason"):
            _skip(runs, folder, f"unfinished, {status['state']} after epoch {status['epoch']} of {status['epochs']}: {status['reason']}")
        elif status is not None:
            _skip(runs, folder, f"unfinished ({status['state']}; epoch {status['epoch']} of {status['epochs']} saved; "
                                "killed, or still running): resume it with the same command")
        else:
            _skip(runs, folder, "no metrics.json (unfinished or stopped run)")
    for file in sorted(files):
        try:
            metrics = json.loads(file.read_text())
        except (OSError, ValueError) as err:
            _skip(runs, file, str(err))
            continue
        missing = [key for key in ("run", "challenges") if key not in metrics]
        if missing:
            _skip(runs, file, f"no {' or '.join(missing)}")
            continue
        state = metrics.get("checkpoint_state") or {}
        if state.get("finished") is False:
            _skip(runs, file, f"evaluation of an unfinished checkpoint (epoch {state['epoch']} of {state['epochs']}): "
                              "not counted as a finished run")
            continue
        metrics["path"] = str(file.parent)
        metrics["checkpoint_path"] = _checkpoint_of(metrics, file.parent)
        runs.finished.append(metrics)
    if not runs.finished:
        raise RRXError(f"runs={','.join(patterns)}: no finished runs (no readable metrics.json) found")
    runs.finished = label_config_differences(merge_evaluations(runs.finished))
    return runs


# Keys that may differ between runs of one row: the seed (rows are means over seeds), lambda (labelled on its own),
# and what does not change the result (checkpoint.SAME_RUN_IGNORES).
NOT_A_DIFFERENCE = tuple(f"{prefix}{key}" for prefix in ("", "train.")
                         for key in ("seed", "method.lam", "lambda_index", "lambda_grid", *SAME_RUN_IGNORES))


def _flat(node, prefix: str = "") -> dict:
    if not isinstance(node, dict):
        return {prefix: node}
    flat = {}
    for key, value in node.items():
        flat.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _read_config(folder: Path) -> dict | None:
    path = folder / ".hydra" / "config.yaml"
    if not path.is_file():
        return None
    try:
        return _flat(OmegaConf.to_container(OmegaConf.load(path), resolve=True))
    except Exception as err:  # an old or edited config only loses the check
        log.warning("%s: cannot read the run's config (%s); runs are told apart by their names only", path, err)
        return None


def run_config(folder: Path) -> dict | None:
    """The run's resolved config, flattened (``method.fill``: ``tile``), from its ``.hydra/config.yaml``; None
    where there is none or it cannot be resolved.

    An evaluation (``checkpoint=<run>``) is told apart by its training run's config (as ``train.<key>``) and its own
    settings, not by the checkpoint's path: evaluations of the seeds of one configuration share a row.
    """
    config = _read_config(folder)
    if config is None or not config.get("checkpoint"):
        return config
    checkpoint = Path(str(config.pop("checkpoint")))
    trained = _read_config(checkpoint if checkpoint.is_dir() else checkpoint.parent) or {}
    return {**{f"train.{k}": v for k, v in trained.items()}, **config}


def _values(group: list[dict], configs: dict, key: str) -> set[str]:
    values = {repr(configs[id(m)].get(key)) for m in group}
    if key == "dataset.variant":  # Decoy MNIST without a decoy has a Table 10 column of its own
        values.discard(repr("none"))
    return values


def label_config_differences(runs: list[dict]) -> list[dict]:
    """Runs that share a table row's name (dataset, architecture, method) but not their config, beyond the seed and
    lambda, get the differing keys added to their Method, e.g. ``Standard + RRDA [method.fill=tile,
    method.pairing=alg3]``, so that the report never averages different configurations as if they were seeds."""
    configs = {id(m): run_config(Path(m["path"])) for m in runs}
    groups: dict[tuple, list[dict]] = {}
    for m in runs:
        if configs[id(m)] is not None:
            groups.setdefault((m["run"].get("dataset"), m["run"].get("architecture"), m["run"].get("method")), []).append(m)
    labelled = {}
    for group in groups.values():
        keys = sorted({k for m in group for k in configs[id(m)]} - set(NOT_A_DIFFERENCE))
        keys = [k for k in keys if not k.startswith(("lambda_grid.", "train.lambda_grid.")) and len(_values(group, configs, k)) > 1]
        if not keys:
            continue
        log.info("runs named %s differ in %s: told apart in the tables", group[0]["run"]["method"], ", ".join(keys))
        for m in group:
            suffix = ", ".join(f"{k}={configs[id(m)].get(k)}" for k in keys)
            labelled[id(m)] = {**m, "run": {**m["run"], "method": f'{m["run"]["method"]} [{suffix}]'}}
    return [labelled.get(id(m), m) for m in runs]
