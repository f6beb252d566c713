"""A sweep as its user sees it (``rrx.sweeps``): a failed job is named on the console and fails the command, with
Hydra's basic launcher and with ``hydra/launcher=local_parallel``; a ``local_parallel`` sweep's jobs end with their
launcher (Ctrl-C, SIGKILL), stopped and resumable; a relaunch over jobs that still hold their folders fails."""

import os
import signal
import subprocess
import threading
import time

import pytest
from conftest import TINY
from fixtures.runner import REPO, RRX, rrx

from rrx import sweeps
from rrx.errors import RRXError
from rrx.outputs import RunFolder, read_status

LOCAL = ["hydra/launcher=local_parallel", "hydra.launcher.gpus_per_node=0"]
BAD_SCHEDULER = "trainer.scheduler=linear; known: cosine, none"  # refused inside the job, by rrx.train


def _jobs(sweep):
    """The sweep's job folders, in job order."""
    return sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))


def _assert_failed(result, sweep, reasons: dict[int, str]):
    """``result`` failed with one line per failed job (number: reason) and the summary line last; no traceback."""
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    jobs = _jobs(sweep)
    lines = result.stderr.strip().splitlines()
    for num, reason in reasons.items():
        assert f"rrx: job {jobs[num].name} failed: {reason}" in lines, result.stderr
    names = ", ".join(jobs[num].name for num in reasons)
    assert (
        lines[-1]
        == f"rrx: error: {len(jobs) - len(reasons)} of {len(jobs)} jobs finished; failed: {names} (in {sweep})"
    )


@pytest.mark.slow
def test_failed_jobs_of_train_and_analyze_sweeps_are_named_and_fail_the_command(cache_dir, tmp_path):
    sweep = tmp_path / "train"
    result = rrx(
        "train",
        "-m",
        *TINY,
        f"dataset.cache_dir={cache_dir}",
        "trainer.scheduler=none,linear",
        f"hydra.sweep.dir={sweep}",
        check=False,
    )
    _assert_failed(result, sweep, {1: BAD_SCHEDULER})
    good, failed = _jobs(sweep)
    assert (good / "metrics.json").is_file() and "RRXError" in (failed / "error.txt").read_text()
    assert not (sweep / ".rrx-sweep").exists()  # the jobs' outcomes are read and removed

    sweep, missing = tmp_path / "analyze", tmp_path / "missing"  # evaluate -m goes the same way (rrx.cli._run)
    result = rrx(
        "analyze",
        "-m",
        "analysis=localisation",
        "analysis.attribution=[saliency]",
        "analysis.max_images=9",
        f"checkpoint={good},{missing}",
        "trainer.progress=false",
        f"hydra.sweep.dir={sweep}",
        check=False,
    )
    _assert_failed(
        result,
        sweep,
        {1: f"checkpoint={missing}: {missing} does not exist (give a run folder with checkpoint.pt, or a .pt file)"},
    )
    assert (_jobs(sweep)[0] / "metrics.json").is_file()


def test_a_local_parallel_job_that_failed_is_named_on_the_launchers_console(cache_dir, tmp_path):
    sweep = tmp_path / "sweep"
    result = rrx(
        "train",
        "-m",
        *TINY,
        f"dataset.cache_dir={cache_dir}",
        "trainer.scheduler=none,linear",
        *LOCAL,
        f"hydra.sweep.dir={sweep}",
        check=False,
    )
    _assert_failed(result, sweep, {1: BAD_SCHEDULER})
    assert (_jobs(sweep)[0] / "metrics.json").is_file()


def _held(folder) -> bool:
    """Whether a live process holds ``folder``'s lock."""
    try:
        RunFolder(folder).release()
    except RRXError:
        return True
    return False


def _start_training(cache_dir, sweep):
    """A local_parallel sweep of two jobs that train until stopped, in a session of its own (as if started in a
    terminal), once both jobs train; and the jobs' folders."""
    long = [*(o for o in TINY if not o.startswith("trainer.epochs")), "trainer.epochs=10000"]
    proc = subprocess.Popen(
        [*RRX, "train", "-m", *long, f"dataset.cache_dir={cache_dir}", "seed=0,1", *LOCAL, f"hydra.sweep.dir={sweep}"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        jobs = _jobs(sweep) if sweep.is_dir() else []
        if len(jobs) == 2 and all((read_status(j) or {}).get("state") == "running" for j in jobs):
            return proc, jobs
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"the jobs did not start: {proc.communicate()[1]}")


def _seconds_until_free(jobs, limit: float) -> float:
    start = time.monotonic()
    while any(_held(j) for j in jobs):
        assert time.monotonic() - start < limit, [read_status(j) for j in jobs]
        time.sleep(0.05)
    return time.monotonic() - start


@pytest.mark.slow
def test_jobs_end_with_their_killed_launcher_and_a_relaunch_over_live_jobs_fails(cache_dir, tmp_path):
    sweep = tmp_path / "sweep"
    proc, jobs = _start_training(cache_dir, sweep)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _seconds_until_free(jobs, 10) < 10  # about 1.2 s on 2 CPU cores
    for job in jobs:
        status = read_status(job)
        assert status["state"] == "stopped" and "run the same command again to resume" in status["reason"], status

    held = [RunFolder(job) for job in jobs]  # what jobs of the killed launch that still ran would hold
    try:
        result = rrx(
            "train",
            "-m",
            *(o for o in TINY if not o.startswith("trainer.epochs")),
            "trainer.epochs=10000",
            f"dataset.cache_dir={cache_dir}",
            "seed=0,1",
            *LOCAL,
            f"hydra.sweep.dir={sweep}",
            check=False,
        )
    finally:
        for lock in held:
            lock.release()
    host = os.uname().nodename
    _assert_failed(
        result,
        sweep,
        {
            n: f"{job} is in use by pid {os.getpid()} on {host}; give another hydra.run.dir"
            for n, job in enumerate(jobs)
        },
    )
    assert not any((job / "error.txt").exists() for job in jobs)  # nothing written into the folders others hold


@pytest.mark.slow
def test_ctrl_c_stops_a_local_parallel_sweep_at_once_with_one_line(cache_dir, tmp_path):
    proc, jobs = _start_training(cache_dir, tmp_path / "sweep")
    start = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends on Ctrl-C: to every process of the sweep
    _, stderr = proc.communicate(timeout=60)
    assert time.monotonic() - start < 5  # about 1.7 s on 2 CPU cores
    assert proc.returncode == 1
    assert stderr.strip().splitlines() == [
        "rrx: error: stopped by SIGINT; the run folder is resumable: run the same command again"
    ]
    assert _seconds_until_free(jobs, 10) < 10
    for job in jobs:
        status = read_status(job)
        assert status["state"] == "stopped" and status["reason"].startswith("stopped by SIGINT"), status


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "polled"])
def test_a_job_learns_at_once_that_its_launcher_has_ended(monkeypatch, pidfd):
    if not pidfd:
        monkeypatch.delattr(os, "pidfd_open", raising=False)
    launcher = subprocess.Popen(["sleep", "0.3"])
    threading.Thread(target=launcher.wait).start()  # reaped, as a shell reaps it
    start = time.monotonic()
    sweeps.wait_until_ended(launcher.pid)
    assert 0.25 < time.monotonic() - start < 1.5
