"""The logger group: what a run logs is read back with the trackers' own readers (Lightning's CSV file,
TensorBoard's event reader, MLflow's client), the run's folder and the tracker's run name each other, and a tracker
that cannot start stops the run before it trains."""

import json

import pandas as pd
import pytest
from fixtures.runner import one_line_error, rrx

from rrx.errors import RRXError
from rrx.train import train


def _numbers(metrics):
    return [(e["epoch"], e["loss"], e["acc"]) for e in metrics["train"]["epochs"]]


def test_csv_is_the_default_and_holds_every_epoch(compose_train, tmp_path):
    metrics = train(compose_train("trainer.epochs=2"), tmp_path)
    logged = pd.read_csv(tmp_path / "logs" / "version_0" / "metrics.csv")
    epochs = logged.dropna(subset=["loss"])
    assert [(int(s), loss, acc) for s, loss, acc in epochs[["step", "loss", "acc"]].itertuples(index=False)] == [
        pytest.approx(n) for n in _numbers(metrics)
    ]
    final = logged.dropna(subset=["challenges/bg_gap"])["challenges/bg_gap"].tolist()
    assert final == [pytest.approx(metrics["challenges"]["bg_gap"])]
    assert metrics["tracker"] == {"logger": "csv", "dir": str(tmp_path / "logs" / "version_0")}
    assert "method" in (tmp_path / "logs" / "version_0" / "hparams.yaml").read_text()


def test_tensorboard_events_read_back(compose_train, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    metrics = train(compose_train("trainer.epochs=2", "logger=tensorboard"), tmp_path)
    assert metrics["tracker"] == {"logger": "tensorboard", "dir": str(tmp_path / "logs" / "version_0")}
    events = EventAccumulator(metrics["tracker"]["dir"], size_guidance={"images": 0, "tensors": 0}).Reload()
    assert [(e.step, e.value) for e in events.Scalars("loss")] == [
        (epoch, pytest.approx(loss, rel=1e-6)) for epoch, loss, _ in _numbers(metrics)
    ]
    (bg_gap,) = events.Scalars("challenges/bg_gap")
    assert bg_gap.value == pytest.approx(metrics["challenges"]["bg_gap"], rel=1e-6)
    tags = events.Tags()
    assert "table5/text_summary" in tags["tensors"] and metrics["tracker"]["logger"] == "tensorboard"


def test_mlflow_run_reads_back_with_its_client(compose_train, tmp_path):
    from mlflow.tracking import MlflowClient

    run_dir = tmp_path / "run"
    metrics = train(compose_train("trainer.epochs=2", "logger=mlflow", "method=rrr", "method.lam=3"), run_dir)
    tracker = metrics["tracker"]
    client = MlflowClient(tracking_uri=tracker["tracking_uri"])
    run = client.get_run(tracker["run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == run_dir.name
    assert run.data.tags["rrx.run_folder"] == str(run_dir.resolve())
    assert run.data.params["method.lam"] == "3.0" and run.data.params["method.name"] == "rrr"
    history = client.get_metric_history(tracker["run_id"], "loss")
    assert [(m.step, m.value) for m in history] == [(e, pytest.approx(loss)) for e, loss, _ in _numbers(metrics)]
    assert run.data.metrics["challenges/bg_gap"] == pytest.approx(metrics["challenges"]["bg_gap"])
    files = {a.path for a in client.list_artifacts(tracker["run_id"])}
    assert {"metrics.json", "table5.csv", "predictions.parquet"} <= files


def test_a_tracker_that_cannot_start_stops_before_training(compose_train, tmp_path):
    bad = tmp_path / "bad"
    with pytest.raises(RRXError, match="logger=mlflow cannot start: ") as err:
        train(compose_train("logger=mlflow", "logger.tracking_uri=ftp://nowhere/x"), bad)
    assert "\n" not in str(err.value) and not (bad / "checkpoint.pt").exists()


def test_a_run_that_fails_closes_its_tracker_run_as_failed(compose_train, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    import rrx.train as train_module

    def diverged(*args, **kwargs):
        raise RRXError("loss is nan at epoch 1, step 1")

    monkeypatch.setattr(train_module, "run_phase", diverged)
    with pytest.raises(RRXError, match="loss is nan"):
        train(compose_train("logger=mlflow"), tmp_path)
    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.info.status == "FAILED" and run.info.run_name == tmp_path.name


def test_a_tracker_that_fails_later_loses_no_run(compose_train, tmp_path, monkeypatch, caplog):
    from rrx.loggers.trackers import CSVTracker

    def broken(self, metrics, step):
        raise OSError("disk of the tracker full")

    monkeypatch.setattr(CSVTracker, "log_metrics", broken)
    metrics = train(compose_train(), tmp_path)
    assert (tmp_path / "metrics.json").is_file() and metrics["challenges"]["accuracy"]
    assert "logger=csv failed (disk of the tracker full); the run goes on" in caplog.text


def test_evaluate_logs_its_numbers_and_an_unknown_logger_is_one_line(tiny_run, tmp_path):
    rrx("evaluate", f"checkpoint={tiny_run}", "challenge=mixed_rand", f"hydra.run.dir={tmp_path / 'eval'}")
    evaluated = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    logged = pd.read_csv(tmp_path / "eval" / "logs" / "version_0" / "metrics.csv")
    rand = evaluated["challenges"]["accuracy"]["mixed_rand"]
    assert logged["challenges/accuracy/mixed_rand"].dropna().tolist() == [pytest.approx(rand)]
    one_line_error(
        rrx("train", "logger=neptune", f"hydra.run.dir={tmp_path / 'x'}", check=False), "unknown logger 'neptune'"
    )


@pytest.fixture
def tiny_run(compose_train, tmp_path):
    run = tmp_path / "trained"
    train(compose_train(), run)
    return run
