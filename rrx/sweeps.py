"""A sweep (``rrx <command> -m ...``) as its user sees it: every failed job named on the console and in the exit
status, and jobs that end with the command that launched them.

Hydra's sweeper keeps going past a failed job (``rrx.cli`` returns a ``JobFailed`` for it) and discards the jobs'
results; a submitit launcher (``hydra/launcher=local_parallel`` or ``slurm``) runs each job in another process,
with its log in a file. ``SweepCallback``, a Hydra callback that ``rrx.cli`` adds to every sweep, therefore has
each job write its outcome into the sweep folder (``.rrx-sweep/<launch>/<job>.json``) and the launcher read them
when the sweep ends: one line per failed job on stderr, then a summary, and a non-zero exit when a job failed.

A ``local_parallel`` job also ends with its launcher, however that ended (Ctrl-C, SIGTERM, SIGKILL): it stops
as Ctrl-C stops a run (``status.json`` says stopped, the folder is resumable). Ctrl-C reaches every process of
the sweep. The launcher's main thread keeps SIGINT blocked during the sweep, so that the job controllers that
submitit starts (which rrx cannot configure) inherit it blocked and do not die with a traceback on the console;
a thread of the launcher takes its SIGINT instead, and each job unblocks it.
"""

from __future__ import annotations

import _thread
import contextlib
import functools
import json
import logging
import os
import select
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import hydra
from hydra.core.utils import JobReturn
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from rrx.errors import one_line_reason
from rrx.outputs import unique_suffix, write_json
from rrx.signals import stop_on_signals

log = logging.getLogger(__name__)
OUTCOMES = ".rrx-sweep"  # in the sweep folder: one folder per launch, one <job num>.json per job
LOCAL_LAUNCHER = (
    "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"  # hydra/launcher=local_parallel
)
STOP_GRACE_S = 1.0  # a job waits this long after its launcher ended before it stops (on Ctrl-C it stops by itself)
KILL_AFTER_S = 30.0  # and is killed if it is still running this long after it was told to stop
OVERRIDE = f"++hydra.callbacks.rrx_sweep._target_={__name__}.SweepCallback"  # what rrx.cli adds to a sweep's command
TaskFunction = Callable[[DictConfig], Any]  # an rrx command's body: its config -> what the job returns


def app(config_name: str) -> Callable[[TaskFunction], Callable[..., Any]]:
    """``@hydra.main`` for the rrx command of config ``config_name``; as a sweep (``-m``) it runs with
    ``SweepCallback``, and SIGINT or SIGTERM stop it (``rrx.signals.Stopped``) also between jobs."""

    def decorate(task: TaskFunction) -> Callable[..., Any]:
        main = hydra.main(version_base="1.3", config_path="pkg://rrx.conf", config_name=config_name)(task)

        @functools.wraps(task)
        def command(cfg_passthrough: DictConfig | None = None) -> Any:
            if cfg_passthrough is not None or not is_sweep(sys.argv[1:]):
                return main(cfg_passthrough)
            sys.argv = with_override(sys.argv, OVERRIDE)
            with stop_on_signals():
                return main()

        return command

    return decorate


def is_sweep(args: list[str]) -> bool:
    """Whether the command line ``args`` runs a Hydra multirun."""
    return any(a in ("-m", "--multirun", "hydra.mode=MULTIRUN") for a in args)


def with_override(argv: list[str], override: str) -> list[str]:
    """``argv`` with ``override`` after its last override: Hydra's parser takes the overrides in one run of
    arguments (``rrx train -m seed=0,1 --cfg hydra`` may not end in one)."""
    from hydra._internal.utils import get_args_parser

    given = get_args_parser().parse_args(argv[1:]).overrides
    at = max(i for i, arg in enumerate(argv) if arg == given[-1]) + 1 if given else len(argv)
    return [*argv[:at], override, *argv[at:]]


@dataclass(frozen=True)
class JobFailed:
    """What a sweep job returns when it failed (``rrx.cli._run``): the one-line reason; the traceback is in the job
    folder's ``error.txt``."""

    reason: str


class SweepCallback(Callback):
    """Hydra calls ``on_multirun_*`` in the launcher, ``on_job_*`` where the job runs: in the launcher with Hydra's
    basic launcher, in the job's own process with submitit (which carries this object there, pickled with the
    launcher, so ``launcher_pid`` and ``outcomes`` are the launcher's)."""

    def __init__(self) -> None:
        self.launcher_pid: int | None = None
        self.outcomes: Path | None = None
        self.blocked_sigint = False

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.launcher_pid = os.getpid()
        self.outcomes = Path(str(config.hydra.sweep.dir)).absolute() / OUTCOMES / f"{os.getpid()}-{unique_suffix()}"
        self.outcomes.mkdir(parents=True)
        if (
            config.hydra.launcher.get("_target_") == LOCAL_LAUNCHER
            and threading.current_thread() is threading.main_thread()
        ):
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
            threading.Thread(target=_forward_sigint, name="rrx-sigint", daemon=True).start()
            self.blocked_sigint = True

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if (
            self.launcher_pid is None
            or os.getpid() == self.launcher_pid
            or os.environ.get("SUBMITIT_EXECUTOR") != "local"
        ):
            return  # a job of Hydra's basic launcher, or a SLURM job (which outlives its launcher by design)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        end_with(self.launcher_pid)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if self.outcomes is None:
            return
        try:
            value = job_return.return_value
            failed = value.reason if isinstance(value, JobFailed) else None
        except Exception as err:  # an exception that escaped rrx.cli._run
            failed = f"{type(err).__name__}: {one_line_reason(err)}"
        num = int(config.hydra.job.num)
        write_json(
            self.outcomes / f"{num}.json",
            {"num": num, "folder": Path(str(config.hydra.runtime.output_dir)).name, "failed": failed},
        )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.blocked_sigint:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        if self.outcomes is None:
            return
        outcomes = read_outcomes(self.outcomes)
        shutil.rmtree(self.outcomes, ignore_errors=True)
        with contextlib.suppress(OSError):  # another launch's outcomes are still there
            self.outcomes.parent.rmdir()
        summary = summarise(outcomes, Path(str(config.hydra.sweep.dir)))
        if summary is not None:
            raise SystemExit(summary)


def read_outcomes(folder: Path) -> list[dict]:
    """The outcomes the jobs of one launch wrote, in job order."""
    return sorted((json.loads(path.read_text()) for path in folder.glob("*.json")), key=lambda o: o["num"])


def summarise(outcomes: list[dict], sweep_dir: Path) -> str | None:
    """Print one line per failed job on stderr; return the summary line (the command's error) when any failed."""
    failed = [o for o in outcomes if o["failed"] is not None]
    if not failed:
        return None
    for outcome in failed:
        print(f"rrx: job {outcome['folder']} failed: {outcome['failed']}", file=sys.stderr)
    names = ", ".join(o["folder"] for o in failed)
    return (
        f"rrx: error: {len(outcomes) - len(failed)} of {len(outcomes)} jobs finished; failed: {names} (in {sweep_dir})"
    )


def _forward_sigint() -> None:
    """The launcher's SIGINT, blocked in its other threads, raised in its main thread as if it had arrived there."""
    while True:
        signal.sigwait({signal.SIGINT})
        _thread.interrupt_main(signal.SIGINT)


def end_with(pid: int) -> None:
    """Stop this process with SIGINT (as Ctrl-C stops a run) ``STOP_GRACE_S`` after process ``pid`` has ended, and
    kill it if it is still running ``KILL_AFTER_S`` later; watched from a daemon thread."""

    def watch() -> None:
        wait_until_ended(pid)
        log.error("the sweep's launcher (pid %d) has ended: stopping this job", pid)
        time.sleep(STOP_GRACE_S)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(KILL_AFTER_S)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="rrx-launcher-watch", daemon=True).start()


def wait_until_ended(pid: int) -> None:
    """Return once process ``pid`` has ended: at once through a pidfd (Linux 5.3+), else within half a second."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    except (AttributeError, OSError):  # no pidfd here
        while _alive(pid):
            time.sleep(0.5)
        return
    try:
        select.select([fd], [], [])  # readable once the process has ended
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True
