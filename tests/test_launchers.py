"""Sweeps through hydra-submitit-launcher: ``hydra/launcher=local_parallel`` on this machine, ``hydra/launcher=slurm``
against stand-in ``sbatch``/``srun`` commands, and a job that a cluster preempts or times out, requeued by submitit,
that resumes to the numbers of an uninterrupted run."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime

import pytest
from conftest import TINY
from fixtures.runner import REPO, RRX, rrx

from rrx import cli
from rrx.signals import Stopped, stop_on_signals

# The requeue test's runs: long enough that a signal sent as the first checkpoint appears reaches the job before its
# last epoch ends (about 1 s an epoch on 2 CPU cores); on the CPU (no GPU given to the jobs), where runs repeat exactly.
EPOCHS = 5
SWEEP = [
    *(o for o in TINY if not o.startswith(("trainer.epochs", "dataset.train_per_class"))),
    "dataset.train_per_class=64",
    f"trainer.epochs={EPOCHS}",
    "seed=0,1",
    "hydra/launcher=local_parallel",
    "hydra.launcher.gpus_per_node=0",
]


def _jobs(sweep):
    """The sweep's job folders, in job order."""
    return sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))


def _metrics(job):
    return json.loads((job / "metrics.json").read_text())


def _submitit_span(log: str) -> tuple[datetime, datetime]:
    """When submitit started a job and when the job completed, from its log."""
    stamps = {
        event: stamp for stamp, event in re.findall(r"^submitit INFO \((.+?)\) - (Starting|Job completed)", log, re.M)
    }
    return tuple(datetime.strptime(stamps[event], "%Y-%m-%d %H:%M:%S,%f") for event in ("Starting", "Job completed"))


@pytest.mark.slow
def test_local_parallel_runs_the_jobs_at_once_and_report_reads_them(cache_dir, tmp_path):
    sweep = tmp_path / "sweep"
    rrx(
        "train",
        "-m",
        *TINY,
        f"dataset.cache_dir={cache_dir}",
        "seed=0,1",
        "hydra/launcher=local_parallel",
        f"hydra.sweep.dir={sweep}",
    )
    assert [_metrics(job)["run"]["seed"] for job in _jobs(sweep)] == [0, 1]
    logs = sorted((sweep / ".submitit").glob("*/*_0_log.out"))  # submitit's folder is under the sweep's, one per job
    assert len(logs) == 2
    (start_0, end_0), (start_1, end_1) = (_submitit_span(p.read_text()) for p in logs)
    assert max(start_0, start_1) < min(end_0, end_1)  # the two jobs ran at the same time

    rrx("report", f"runs={sweep}", f"hydra.run.dir={tmp_path / 'report'}")
    assert "2 finished runs" in (tmp_path / "report" / "report.md").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("ranks", [1, 2])
def test_a_preempted_or_timed_out_job_is_requeued_and_resumes_to_the_same_metrics(cache_dir, tmp_path, ranks):
    """Job 0 gets SIGUSR2 alone (what SLURM sends ``signal_delay_s`` before the time limit), job 1 SIGTERM then
    SIGUSR2 (a preemption, as submitit's own ``SlurmJob._interrupt`` sends it), each once its first epoch is saved.
    With 2 ranks (data-parallel, spawned by the job) every rank resumes from rank 0's checkpoint."""
    args = ["train", "-m", *SWEEP, f"dataset.cache_dir={cache_dir}", f"trainer.devices={ranks}"]
    rrx(*args, f"hydra.sweep.dir={tmp_path / 'whole'}")
    sweep = tmp_path / "sweep"
    proc = subprocess.Popen(
        [*RRX, *args, f"hydra.sweep.dir={sweep}"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    signals = {0: [signal.SIGUSR2], 1: [signal.SIGTERM, signal.SIGUSR2]}
    deadline = time.time() + 300
    while signals and time.time() < deadline and proc.poll() is None:
        for job in sweep.glob("[01]_*"):
            num = int(job.name.split("_")[0])
            if num in signals and (job / "checkpoint.pt").exists():
                pid = int((job / ".rrx.lock").read_text().split()[1])  # "pid <pid> on <host>": the job's process
                for sig in signals.pop(num):
                    os.kill(pid, sig)
                    time.sleep(0.05)
        time.sleep(0.005)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0 and not signals, output

    logs = [p.read_text() for p in sorted((sweep / ".submitit").glob("*/*_0_log.out"))]  # one per job
    assert len(logs) == 2 and all("Requeued job" in log for log in logs)
    assert sum("Bypassing signal SIGTERM" in log for log in logs) == 1
    for job, reference in zip(_jobs(sweep), _jobs(tmp_path / "whole"), strict=True):
        resumed, whole = _metrics(job), _metrics(reference)
        assert 1 <= resumed["train"]["resumed_after_epoch"] < EPOCHS, job
        assert "Resuming" in (job / "train.log").read_text()
        assert resumed["train"]["devices"] == ranks
        for key in ("loss", "acc"):
            assert [e[key] for e in resumed["train"]["epochs"]] == pytest.approx(
                [e[key] for e in whole["train"]["epochs"]], abs=1e-6
            )
        assert resumed["challenges"] == whole["challenges"]


FAKE_SBATCH = """\
#!{python}
# sbatch as a cluster would run the array: each task in the background with SLURM's variables; prints the job id.
import os, re, subprocess, sys
script = open(sys.argv[1]).read()
with open(os.environ["FAKE_SLURM_LOG"], "a") as log:
    log.write(script)
last = int(re.search(r"--array=0-(\\d+)", script).group(1))
for task in range(last + 1):
    env = {{**os.environ, "SLURM_JOB_ID": str(100 + task), "SLURM_ARRAY_JOB_ID": "42", "SLURM_ARRAY_TASK_ID": str(task),
           "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0", "SLURM_NTASKS": "1",
           "SLURM_JOB_NUM_NODES": "1"}}
    subprocess.Popen(["bash", sys.argv[1]], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print("Submitted batch job 42")
"""
FAKE_SRUN = """\
#!{python}
# srun --unbuffered --output <file> --error <file> <command>: the command, its streams in SLURM's file names.
import os, subprocess, sys
args, files = sys.argv[1:], {{}}
while args[0].startswith("--"):
    flag = args.pop(0)
    if flag in ("--output", "--error"):
        files[flag] = args.pop(0)
env = os.environ
names = {{"%A": env["SLURM_ARRAY_JOB_ID"], "%a": env["SLURM_ARRAY_TASK_ID"], "%j": env["SLURM_JOB_ID"], "%t": "0"}}
for flag, name in files.items():
    for key, value in names.items():
        name = name.replace(key, value)
    os.makedirs(os.path.dirname(name), exist_ok=True)
    files[flag] = open(name, "a")
sys.exit(subprocess.call(args, stdout=files["--output"], stderr=files["--error"]))
"""
FAKE_SACCT = "#!/bin/sh\necho 'JobID|State|NodeList'\n"  # no state known: submitit waits for the result files


@pytest.mark.slow
def test_slurm_launcher_submits_the_sweep_as_one_job_array(cache_dir, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in {"sbatch": FAKE_SBATCH, "srun": FAKE_SRUN, "sacct": FAKE_SACCT}.items():
        (bin_dir / name).write_text(text.format(python=sys.executable))
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_SLURM_LOG": str(tmp_path / "sbatch.log")}
    sweep = tmp_path / "sweep"
    rrx(
        "train",
        "-m",
        *TINY,
        f"dataset.cache_dir={cache_dir}",
        "seed=0,1",
        "hydra/launcher=slurm",
        f"hydra.sweep.dir={sweep}",
        "hydra.launcher.partition=gpu",
        "hydra.launcher.account=lab",
        "hydra.launcher.array_parallelism=1",
        "hydra.launcher.timeout_min=30",
        env=env,
    )

    script = (tmp_path / "sbatch.log").read_text()
    assert script.count("#!/bin/bash") == 1  # one sbatch call
    flags = {
        line.split("=", 1)[0]: line.split("=", 1)[1]
        for line in script.splitlines()
        if line.startswith("#SBATCH --") and "=" in line
    }
    assert flags["#SBATCH --array"] == "0-1%1"
    assert (flags["#SBATCH --partition"], flags["#SBATCH --account"], flags["#SBATCH --time"]) == ("gpu", "lab", "30")
    assert (flags["#SBATCH --gpus-per-node"], flags["#SBATCH --cpus-per-task"], flags["#SBATCH --mem"]) == (
        "1",
        "8",
        "32GB",
    )
    assert flags["#SBATCH --signal"] == "USR2@120"
    assert script.index("export SLURM_KILL_BAD_EXIT=1") < script.index("srun")  # a failing rank ends the others
    assert flags["#SBATCH --output"] == f"{sweep}/.submitit/%A_%a/%A_%a_0_log.out"
    assert [_metrics(j)["run"]["seed"] for j in _jobs(sweep)] == [0, 1]
    assert "Job completed successfully" in (sweep / ".submitit" / "42_1" / "42_1_0_log.out").read_text()


def test_a_submitit_launcher_without_its_plugin_is_one_line(monkeypatch):
    monkeypatch.setattr(cli.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(sys, "argv", ["rrx", "train", "-m", "seed=0,1", "hydra/launcher=slurm"])
    with pytest.raises(
        SystemExit,
        match=r"^rrx: error: hydra/launcher=slurm needs hydra-submitit-launcher: pip install 'rrx\[cluster\]'$",
    ):
        cli.main()


def test_sigterm_is_left_to_a_handler_that_another_library_installed():
    """In a submitit job SIGTERM stays submitit's (it ignores it and requeues on SIGUSR2);
    elsewhere it stops the run."""
    with stop_on_signals(), pytest.raises(Stopped, match="stopped by SIGTERM"):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)

    def submitits(signum, frame):
        pass

    previous, sigint = signal.signal(signal.SIGTERM, submitits), signal.getsignal(signal.SIGINT)
    try:
        with stop_on_signals():
            assert signal.getsignal(signal.SIGTERM) is submitits
            assert signal.getsignal(signal.SIGINT) is not sigint  # SIGINT still stops the run
        assert signal.getsignal(signal.SIGINT) is sigint
    finally:
        signal.signal(signal.SIGTERM, previous)
