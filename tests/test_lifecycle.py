"""The run lifecycle of the one training loop (rrx.train), for every task: a non-finite loss stops the run, a stopped
run resumes bit-exact on a CPU, a folder holds one run, and checkpoints written before the one loop (commit 98b7cb4,
``tests/fixtures/recorded/before_one_loop``) still resume and evaluate to the numbers that rrx recorded then."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import torch
from conftest import TINY as CLASSIFICATION
from fixtures import RECORDED
from hydra import compose, initialize_config_module

import rrx.train
from rrx.errors import RRXError
from rrx.evaluate import evaluate
from rrx.signals import Stopped
from rrx.tasks.classification import Classification
from rrx.tasks.segmentation import Segmentation
from rrx.train import train

BEFORE = RECORDED / "before_one_loop"
SEGMENTATION = [
    "task=segmentation",
    "model.width=4",
    "dataset.image_size=32",
    "dataset.train_per_class=4",
    "dataset.val_per_class=2",
    "dataset.num_classes=3",
    "trainer.batch_size=4",
    "trainer.progress=false",
    "segmentation.robustness_window=16",
]
ADA = [
    "method=ada",
    "method.standard_epochs=1",
    "method.cycles=2",
    "method.ada_epochs=1",
    "method.window=8",
    "segmentation.attributions=[saliency,gradcam]",
]
# per task: its tiny config, settings whose run stops in a later phase or epoch, and the fix the guard names
TASKS = {
    "classification": (CLASSIFICATION, ["trainer.epochs=3", "method=rrda"], "lower the learning rate or method.lam"),
    "segmentation": (SEGMENTATION, ADA, "lower optimizer.lr"),
}


def _compose(cache_dir, *overrides):
    with initialize_config_module("rrx.conf", version_base="1.3"):
        return compose("train", overrides=[*overrides, f"dataset.cache_dir={cache_dir}"])


def _task_cfg(cache_dir, task, *more):
    return _compose(cache_dir, *TASKS[task][0], *more)


def _numbers(metrics: dict) -> dict:
    """What a run computed, without its times and the folders it ran in."""
    if metrics["run"].get("task") == "segmentation":
        seg = metrics["segmentation"]
        forks = {
            name: {**f, "history": [{k: v for k, v in h.items() if k != "seconds"} for h in f["history"]]}
            for name, f in seg["forks"].items()
        }
        return {"forks": forks, "first_cycle_windows": seg["first_cycle_windows"], "iou": seg["iou"]}
    return {
        "history": [{k: h[k] for k in ("epoch", "loss", "acc")} for h in metrics["train"]["epochs"]],
        # without the worst-group accuracies: rrx computes them since the recorded runs
        "challenges": {k: v for k, v in metrics["challenges"].items() if k != "groups"},
    }


def assert_same_numbers(found, recorded, where="") -> None:
    """``found`` is ``recorded`` (nested dicts and lists), floats to 1e-6 relative. The recorded numbers came from a
    2-core AMD EPYC (AVX-512); torch's kernels for another instruction set round differently in the last digits
    (a loss 1.86663633 against 1.86663632 on an Intel Xeon), far from flipping a prediction at these sizes: an
    accuracy, a count or a key that differs still fails."""
    if isinstance(recorded, dict):
        assert isinstance(found, dict) and set(found) == set(recorded), (where, found, recorded)
        for key in recorded:
            assert_same_numbers(found[key], recorded[key], f"{where}.{key}")
    elif isinstance(recorded, list):
        assert isinstance(found, list) and len(found) == len(recorded), (where, found, recorded)
        for i, (a, b) in enumerate(zip(found, recorded)):
            assert_same_numbers(a, b, f"{where}[{i}]")
    elif isinstance(recorded, float) and not isinstance(found, bool):
        assert found == pytest.approx(recorded, rel=1e-6, abs=1e-9), where
    else:
        assert found == recorded, where


def _load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.mark.parametrize("task", TASKS)
def test_a_nan_loss_stops_naming_the_epoch_the_step_and_the_fix(task, cache_dir, tmp_path, monkeypatch):
    cls = Classification if task == "classification" else Segmentation
    step = cls.step
    monkeypatch.setattr(cls, "step", lambda self, *a: (lambda loss, logs: (loss * float("nan"), logs))(*step(self, *a)))
    with pytest.raises(RRXError, match=rf"loss is nan at epoch 1, step 1; {TASKS[task][2]}"):
        train(_task_cfg(cache_dir, task), tmp_path / "run")
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["state"] == "stopped" and "loss is nan" in status["reason"]
    assert not (tmp_path / "run" / "metrics.json").exists()


@pytest.mark.parametrize("where", ["running written", "results written"])
def test_a_stop_at_any_moment_of_the_run_marks_it_stopped(where, cache_dir, tmp_path, monkeypatch):
    """A Ctrl-C just after ``status.json`` says running (before the tracker opens: a sweep's test met it there
    once), or while the results are written, leaves the folder marked stopped and resumable, never running."""
    import rrx.results

    if where == "running written":
        write_status = rrx.train.write_status

        def then_stopped(folder, state, *args):
            write_status(folder, state, *args)
            if state == "running":
                raise Stopped("stopped by SIGINT")

        monkeypatch.setattr(rrx.train, "write_status", then_stopped)
    else:

        def stopped(*args):
            raise Stopped("stopped by SIGINT")

        monkeypatch.setattr(rrx.results, "write_results", stopped)
    with pytest.raises(Stopped):
        train(_task_cfg(cache_dir, "classification"), tmp_path / "run")
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["state"] == "stopped", status
    assert status["reason"].startswith("stopped by SIGINT") and status["reason"].endswith("again to resume)")


@pytest.mark.parametrize("task", TASKS)
def test_a_stopped_run_resumes_to_the_uninterrupted_result(task, cache_dir, tmp_path, monkeypatch):
    """Stopped before its third epoch (classification: epoch 3 of 3; segmentation: the first fork's second epoch,
    after the second cycle's windows), resumed in process: the same numbers and parameters as an uninterrupted run."""
    cfg = _task_cfg(cache_dir, task, *TASKS[task][1])
    whole = train(cfg, tmp_path / "whole")
    original, calls = rrx.train.train_epoch, []

    def stop_at_the_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise Stopped("stopped by SIGTERM")
        return original(*args, **kwargs)

    monkeypatch.setattr(rrx.train, "train_epoch", stop_at_the_third)
    with pytest.raises(Stopped):
        train(cfg, tmp_path / "run")
    monkeypatch.setattr(rrx.train, "train_epoch", original)
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["state"] == "stopped" and "checkpoint.pt keeps epoch 2" in status["reason"]
    resumed = train(cfg, tmp_path / "run")
    assert resumed["train"]["resumed_after_epoch"] == 2
    assert _numbers(resumed) == _numbers(whole)
    a, b = _load(tmp_path / "run" / "checkpoint.pt"), _load(tmp_path / "whole" / "checkpoint.pt")
    assert a["task"] == b["task"] == task and a["finished"] and a["epoch"] == a["epochs"]
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in b["state_dict"])
    # the tracker's (logger=csv) epochs: the ones before the stop, and the rest in the resumed run's own version
    first, second = (pd.read_csv(tmp_path / "run" / "logs" / v / "metrics.csv") for v in ("version_0", "version_1"))
    if task == "classification":
        losses = [h["loss"] for h in whole["train"]["epochs"]]
        assert first["loss"].dropna().tolist() == pytest.approx(losses[:2])
        assert second["loss"].dropna().tolist() == pytest.approx(losses[2:])


@pytest.mark.parametrize("task", TASKS)
def test_a_folder_holds_one_run(task, cache_dir, tmp_path):
    cfg = _task_cfg(cache_dir, task, "trainer.epochs=1")
    first = train(cfg, tmp_path)
    assert train(cfg, tmp_path) == first  # finished: nothing trained again
    with pytest.raises(RRXError, match=r"holds another run \(its config differs: seed: 0 -> 1\)"):
        train(_task_cfg(cache_dir, task, "trainer.epochs=1", "seed=1"), tmp_path)
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["state"] == "finished"


@pytest.mark.parametrize("task", TASKS)
def test_checkpoints_of_the_loops_before_resume_to_the_numbers_they_recorded(task, cache_dir, tmp_path):
    """Fixtures written by rrx before the one loop: stopped (classification after epoch 1 of 2, segmentation in its
    Grad-CAM fork) and resumed here, they finish with the numbers the old loops recorded for the uninterrupted run."""
    expected = json.loads((BEFORE / "expected.json").read_text())
    stopped = "classification_epoch1.pt" if task == "classification" else "segmentation_stopped.pt"
    (tmp_path / "run").mkdir()
    shutil.copy(BEFORE / stopped, tmp_path / "run" / "checkpoint.pt")
    resumed = train(_compose(cache_dir, *expected["overrides"][task]), tmp_path / "run")
    assert resumed["train"]["resumed_after_epoch"] == (1 if task == "classification" else 4)
    numbers = _numbers(resumed)
    if task == "segmentation":
        assert_same_numbers(numbers["forks"], expected["segmentation"]["forks"])
        assert_same_numbers(numbers["first_cycle_windows"], expected["segmentation"]["first_cycle_windows"])
    else:
        assert_same_numbers(numbers, expected["classification"])


def _evaluate(cache_dir, out, *overrides):
    with initialize_config_module("rrx.conf", version_base="1.3"):
        cfg = compose("evaluate", overrides=[*overrides, f"dataset.cache_dir={cache_dir}", "trainer.progress=false"])
    return evaluate(cfg, out)


def test_a_classification_checkpoint_of_the_loop_before_evaluates_to_its_recorded_numbers(cache_dir, tmp_path):
    expected = json.loads((BEFORE / "expected.json").read_text())["classification"]
    found = _evaluate(
        cache_dir, tmp_path / "eval", f"checkpoint={BEFORE / 'classification_finished.pt'}", "challenge=original"
    )
    assert_same_numbers({k: v for k, v in found["challenges"].items() if k != "groups"}, expected["challenges"])


def test_a_segmentation_checkpoint_is_scored_again_at_any_robustness_window(cache_dir, tmp_path):
    """``rrx evaluate`` on a segmentation run (here one written before the one loop): each fork's best epoch scored
    again gives the validation metrics training recorded, and the robustness set of its window; another window
    erases another grid (32 px images: (32 / 8)^2 = 16 copies of each of the 6 validation images)."""
    expected = json.loads((BEFORE / "expected.json").read_text())["segmentation"]["forks"]
    checkpoint = f"checkpoint={BEFORE / 'segmentation_finished.pt'}"
    same = _evaluate(cache_dir, tmp_path / "same", checkpoint)
    assert list(same["segmentation"]["forks"]) == list(expected)
    for name, fork in same["segmentation"]["forks"].items():
        assert fork["validation"] == expected[name]["validation"] and fork["robustness"] == expected[name]["robustness"]
        assert fork["best_epoch"] == expected[name]["best_epoch"]
    assert (tmp_path / "same" / "table4.csv").is_file() and same["checkpoint_state"]["finished"] is True
    other = _evaluate(cache_dir, tmp_path / "other", checkpoint, "segmentation.robustness_window=8")
    fork = other["segmentation"]["forks"]["gradcam"]
    assert fork["robustness"]["images"] == 6 * 16 and fork["validation"] == expected["gradcam"]["validation"]
    assert other["segmentation"]["protocol"]["robustness_window"] == 8


@pytest.mark.parametrize(
    "override, key",
    [
        ("trainer.scheduler=cosine", "trainer.scheduler=cosine is not used by task=segmentation"),
        ("trainer.val_fraction=0.2", "trainer.val_fraction=0.2 is not used by task=segmentation"),
        ("dataset.augment=crop_flip", "dataset.augment=crop_flip is not used by task=segmentation"),
        ("trainer.devices=2", "task=segmentation trains on one device"),
    ],
)
def test_segmentation_refuses_what_it_cannot_honour(override, key, cache_dir, tmp_path):
    with pytest.raises(RRXError, match=key.replace(".", r"\.").replace("(", r"\(")):
        train(_task_cfg(cache_dir, "segmentation", override), tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("method", ["standard", "ada"])
def test_segmentation_methods_have_no_lambda_to_refuse(method, cache_dir):
    """method.lam weighs a classification method's penalty: the typed configs of the two methods task=segmentation
    trains with have none, so it is refused when the config is composed (no longer by the task)."""
    from rrx.config import explain

    with pytest.raises(Exception) as err:
        _task_cfg(cache_dir, "segmentation", f"method={method}", "method.lam=7")
    assert explain(err.value).startswith(f"method.lam: method={method} has no key 'lam'")


TYPED = RECORDED / "before_typed_configs"


@pytest.mark.parametrize("run", ["ada", "rrda"])
def test_checkpoints_written_before_the_typed_configs_resume_to_their_numbers(run, cache_dir, tmp_path):
    """Runs of rrx at badde08 (``tests/fixtures/recorded/before_typed_configs``), stopped after epoch 1: their configs
    hold keys renamed since (``method.ipha_constant: zero`` is ``method.ipha_fill: zeros``; ``dataset.augment: false``
    is ``none``) and keys the typed configs dropped (``method.lam`` of standard and ADA), yet they resume under today's
    keys and finish with the numbers their uninterrupted runs recorded."""
    from rrx.checkpoint import RENAMED_KEYS

    expected = json.loads((TYPED / "expected.json").read_text())
    saved = _load(TYPED / f"{run}_epoch1.pt")["config"]
    assert "lam" in saved["method"] and saved["dataset"]["augment"] is False  # what the old config held
    assert run != "ada" or saved["method"]["ipha_constant"] == "zero" and "method.ipha_constant" in RENAMED_KEYS
    (tmp_path / "run").mkdir()
    shutil.copy(TYPED / f"{run}_epoch1.pt", tmp_path / "run" / "checkpoint.pt")
    resumed = train(_compose(cache_dir, *expected["overrides"][run]), tmp_path / "run")
    assert resumed["train"]["resumed_after_epoch"] == 1
    assert_same_numbers(_numbers(resumed), expected[run])
