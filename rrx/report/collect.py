"""Finding finished runs' ``metrics.json`` files, and the runs that did not finish."""

from __future__ import annotations

import glob
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from omegaconf import OmegaConf

from rrx.checkpoint import CHECKPOINT, SAME_RUN_IGNORES
from rrx.errors import RRXError
from rrx.outputs import ERROR, STATUS, command_of, read_status
from rrx.predictions import disagreement, read_predictions
from rrx.record import Record

log = logging.getLogger(__name__)


@dataclass
class Runs:
    """Finished runs (their records, each with its ``source`` folder) and skipped folders/files with the reason."""

    finished: list[Record]
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


def _checkpoint_of(record: Record, folder: Path) -> str | None:
    """The checkpoint a run wrote (training) or read (evaluation), as an absolute path."""
    name = record.checkpoint
    return None if name is None else str((folder / name).resolve())


def merge_evaluations(runs: list[Record]) -> list[Record]:
    """Add each ``rrx evaluate`` and ``rrx analyze`` result to the training run of the same checkpoint and dataset.

    An evaluation's challenges extend (or replace, variation by variation) the training run's, an analysis's
    settings (``analyses.<name>.<setting>``) likewise;
    evaluations whose training run is not among ``runs`` stay rows of their own.
    """
    trained: dict[tuple[str | None, str], Record] = {
        (m.checkpoint_path, m.dataset): m for m in runs if m.command == "train" and m.checkpoint_path
    }
    kept = []
    for m in runs:
        target = None if m.command == "train" else trained.get((m.checkpoint_path, m.dataset))
        if target is None:
            kept.append(m)
            continue
        for key, value in m.challenges.items():
            if isinstance(value, dict) and isinstance(target.challenges.get(key), dict):
                target.challenges[key] = {**target.challenges[key], **value}
            else:
                target.challenges[key] = value
        for name, results in m.analyses.items():  # rrx analyze: keyed by all its settings, a sweep adds up
            known = target.analyses.setdefault(name, {})
            for key in sorted(set(known) & set(results)):
                log.warning(
                    "analysis %s %s of %s: the result in %s replaces an earlier one with the same settings",
                    name,
                    key,
                    target.source,
                    m.source,
                )
            known.update(results)
        target.merged.append(m)
        log.info("evaluation %s added to run %s", m.source, target.source)
    return kept


# What marks a folder as a run's, with or without results; a folder with only ``.hydra/`` is a run's when the command
# that wrote it writes a metrics.json (not a report's or an inspector's folder).
RUN_FILES = ("metrics.json", ERROR, CHECKPOINT, STATUS)
COMMANDS_WITH_RESULTS = ("train", "evaluate", "analyze")


def _matches(pattern: str) -> list[Path]:
    """What ``runs=<pattern>`` names: the path itself where it exists (a folder may be called ``r[ab]``), else the
    glob's matches, sorted."""
    path = Path(pattern).expanduser()
    if path.exists() or path.is_symlink():
        return [path]
    return sorted(map(Path, glob.glob(str(path))))


def check_runs(patterns: list[str]) -> None:
    """RRXError naming the first of ``patterns`` (``runs=``) that names no folder or file: checked before the report
    claims its own folder, so a mistyped ``runs=`` leaves nothing behind."""
    for pattern in patterns:
        if not _matches(pattern):
            raise RRXError(f"runs={pattern}: no such folder or file")


def _run_folders(match: Path) -> dict[Path, tuple[Path, Path | None]]:
    """The run folders ``match`` names, by resolved path: {folder: (folder as found, the metrics file named)}.

    A file names its folder and itself; a folder names every folder below it (itself included) that holds one of
    ``RUN_FILES`` or a ``.hydra/hydra.yaml``, with its ``metrics.json`` where it has one.
    """
    if not match.is_dir():
        return {match.parent.resolve(): (match.parent, match)}
    found: dict[Path, tuple[Path, Path | None]] = {}
    for name in (*RUN_FILES, ".hydra/hydra.yaml"):  # metrics.json first
        for path in match.rglob(name):
            folder = path.parent.parent if name.startswith(".hydra/") else path.parent
            found.setdefault(folder.resolve(), (folder, path if name == "metrics.json" else None))
    return found


def _unfinished_reason(folder: Path) -> str | None:
    """Why the run folder ``folder``, which has no metrics.json, has no results; None where it is no run's folder."""
    error = folder / ERROR
    status = read_status(folder)
    if error.is_file():
        lines = error.read_text().strip().splitlines()
        return f"failed: {lines[-1] if lines else 'error.txt is empty'}"
    if status is not None and status.get("reason"):
        return f"unfinished, {status['state']} after epoch {status['epoch']} of {status['epochs']}: {status['reason']}"
    if status is not None:
        return (
            f"unfinished ({status['state']}; epoch {status['epoch']} of {status['epochs']} saved; "
            "killed, or still running): resume it with the same command"
        )
    if (folder / CHECKPOINT).is_file():
        return "no metrics.json (unfinished or stopped run)"
    command = command_of(folder)  # None: not a run's folder
    if command in COMMANDS_WITH_RESULTS:
        return f"unfinished rrx {command}: no metrics.json (killed, failed or still running; see its log)"
    return None


def _warn_named_twice(path: Path, first: Path) -> None:
    named = f"{path} is named twice" if path == first else f"{path} is the same folder as {first}"
    log.warning("runs: %s: counted once", named)


def _add_once(known: dict[Path, tuple[Path, Path | None]], found: dict[Path, tuple[Path, Path | None]]) -> None:
    """Add the run folders ``found`` to ``known``; one that is known already (named twice, in the same or another
    spelling, or through a symlink) is logged and counted once."""
    for key, (folder, file) in found.items():
        if key in known:
            _warn_named_twice(folder, known[key][0])
        else:
            known[key] = (folder, file)


def find_metrics(patterns: list[str]) -> Runs:
    """Every readable ``metrics.json`` under the given folders or globs, in path order.

    A pattern that exists as a path is that path; others are globs. A run folder is known by its resolved path: one
    named twice (``runs=[a,/abs/a]``, a symlink and its folder, a folder and a folder inside it) counts once, with a
    warning. Files that cannot be read or lack results are skipped with the reason, and so are run folders without
    a ``metrics.json``: failed jobs (``error.txt``), unfinished or stopped training runs (the state, epoch and reason
    from their ``status.json``, or a checkpoint), killed evaluations and analyses (a ``.hydra/`` but no results);
    also evaluations of unfinished checkpoints and second ``metrics-N.json`` files.
    Evaluations are merged into their training runs (``merge_evaluations``).
    """
    named: dict[Path, Path] = {}  # resolved path -> as first named
    folders: dict[Path, tuple[Path, Path | None]] = {}
    sweeps: dict[Path, Path] = {}
    extra: dict[Path, Path] = {}
    for pattern in patterns:
        matches = _matches(pattern)
        if not matches:
            raise RRXError(f"runs={pattern}: no such folder or file")
        for match in matches:
            key = match.resolve()
            if key in named:
                _warn_named_twice(match, named[key])
                continue
            named[key] = match
            _add_once(folders, _run_folders(match))
            if match.is_dir():
                for path in match.rglob("metrics*.json"):
                    if path.name != "metrics.json":
                        extra.setdefault(path.resolve(), path)
                for path in match.rglob("multirun.yaml"):
                    sweeps.setdefault(path.resolve(), path)
    runs = Runs([])
    for file in sorted(extra.values()):  # earlier rrx let a second run write metrics-1.json into a run folder
        _skip(
            runs,
            file,
            "a second metrics file in one run folder (two runs shared it; its checkpoint and config "
            "belong to one of them only): not used",
        )
    for file in sorted(sweeps.values()):
        try:
            runs.sweeps.append(sweep_command(file))
        except Exception as err:  # an old or edited multirun.yaml only loses the provenance line
            log.warning("%s: cannot read the sweep's command (%s)", file, err)
    files = []
    for folder, metrics_file in sorted(folders.values(), key=lambda found: found[0]):
        if metrics_file is not None:
            files.append(metrics_file)
            continue
        reason = _unfinished_reason(folder)
        if reason is not None:
            _skip(runs, folder, reason)
    for file in sorted(files):
        try:
            record = Record.read(file)
        except RRXError as err:
            _skip(runs, file, str(err).removeprefix(f"{file}: "))
            continue
        state = record.checkpoint_state or {}
        if record.evaluated_unfinished:
            _skip(
                runs,
                file,
                f"evaluation of an unfinished checkpoint (epoch {state['epoch']} of {state['epochs']}): "
                "not counted as a finished run",
            )
            continue
        predictions = read_predictions(file.parent)
        wrong = None if predictions is None else disagreement(record.challenges, predictions)
        if wrong:
            _skip(runs, file, f"its per-image predictions do not give its accuracies ({wrong}): edited or mixed up")
            continue
        record.source = str(file.parent)
        record.checkpoint_path = _checkpoint_of(record, file.parent)
        runs.finished.append(record)
    if not runs.finished:
        raise RRXError(f"runs={','.join(patterns)}: no finished runs (no readable metrics.json) found")
    runs.finished = label_config_differences(merge_evaluations(runs.finished))
    return runs


# Keys that may differ between runs of one row: the seed (rows are means over seeds), lambda (labelled on its own),
# and what does not change the result (checkpoint.SAME_RUN_IGNORES).
NOT_A_DIFFERENCE = tuple(
    f"{prefix}{key}"
    for prefix in ("", "train.")
    for key in ("seed", "method.lam", "grid_lam", "lambda_index", "lambda_grid", *SAME_RUN_IGNORES)
)


def _flat(node: object, prefix: str = "") -> dict:
    if not isinstance(node, dict):
        return {prefix: node}
    flat: dict = {}
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


def _values(group: list[Record], configs: dict, key: str) -> set[str]:
    values = {repr(configs[id(m)].get(key)) for m in group}
    if key == "dataset.variant":  # Decoy MNIST without a decoy has a Table 10 column of its own
        values.discard(repr("none"))
    return values


def label_config_differences(runs: list[Record]) -> list[Record]:
    """Runs that share a table row's name (dataset, architecture, method) but not their config, beyond the seed and
    lambda, get the differing keys added to their Method, e.g. ``Standard + RRDA [method.fill=tile,
    method.pairing=alg3]``, so that the report never averages different configurations as if they were seeds."""
    configs: dict[int, dict] = {}  # id(record) -> its config, for the records read from a folder that has one
    groups: dict[tuple, list[Record]] = {}
    for m in runs:
        config = None if m.source is None else run_config(Path(m.source))
        if config is not None:
            configs[id(m)] = config
            groups.setdefault((m.run.get("dataset"), m.run.get("architecture"), m.run.get("method")), []).append(m)
    labelled = {}
    for group in groups.values():
        keys = sorted({k for m in group for k in configs[id(m)]} - set(NOT_A_DIFFERENCE))
        keys = [
            k
            for k in keys
            if not k.startswith(("lambda_grid.", "train.lambda_grid.", "logger.", "train.logger."))
            and len(_values(group, configs, k)) > 1
        ]
        if not keys:
            continue
        log.info("runs named %s differ in %s: told apart in the tables", group[0].run["method"], ", ".join(keys))
        for m in group:
            suffix = ", ".join(f"{k}={configs[id(m)].get(k)}" for k in keys)
            labelled[id(m)] = replace(m, run={**m.run, "method": f"{m.run['method']} [{suffix}]"})
    return [labelled.get(id(m), m) for m in runs]
