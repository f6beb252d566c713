"""Fault injection: runs that collide, diverge, get killed, read shifted labels, get bad values or a full disk.

Each test reproduces one defect of the "no lost runs, no silent wrong numbers" issue and fails on rrx before
that change. Subprocess tests run the command as a user types it (and as a cluster kills it).
"""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from conftest import TINY
from fixtures.runner import REPO, one_line_error, rrx
from hydra import compose, initialize_config_module

from rrx.data.synthetic import SyntheticSpec, materialise
from rrx.errors import RRXError
from rrx.methods.standard import Standard
from rrx.train import train

TINY_SPEC = SyntheticSpec(image_size=32, train_per_class=8, val_per_class=4)


@pytest.fixture
def tiny(cache_dir):
    return [*TINY, f"dataset.cache_dir={cache_dir}"]


@pytest.fixture
def root_copy(cache_dir, tmp_path):
    """A private copy of the tiny synthetic bg_challenge root, free to damage."""
    root = tmp_path / "bg_challenge"
    shutil.copytree(materialise(TINY_SPEC, cache_dir), root)
    return root


def _load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


# 1. Output folders are overwritten -------------------------------------------------------------------------


@pytest.mark.slow
def test_a_second_run_in_the_same_folder_is_refused_and_the_first_is_kept(tiny, tmp_path):
    run = tmp_path / "run"
    rrx("train", *tiny, "seed=0", f"hydra.run.dir={run}")
    before = (run / "metrics.json").read_text()
    result = rrx("train", *tiny, "seed=1", f"hydra.run.dir={run}", check=False)
    one_line_error(result, str(run), "holds another run", "seed: 0 -> 1")
    assert _load(run / "checkpoint.pt")["config"]["seed"] == 0
    assert "seed: 0" in (run / ".hydra" / "config.yaml").read_text()
    assert (run / "metrics.json").read_text() == before
    assert sorted(p.name for p in run.glob("metrics*.json")) == ["metrics.json"]


@pytest.mark.slow
def test_the_same_finished_run_again_trains_nothing(tiny, tmp_path):
    run = tmp_path / "run"
    rrx("train", *tiny, f"hydra.run.dir={run}")
    stamp = (run / "checkpoint.pt").stat().st_mtime_ns
    again = rrx("train", *tiny, f"hydra.run.dir={run}")
    assert "already holds this run, finished" in again.stderr + again.stdout
    assert (run / "checkpoint.pt").stat().st_mtime_ns == stamp


def test_default_run_folders_differ_for_runs_started_in_the_same_second():
    from omegaconf import OmegaConf

    import rrx.cli  # noqa: F401  (registers rrx's resolvers, as the command does)

    for _ in range(5):  # two configs composed within one second, as two processes started together
        dirs, seconds = [], set()
        for _ in range(2):
            with initialize_config_module("rrx.conf", version_base="1.3"):
                cfg = compose("train", return_hydra_config=True)
            dirs.append(OmegaConf.select(cfg, "hydra.run.dir"))
            seconds.add(dirs[-1].split("/")[2][:8])
        if len(seconds) == 1:
            break
    assert len(seconds) == 1 and dirs[0] != dirs[1]


def test_a_folder_in_use_by_a_live_process_is_refused(tmp_path):
    from rrx.outputs import RunFolder

    with RunFolder(tmp_path / "run"):
        with pytest.raises(RRXError, match="is in use by pid"):
            RunFolder(tmp_path / "run")
    RunFolder(tmp_path / "run").release()  # free again once released


@pytest.mark.slow
def test_report_names_the_metrics_files_it_does_not_use(tiny, tmp_path):
    run = tmp_path / "runs" / "a"
    rrx("train", *tiny, f"hydra.run.dir={run}")
    shutil.copy(run / "metrics.json", run / "metrics-1.json")  # what two runs sharing a folder left before
    rrx("report", f"runs={tmp_path / 'runs'}", f"hydra.run.dir={tmp_path / 'report'}")
    text = (tmp_path / "report" / "report.md").read_text()
    assert "metrics-1.json" in text and "a second metrics file" in text


# 2. The NaN guard misses poisoned weights -----------------------------------------------------------------


class NaNGradient(torch.autograd.Function):
    """Identity forward, NaN backward: a finite loss whose gradients are not."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * float("nan")


def test_finite_loss_with_nan_gradients_stops_before_the_step(compose_train, tmp_path, monkeypatch):
    original_loss = Standard.loss

    def poisoned(self, model, x, y, mask):
        loss, logs = original_loss(self, model, x, y, mask)
        return NaNGradient.apply(loss), logs

    monkeypatch.setattr(Standard, "loss", poisoned)
    with pytest.raises(RRXError, match="gradients are not finite at epoch 1, step 1"):
        train(compose_train(), tmp_path)
    assert not (tmp_path / "checkpoint.pt").exists() and not (tmp_path / "metrics.json").exists()


class PoisonFromStep6(torch.optim.SGD):
    """SGD that writes inf into the first parameter from its 6th step on (epoch 2 of the tiny config)."""

    steps = 0

    def step(self, closure=None):
        super().step(closure)
        PoisonFromStep6.steps += 1
        if PoisonFromStep6.steps >= 6:
            with torch.no_grad():
                self.param_groups[0]["params"][0].fill_(float("inf"))


def test_non_finite_parameters_stop_the_run_and_the_kept_checkpoint_is_the_last_finite_one(compose_train, tmp_path):
    PoisonFromStep6.steps = 0
    cfg = compose_train("trainer.epochs=2", "optimizer._target_=test_safety.PoisonFromStep6")
    with pytest.raises(RRXError, match="parameters are not finite after the optimizer step at epoch 2, step 6"):
        train(cfg, tmp_path)
    kept = _load(tmp_path / "checkpoint.pt")
    assert kept["epoch"] == 1 and kept["finished"] is False
    assert all(torch.isfinite(t).all() for t in kept["state_dict"].values())
    assert json.loads((tmp_path / "status.json").read_text())["state"] == "stopped"


@pytest.mark.slow
def test_evaluate_refuses_a_checkpoint_with_non_finite_parameters(tiny, tmp_path):
    run = tmp_path / "run"
    rrx("train", *tiny, f"hydra.run.dir={run}")
    ckpt = _load(run / "checkpoint.pt")
    name = next(k for k, t in ckpt["state_dict"].items() if t.is_floating_point())
    ckpt["state_dict"][name] = torch.full_like(ckpt["state_dict"][name], float("nan"))
    torch.save(ckpt, tmp_path / "poisoned.pt")
    result = rrx("evaluate", f"checkpoint={tmp_path / 'poisoned.pt'}", f"hydra.run.dir={tmp_path / 'e'}", check=False)
    one_line_error(result, "non-finite parameters", name)
    assert not (tmp_path / "e" / "metrics.json").exists()


def test_divergence_is_a_one_line_error_with_its_reason_in_train_log(tiny, tmp_path):
    """The issue's reproduction: RRR at lambda 1e6 diverged and exited 0 with chance accuracy."""
    run = tmp_path / "run"
    result = rrx("train", *tiny, "method=rrr", "method.lam=1e6", f"hydra.run.dir={run}", check=False)
    line = one_line_error(result, "at epoch 1, step")
    assert "not finite" in line or "loss is nan" in line
    assert "run stopped: " in (run / "train.log").read_text()
    assert not (run / "metrics.json").exists()


# 3. A killed run looks finished; there is no way to resume --------------------------------------------------

KILLER = textwrap.dedent("""
    import os, signal, sys
    import rrx.train
    calls = {"n": 0}
    original = rrx.train.train_epoch

    def train_epoch(*args, **kwargs):  # SIGKILL this process as call number KILL_AT begins
        calls["n"] += 1
        if calls["n"] == int(os.environ["KILL_AT"]):
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)

    rrx.train.train_epoch = train_epoch
    from rrx.cli import main
    sys.argv = ["rrx", *sys.argv[1:]]
    main()
""")


def _killed(tmp_path, kill_at: int, *args):
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    env = {**os.environ, "KILL_AT": str(kill_at)}
    result = subprocess.run(
        [sys.executable, str(script), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    return result


@pytest.mark.slow
def test_sigkill_after_epoch_2_resumes_to_the_same_parameters(tiny, tmp_path):
    args = [*tiny, "trainer.epochs=4", "method=rrda"]
    rrx("train", *args, f"hydra.run.dir={tmp_path / 'whole'}")
    run = tmp_path / "killed"
    _killed(tmp_path, 3, "train", *args, f"hydra.run.dir={run}")
    partial = _load(run / "checkpoint.pt")
    assert (partial["epoch"], partial["epochs"], partial["finished"]) == (2, 4, False)
    assert not (run / "metrics.json").exists()

    rrx("train", *args, f"hydra.run.dir={run}")  # the same command again
    resumed = json.loads((run / "metrics.json").read_text())
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    assert resumed["train"]["resumed_after_epoch"] == 2
    assert [e["loss"] for e in resumed["train"]["epochs"]] == [e["loss"] for e in whole["train"]["epochs"]]
    assert resumed["challenges"] == whole["challenges"]
    a, b = _load(run / "checkpoint.pt"), _load(tmp_path / "whole" / "checkpoint.pt")
    assert a["finished"] is True
    assert (
        max((a["state_dict"][k].float() - b["state_dict"][k].float()).abs().max().item() for k in a["state_dict"])
        <= 1e-6
    )


@pytest.mark.slow
def test_report_lists_an_unfinished_run_and_its_evaluation_apart(tiny, tmp_path):
    runs = tmp_path / "runs"
    rrx("train", *tiny, f"hydra.run.dir={runs / 'done'}")
    _killed(tmp_path, 2, "train", *tiny, "trainer.epochs=3", f"hydra.run.dir={runs / 'killed'}")
    rrx("evaluate", f"checkpoint={runs / 'killed'}", f"hydra.run.dir={runs / 'killed_eval'}")
    state = json.loads((runs / "killed_eval" / "metrics.json").read_text())["checkpoint_state"]
    assert state == {"finished": False, "epoch": 1, "epochs": 3}
    rrx("report", f"runs={runs}", f"hydra.run.dir={tmp_path / 'report'}")
    text = (tmp_path / "report" / "report.md").read_text()
    assert "1 finished runs" in text
    assert "epoch 1 of 3" in text and "evaluation of an unfinished checkpoint" in text


@pytest.mark.slow
def test_sigterm_leaves_its_reason_and_a_resumable_folder(tiny, tmp_path):
    run = tmp_path / "run"
    args = [*tiny, "trainer.epochs=40", f"hydra.run.dir={run}"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "rrx", "train", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while not (run / "checkpoint.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode not in (0, None)
    assert stderr.strip().splitlines()[-1].startswith("rrx: error: stopped by SIGTERM")
    assert "stopped by SIGTERM" in (run / "train.log").read_text()
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "stopped" and status["epoch"] >= 1
    rrx(*["train", *args])
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["train"]["resumed_after_epoch"] == status["epoch"] and len(metrics["train"]["epochs"]) == 40


@pytest.mark.slow
def test_a_relaunched_sweep_trains_only_its_unfinished_jobs(tiny, tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", *tiny, "trainer.epochs=2", "seed=0,1", f"hydra.sweep.dir={sweep}"]
    _killed(tmp_path, 4, "train", *args)  # job 0 ran epochs 1-2 (calls 1-2); job 1 dies as its epoch 2 begins (call 4)
    (done,) = [p.parent for p in sweep.rglob("metrics.json")]
    stamp = (done / "checkpoint.pt").stat().st_mtime_ns
    rrx("train", *args)
    jobs = sorted(p.parent for p in sweep.rglob("metrics.json"))
    assert len(jobs) == 2 and (done / "checkpoint.pt").stat().st_mtime_ns == stamp
    resumed = json.loads((jobs[1] / "metrics.json").read_text())
    assert resumed["run"]["seed"] == 1 and resumed["train"]["resumed_after_epoch"] == 1


# 4. Labels can shift silently -------------------------------------------------------------------------------


def test_a_renamed_class_folder_in_one_variation_stops_the_run_before_training(tiny, root_copy, tmp_path):
    folder = root_copy / "mixed_rand" / "val"
    (folder / "03_cross").rename(folder / "03_crosses")
    result = rrx("train", *tiny, f"dataset.root={root_copy}", f"hydra.run.dir={tmp_path / 'run'}", check=False)
    one_line_error(result, str(folder), "missing ['03_cross']", "unexpected ['03_crosses']")
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_hidden_folders_are_not_classes(tiny, root_copy, tmp_path):
    (root_copy / "original" / "val" / ".ipynb_checkpoints").mkdir()
    (root_copy / "original" / "train" / ".ipynb_checkpoints").mkdir()
    rrx("train", *tiny, f"dataset.root={root_copy}", f"hydra.run.dir={tmp_path / 'run'}")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert len(metrics["challenges"]["accuracy"]) == 4


@pytest.mark.slow
def test_evaluate_checks_the_class_names_against_the_checkpoint(tiny, root_copy, tmp_path):
    rrx("train", *tiny, f"hydra.run.dir={tmp_path / 'run'}")
    for variation in root_copy.iterdir():  # the same 9 folders everywhere, one of them named differently
        for split in variation.iterdir():
            if (split / "00_circle").is_dir():
                (split / "00_circle").rename(split / "00_disc")
    result = rrx(
        "evaluate",
        f"checkpoint={tmp_path / 'run'}",
        f"dataset.root={root_copy}",
        f"hydra.run.dir={tmp_path / 'e'}",
        check=False,
    )
    one_line_error(result, "missing ['00_circle']", "unexpected ['00_disc']")


# 5. Invalid values are accepted -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "override, message",
    [
        ("trainer.epochs=-1", "trainer.epochs=-1: must be >= 1"),
        ("method.lam=-1.0", "method.lam=-1: must be >= 0"),
        ("trainer.batch_size=0", "trainer.batch_size=0: must be >= 1"),
        ("optimizer.lr=-1.0", "optimizer.lr=-1: must be > 0"),
        ("trainer.val_fraction=1.5", "trainer.val_fraction=1.5: must be in [0, 1)"),
        ("seed=many", "seed=many: must be an integer"),
    ],
)
def test_invalid_values_are_named_before_anything_is_loaded(compose_train, tmp_path, override, message, monkeypatch):
    import rrx.tasks.classification

    monkeypatch.setattr(
        rrx.tasks.classification, "create_dataset", lambda cfg: pytest.fail("data loaded before the config was checked")
    )
    extra = ["method=rrr"] if override.startswith("method") else []
    with pytest.raises(RRXError) as err:
        train(compose_train(*extra, override), tmp_path)
    assert str(err.value) == message
    assert not (tmp_path / "metrics.json").exists()


def test_a_value_of_the_wrong_type_is_named_when_the_config_is_composed(compose_train):
    from rrx.config import explain

    with pytest.raises(Exception) as err:  # the typed trainer block converts the value, or Hydra stops
        compose_train("trainer.epochs=many")
    assert explain(err.value) == "trainer.epochs=many: must be an integer"


@pytest.mark.parametrize("command, key", [("evaluate", "checkpoint="), ("report", "runs=")])
def test_a_missing_mandatory_value_is_one_line(command, key, tmp_path):
    result = rrx(command, f"hydra.run.dir={tmp_path / 'out'}", check=False)
    one_line_error(result, key)


# 6. Writes are not atomic -------------------------------------------------------------------------------------


def test_a_failed_write_keeps_the_previous_file(tmp_path):
    from rrx.outputs import atomic_write, write_json

    path = write_json(tmp_path / "metrics.json", {"a": 1})

    def full_disk(tmp):
        tmp.write_text('{"a": 2, "trunc')
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(RRXError, match=f"cannot write {path}: No space left on device"):
        atomic_write(path, full_disk)
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_a_file_size_limit_is_one_error_naming_the_file_and_leaves_the_old_one(tmp_path):
    """A real failing write(2): RLIMIT_FSIZE makes the kernel refuse bytes past the limit (EFBIG)."""
    target = tmp_path / "metrics.json"
    target.write_text('{"old": true}\n')
    code = textwrap.dedent(f"""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        from rrx.errors import RRXError
        from rrx.outputs import write_json
        try:
            write_json({str(target)!r}, {{"values": list(range(10000))}})
        except RRXError as err:
            sys.exit(f"rrx: error: {{err}}")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    one_line_error(result, f"cannot write {target}")
    assert json.loads(target.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_a_full_disk_while_saving_epoch_2_keeps_epoch_1(compose_train, tmp_path, monkeypatch):
    save, calls = torch.save, {"n": 0}

    def full_disk_on_second_save(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            with open(f, "wb") as out:
                out.write(b"PK\x03\x04 truncated")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk_on_second_save)
    with pytest.raises(RRXError, match="checkpoint.pt: No space left on device"):
        train(compose_train("trainer.epochs=2"), tmp_path)
    monkeypatch.setattr(torch, "save", save)
    assert _load(tmp_path / "checkpoint.pt")["epoch"] == 1
    assert not list(tmp_path.glob(".checkpoint.pt*"))


def test_generation_leaves_no_temporary_folders(tmp_path, monkeypatch):
    import rrx.data.synthetic as synthetic

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"synthetic-0123456789ab.tmp-{dead.pid}"
    (stale / "bg_challenge").mkdir(parents=True)
    spec = SyntheticSpec(image_size=16, train_per_class=2, val_per_class=2)

    def fails(spec, root):
        (root / "original").mkdir(parents=True)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(synthetic, "generate", fails)
    with pytest.raises(RRXError, match="No space left on device"):
        materialise(spec, tmp_path)
    assert list(tmp_path.iterdir()) == []  # neither the dead process's folder nor our own failed one


# 7. Smaller ----------------------------------------------------------------------------------------------------


def test_a_missing_variation_stops_the_run_before_training(tiny, root_copy, tmp_path):
    shutil.rmtree(root_copy / "mixed_next")
    result = rrx("train", *tiny, f"dataset.root={root_copy}", f"hydra.run.dir={tmp_path / 'run'}", check=False)
    one_line_error(result, str(root_copy / "mixed_next" / "val"))
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_skipped_images_are_counted_in_metrics(compose_train, root_copy, tmp_path):
    bad = sorted((root_copy / "original" / "val").rglob("*.JPEG"))[0]
    bad.write_bytes(b"not a jpeg")
    metrics = train(compose_train(f"dataset.root={root_copy}", "dataset.on_bad_sample=skip"), tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["data"]["skipped"] == {"original/val": 1} == metrics["data"]["skipped"]
    assert str(bad) in saved["data"]["skipped_files"]["original/val"][0]


def test_evaluating_at_another_resolution_warns(compose_train, tmp_path, caplog):
    from rrx.evaluate import evaluate

    trained = compose_train()
    train(trained, tmp_path / "run")
    with initialize_config_module("rrx.conf", version_base="1.3"):
        cfg = compose(
            "evaluate",
            overrides=[
                f"checkpoint={tmp_path / 'run'}",
                "trainer.progress=false",
                "challenge=original",
                f"dataset.cache_dir={trained.dataset.cache_dir}",
                "dataset.image_size=48",
                "dataset.train_per_class=8",
                "dataset.val_per_class=4",
            ],
        )
    evaluate(cfg, tmp_path / "eval", dataset_choice=True)
    assert "evaluating at 48 px a model trained at 32 px" in caplog.text


def test_loader_workers_are_capped_at_the_cpu_count(monkeypatch):
    from omegaconf import OmegaConf

    from rrx.runtime import Runtime

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    from rrx.settings import RuntimeConfig

    trainer = OmegaConf.structured(RuntimeConfig(device="cpu", amp=False, batch_size=4))
    assert Runtime.from_config(trainer, OmegaConf.create({"num_workers": 4})).num_workers == 2
    assert Runtime.from_config(trainer, OmegaConf.create({"num_workers": 1})).num_workers == 1


def test_the_preload_loader_takes_the_capped_worker_count(monkeypatch):
    """It took dataset.num_workers as given: torch warned of 4 workers on 2 CPUs right after rrx logged the cap."""
    from torch.utils.data import TensorDataset

    import rrx.data.preload as preload

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    seen = []
    monkeypatch.setattr(preload, "Preloaded", lambda data, workers, desc: seen.append(workers) or data)
    preload.maybe_preload(TensorDataset(torch.zeros(2, 3, 4, 4), torch.zeros(2)), 4, False, 1.0, 4, "test")
    assert seen == [2]


def test_no_progress_bar_updates_when_the_output_is_not_a_terminal(tiny, tmp_path):
    args = [a for a in tiny if a != "trainer.progress=false"]
    result = rrx("train", *args, f"hydra.run.dir={tmp_path / 'run'}")
    assert "it/s" not in result.stderr + result.stdout  # tqdm's rate: no bar was drawn
    assert "epoch 1/1" in result.stdout  # the log's line per epoch instead


def _train_stopped_at_epoch_3(overrides, compose_train, run, monkeypatch):
    """Train ``overrides`` into ``run`` and stop it (as SIGTERM does) when epoch 3 begins."""
    import rrx.train
    from rrx.signals import Stopped

    original = rrx.train.train_epoch

    def stop_at_epoch_3(*args, **kwargs):
        if args[7] == "epoch 3":  # where
            raise Stopped("stopped by SIGTERM")
        return original(*args, **kwargs)

    monkeypatch.setattr(rrx.train, "train_epoch", stop_at_epoch_3)
    with pytest.raises(Stopped):
        train(compose_train(*overrides), run)
    monkeypatch.setattr(rrx.train, "train_epoch", original)


@pytest.mark.parametrize(
    "method",
    [
        [
            "method=ada",
            "method.standard_epochs=1",
            "method.cycles=1",
            "method.ada_epochs=2",
            "method.window=4",
        ],  # stop mid-cycle
        ["method=rrr", "method.lam=0.01", "trainer.val_fraction=0.2"],
    ],
)
def test_a_stopped_run_resumes_in_process_to_the_uninterrupted_result(compose_train, tmp_path, monkeypatch, method):
    """ADA's erased windows (method state) and a validation split survive a stop between epochs 2 and 3."""
    overrides = [*method, "trainer.epochs=3", "optimizer.lr=0.01"]
    whole = train(compose_train(*overrides), tmp_path / "whole")
    _train_stopped_at_epoch_3(overrides, compose_train, tmp_path / "run", monkeypatch)
    assert "stopped by SIGTERM" in json.loads((tmp_path / "run" / "status.json").read_text())["reason"]
    resumed = train(compose_train(*overrides), tmp_path / "run")
    assert resumed["train"]["resumed_after_epoch"] == 2
    assert [e["loss"] for e in resumed["train"]["epochs"]] == [e["loss"] for e in whole["train"]["epochs"]]
    assert (
        resumed["challenges"] == whole["challenges"]
        and resumed["train"]["val_accuracy"] == whole["train"]["val_accuracy"]
    )
    a, b = _load(tmp_path / "run" / "checkpoint.pt"), _load(tmp_path / "whole" / "checkpoint.pt")
    assert (
        max((a["state_dict"][k].float() - b["state_dict"][k].float()).abs().max().item() for k in a["state_dict"])
        <= 1e-6
    )


def test_an_unreadable_checkpoint_resumes_from_the_previous_epoch_to_the_uninterrupted_result(
    compose_train, tmp_path, monkeypatch, caplog
):
    """checkpoint.pt cut short after epoch 2 (a copy or a disk that failed): the resume logs it, starts from
    checkpoint.prev.pt (epoch 1), keeps the bad file aside and ends where an uninterrupted run ends."""
    overrides = ["trainer.epochs=3", "method=rrda"]
    whole = train(compose_train(*overrides), tmp_path / "whole")
    run = tmp_path / "run"
    _train_stopped_at_epoch_3(overrides, compose_train, run, monkeypatch)
    assert (_load(run / "checkpoint.pt")["epoch"], _load(run / "checkpoint.prev.pt")["epoch"]) == (2, 1)
    good = (run / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(good[: len(good) // 2])
    with caplog.at_level("WARNING"):
        resumed = train(compose_train(*overrides), run)
    assert "resuming from the previous epoch's" in caplog.text and "checkpoint.prev.pt" in caplog.text
    assert resumed["train"]["resumed_after_epoch"] == 1
    assert (run / "checkpoint.pt.unreadable").read_bytes() == good[: len(good) // 2]
    assert [e["loss"] for e in resumed["train"]["epochs"]] == [e["loss"] for e in whole["train"]["epochs"]]
    assert resumed["challenges"] == whole["challenges"]
    assert (
        _load(run / "checkpoint.prev.pt")["epoch"] == 3
    )  # readable again (epoch 3 before its evaluation), never the cut file


def test_unreadable_checkpoints_without_a_readable_previous_are_one_error_naming_both(compose_train, tmp_path):
    from rrx.checkpoint import examine_run

    (tmp_path / "checkpoint.pt").write_bytes(b"PK\x03\x04 cut")
    (tmp_path / "checkpoint.prev.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(
        RRXError,
        match=r"cannot read checkpoint .*checkpoint\.pt: .*, and cannot read checkpoint .*checkpoint\.prev\.pt",
    ):
        examine_run(tmp_path, compose_train())


def test_resuming_another_config_names_both_values(compose_train, tmp_path):
    train(compose_train("trainer.epochs=1"), tmp_path)
    with pytest.raises(RRXError, match=r"its config differs: method\.name: standard -> rrr"):
        train(compose_train("trainer.epochs=1", "method=rrr"), tmp_path)


def test_all_finite_against_elementwise_checks():
    from rrx.guard import all_finite

    assert all_finite([torch.ones(3), torch.zeros(2, 2)]) and all_finite([])
    assert not all_finite([torch.ones(3), torch.tensor([0.0, float("nan")])])
    assert not all_finite([torch.tensor([float("inf"), float("-inf")])])  # sums to NaN
    assert all_finite([torch.full((10,), 3e38)])  # the sum overflows, the values are finite
    assert all_finite([torch.full((4,), 60000.0, dtype=torch.float16)])  # likewise in half precision


def test_atomic_files_get_the_usual_permissions(tmp_path):
    from rrx.outputs import write_text

    path = write_text(tmp_path / "report.md", "x")
    (tmp_path / "plain.md").write_text("x")
    assert path.stat().st_mode == (tmp_path / "plain.md").stat().st_mode


def test_class_names_in_another_order_are_named():
    from rrx.data.base import check_classes

    check_classes(["a", "b"], ["a", "b"], "x")  # equal: nothing to say
    with pytest.raises(
        RRXError, match=r"x: classes differ .*missing \[\], unexpected \[\]; same names in another order: \['b', 'a'\]"
    ):
        check_classes(["b", "a"], ["a", "b"], "x")
    with pytest.raises(RRXError, match=r"missing \['b'\], unexpected \['c'\]"):
        check_classes(["a", "c"], ["a", "b"], "x")


def test_an_unusable_run_folder_is_one_error(tmp_path, monkeypatch):
    import fcntl

    from rrx.outputs import RunFolder

    (tmp_path / "file").write_text("x")
    with pytest.raises(RRXError, match="cannot use .*file/run as a run folder"):
        RunFolder(tmp_path / "file" / "run")  # a file where a folder should be

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.raises(RRXError, match="cannot lock .*No locks available"):
        RunFolder(tmp_path / "run")


class _Handlers(torch.utils.data.Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, index):
        return torch.tensor(
            [signal.getsignal(s) == signal.SIG_IGN for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2)]
        )


def test_loader_workers_ignore_the_signals_that_stop_or_requeue_a_run(compose_train):
    """SLURM signals every process of a job: a worker that inherited submitit's SIGUSR2 handler would requeue the
    job itself, and one killed by SIGTERM would turn a clean stop into a loader crash."""
    from rrx.runtime import Runtime

    cfg = compose_train("dataset.num_workers=1")
    runtime = Runtime.from_config(cfg.trainer, cfg.dataset)
    assert runtime.num_workers == 1
    for loader in (runtime.loader(_Handlers(), shuffle=False), runtime.train_loader(_Handlers(), torch.Generator())):
        assert next(iter(loader)).all()


def test_an_unfinished_run_of_an_older_rrx_resumes_without_the_keys_added_since(compose_train, tmp_path):
    """A checkpoint saved before task, dataset.augment* and the speed settings existed is the same run as now."""
    from omegaconf import OmegaConf

    from rrx.checkpoint import config_differences

    cfg = compose_train()
    saved = OmegaConf.to_container(cfg, resolve=True)
    added = [("trainer", "channels_last"), ("trainer", "compile"), ("dataset", "preload_gb"), ("dataset", "augment")]
    for section, key in added:
        del saved[section][key]
    del saved["task"]
    assert config_differences(saved, cfg) == []
    changed = compose_train("dataset.augment=crop_flip")
    assert config_differences(saved, changed) == ["dataset.augment: none -> crop_flip"]
