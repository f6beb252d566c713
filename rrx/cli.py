"""The ``rrx`` command: one Hydra app per subcommand (train, evaluate, analyze, report, inspect, export)."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from rrx.config import param
from rrx.errors import RRXError, one_line_reason
from rrx.outputs import ERROR, RunFolder, claim_new_folder, log_to_files, record_hydra_config, write_text
from rrx.signals import Stopped
from rrx.sweeps import JobFailed, app

log = logging.getLogger("rrx")
FOLDER_NAME_MAX = 200  # sweep job folders: a file name may have 255 bytes


def folder_name(overrides: str) -> str:
    """``overrides`` (a job's override_dirname) as one folder: a path's ``/`` (``mask.checkpoint=<run>``) as ``+``,
    so that the job folder is never nested in folders named after the path's parts; cut to FOLDER_NAME_MAX
    characters with a hash of the whole when longer, so each job keeps a distinct, valid folder name."""
    overrides = overrides.replace("/", "+")
    if len(overrides) <= FOLDER_NAME_MAX:
        return overrides
    return f"{overrides[: FOLDER_NAME_MAX - 9]}_{hashlib.sha1(overrides.encode()).hexdigest()[:8]}"


OmegaConf.register_new_resolver("rrx_folder_name", folder_name, replace=True)

USAGE = """usage: rrx <command> [hydra overrides...]

commands:
  train      train one model (or a sweep with -m) and evaluate it on the configured challenge
  evaluate   evaluate a checkpoint: rrx evaluate checkpoint=<run folder or .pt> challenge=mixed_rand
  analyze    read a model: rrx analyze analysis=focus checkpoint=<run>   (localisation, obey, focus, u_analysis, ipha)
  report     tables from finished runs: rrx report runs=<folder or glob>
  inspect    the Model Inspector web app: rrx inspect checkpoint=<run>   (http://127.0.0.1:8501)
  export     a checkpoint for other tools: rrx export checkpoint=<run> format=madry|state_dict

examples:
  rrx train method=rrda
  rrx train -m method=standard,rrda seed=0,1
  rrx train --cfg job                 # print the composed config
  rrx train method=rrr --help         # config groups, and the keys of the chosen components
  rrx train --hydra-help              # Hydra's own options

config groups: model, dataset, method, challenge, attack (see `rrx train --help`), analysis (`rrx analyze --help`)."""
COMMAND_GROUPS = {  # the config groups each command composes, in the order --help lists them
    "train": ["task", "model", "dataset", "method", "mask", "challenge", "attack", "optimizer", "logger", "experiment"],
    "evaluate": ["model", "dataset", "challenge", "attack", "logger"],
    "analyze": ["model", "dataset", "analysis", "logger"],
    "inspect": ["model", "dataset"],
    "report": [],
    "export": [],
}


@dataclass
class _Seeded:
    seed: int = param(0, "the seed of initialisation, data split and batch order (training) or of sampling")


@dataclass
class _OfCheckpoint(_Seeded):
    checkpoint: str | None = param(
        None, "a run folder or its checkpoint.pt (null: the off-the-shelf model of model=<name>)"
    )


@dataclass
class _ReportKeys:
    runs: Any = param(MISSING, "the finished runs: a folder, a glob, or a list [a,b] of them")
    select_by: str = param(
        "val_accuracy",
        "the best lambda of a sweep by held-out training images: val_accuracy or val_mixed_rand; a test "
        "variation (mixed_rand, ...) is marked as chosen on the test set",
    )


@dataclass
class _ExportKeys:
    checkpoint: str = param(MISSING, "the run folder or checkpoint.pt to export")
    format: str = param(
        "madry",
        "madry: the file MadryLab's in9_eval.py and challenge_eval.py load; state_dict: the plain torchvision or "
        "timm state dict (export.json beside it says how to load it)",
        choices=["madry", "state_dict"],
    )


COMMAND_KEYS = {  # each command's own top-level keys, for --help
    "train": _Seeded,
    "evaluate": _OfCheckpoint,
    "analyze": _OfCheckpoint,
    "inspect": _OfCheckpoint,
    "report": _ReportKeys,
    "export": _ExportKeys,
}


def command_help(command: str, overrides: list[str]) -> str:
    """``rrx <command> [overrides] --help``: the config groups with their options, then every key of the chosen
    components and blocks (type, default, range or choices, meaning), from their typed configs (``rrx.config``)."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from rrx.config import describe

    with initialize_config_module("rrx.conf", version_base="1.3"):
        cfg = compose(command, overrides=overrides)
        loader = GlobalHydra.instance().config_loader()
        groups = [f"  {group}: {', '.join(loader.get_group_options(group))}" for group in COMMAND_GROUPS[command]]
    head = f"usage: rrx {command} [key=value ...] [group=option ...] [-m for a sweep]"
    lines = [head, "", "config groups (group=option):", *groups, "", "keys (key=value) of this configuration:"]
    return "\n".join([*lines, describe(cfg, top=COMMAND_KEYS[command])])


def config_error(err: BaseException) -> str | None:
    """One line for an error Hydra or OmegaConf raised about the command line's config, else None."""
    from rrx.config import explain

    return explain(err)


def one_line(err: RRXError) -> str:
    """The message itself, also when a DataLoader worker re-raised it with its traceback prepended."""
    return str(err).strip().splitlines()[-1].removeprefix(f"{RRXError.__module__}.{RRXError.__name__}: ")


def _run(task, cfg: DictConfig):
    """Run ``task(cfg, output_dir)``; bad input ends a single run with one line. A sweep job that fails logs
    why, writes its traceback to ``error.txt`` in its folder and returns ``JobFailed``: the sweep goes on, and
    names it when it ends (``rrx.sweeps``).

    A SIGTERM/SIGINT (``Stopped``) is no job failure: it ends the whole command, single run or sweep.
    """
    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        return task(cfg, out_dir)
    except Exception as err:
        if isinstance(err, MissingMandatoryValue):
            key = err.full_key
            err = RRXError(f"{key} is not set: give {key}=<value> (see rrx {hydra_cfg.job.name} --help)")
        if not multirun:
            if isinstance(err, RRXError):
                log_to_files(f"rrx: error: {one_line(err)}")  # the console gets it as its last line
                raise SystemExit(f"rrx: error: {one_line(err)}") from None
            raise
        # One failing job of a sweep is recorded and does not stop the others.
        reason = one_line(err) if isinstance(err, RRXError) else f"{type(err).__name__}: {one_line_reason(err)}"
        log.error("job %s failed: %s", hydra_cfg.job.num, reason)
        # Not into a folder another process holds (a live job that the sweep was relaunched over), nor where it
        # cannot be written: the sweep names the job and its reason either way.
        with contextlib.suppress(RRXError), RunFolder(out_dir):
            write_text(out_dir / ERROR, traceback.format_exc())
        return JobFailed(reason)


@app("train")
def train_app(cfg: DictConfig):
    from rrx.experiments import apply_experiment, grid_has_no_lambda
    from rrx.train import train

    if grid_has_no_lambda(cfg) and HydraConfig.get().mode == RunMode.MULTIRUN:
        # experiment presets sweep lambda_index over lists of different lengths (thesis_grid.yaml)
        log.info("job %s skipped: %s", HydraConfig.get().job.num, grid_has_no_lambda(cfg))
        return None
    overrides = list(HydraConfig.get().overrides.task)
    metrics = _run(lambda c, out: train(apply_experiment(c, overrides), out), cfg)
    return (
        metrics
        if metrics is None or isinstance(metrics, JobFailed)
        else metrics.challenges.get("accuracy", {}).get("original")
    )


@app("evaluate")
def evaluate_app(cfg: DictConfig):
    from rrx.evaluate import evaluate

    return _run(lambda c, out: evaluate(c, out, _dataset_choice()), cfg)


IMPLIED = "RRX_DATASET_OF_CHECKPOINT"  # set when main() composed a checkpoint's command with its own dataset's config


def _dataset_choice():
    """What the command line said of the dataset (``rrx.subject.DatasetChoice``): ``dataset=<name>`` chooses another
    dataset; ``dataset.<key>=`` changes that key of a checkpoint's own dataset."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from rrx.subject import DatasetChoice

    parsed = OverridesParser.create().parse_overrides(list(HydraConfig.get().overrides.task))
    names = [o.key_or_group for o in parsed]
    implied = os.environ.get(IMPLIED) is not None
    return DatasetChoice(
        group="dataset" in names and not implied,
        keys=tuple(dict.fromkeys(n.removeprefix("dataset.") for n in names if n.startswith("dataset."))),
    )


def with_checkpoint_dataset(command: str, args: list[str]) -> list[str]:
    """``args`` of ``rrx evaluate|analyze|inspect checkpoint=<run> dataset.<key>=...`` without ``dataset=``: with
    ``dataset=<the checkpoint's dataset>`` added, so the keys are composed against that dataset's typed config (a key
    it has but the default dataset lacks, e.g. ``dataset.meta_dir``, is accepted). ``$RRX_DATASET_OF_CHECKPOINT``
    marks the choice as implied: the checkpoint's own dataset config is still the one used, with those keys."""
    if command not in ("evaluate", "analyze", "inspect") or any(a.startswith("dataset=") for a in args):
        return args
    given = [a.split("=", 1)[1] for a in args if a.startswith("checkpoint=")]
    if len(given) != 1 or "," in given[0] or not any(a.startswith("dataset.") for a in args):
        return args
    from rrx.checkpoint import load_checkpoint

    try:
        name = load_checkpoint(given[0], unpickle_older=False, segmentation=True)[0]["config"]["dataset"]["name"]
    except (RRXError, KeyError, TypeError):
        return args  # the command itself names what is wrong with the checkpoint
    os.environ[IMPLIED] = name
    at = next(i for i, a in enumerate(args) if a.startswith("checkpoint=")) + 1  # among the overrides, not after --cfg
    return [*args[:at], f"dataset={name}", *args[at:]]


@app("analyze")
def analyze_app(cfg: DictConfig):
    from rrx.analyze import analyze

    return _run(lambda c, out: analyze(c, out, _dataset_choice()), cfg)


@app("report")
def report_app(cfg: DictConfig):
    from rrx.report.collect import check_runs
    from rrx.report.report import report

    overrides = HydraConfig.get().overrides
    command = " ".join(["rrx report", *overrides.task, *(o for o in overrides.hydra if o.startswith("hydra.run.dir="))])

    def task(c: DictConfig, out: Path):
        runs = [c.runs] if isinstance(c.runs, str) else list(c.runs)
        check_runs(runs)
        with claim_new_folder(out, "report"):
            record_hydra_config(out, c)
            return report(runs, out, c.select_by, command)

    tables = _run(task, cfg)
    if isinstance(tables, JobFailed):
        return tables
    for title, table in (tables or {}).items():
        print(f"\n{title}\n{table}")


@app("export")
def export_app(cfg: DictConfig):
    from rrx.export import export

    return _run(export, cfg)


@app("inspect")
def inspect_app(cfg: DictConfig):
    from rrx.inspector.server import inspect

    return _run(lambda c, out: inspect(c, out, _dataset_choice()), cfg)


COMMANDS = {
    "train": train_app,
    "evaluate": evaluate_app,
    "analyze": analyze_app,
    "report": report_app,
    "inspect": inspect_app,
    "export": export_app,
}
SUBMITIT_LAUNCHERS = ("slurm", "local_parallel")  # conf/hydra/launcher/, built on hydra-submitit-launcher


def check_launcher(args: list[str]) -> None:
    """Exit with one line when a submitit launcher is asked for and its plugin is not installed
    (Hydra would only say that the plugin's base config is missing)."""
    asked = [a for a in args if a in {f"hydra/launcher={name}" for name in SUBMITIT_LAUNCHERS}]
    if asked and importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None:
        sys.exit(f"rrx: error: {asked[0]} needs hydra-submitit-launcher: pip install 'rrx[cluster]'")


def main() -> None:
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return
    command = args[0]
    if command not in COMMANDS:
        sys.exit(f"rrx: unknown command {command!r}; known: {', '.join(COMMANDS)}\n\n{USAGE}")
    check_launcher(args[1:])
    if "--help" in args[1:] or "-h" in args[1:]:
        try:
            print(command_help(command, [a for a in args[1:] if a not in ("--help", "-h")]))
        except Exception as err:
            message = config_error(err) if not isinstance(err, RRXError) else str(err)
            if message is None:
                raise
            sys.exit(f"rrx: error: {message}")
        return
    sys.argv = [f"rrx {command}", *with_checkpoint_dataset(command, args[1:])]
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")  # Hydra raises its config errors: one line below, not its report
    from rrx.outputs import leave_no_trace_if_refused

    try:
        with leave_no_trace_if_refused(args[1:]):
            COMMANDS[command]()
    except RRXError as err:  # the hydra.run.dir given cannot be created
        sys.exit(f"rrx: error: {err}")
    except Stopped as stop:  # the run wrote its reason and stays resumable
        sys.exit(f"rrx: error: {stop}; the run folder is resumable: run the same command again")
    except KeyboardInterrupt:  # Ctrl-C outside a training run (evaluate, analyze, report)
        sys.exit("rrx: error: stopped by SIGINT")
    except Exception as err:  # a key the chosen component does not have, a value of the wrong type, ...
        message = config_error(err)
        if message is None:
            raise
        sys.exit(f"rrx: error: {message}")


if __name__ == "__main__":
    main()
