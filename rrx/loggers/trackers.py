"""The trackers: ``csv`` and ``tensorboard`` through Lightning Fabric's loggers, ``mlflow`` (a local file store by
default, no server) and ``wandb`` (offline by default, no network)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rrx.checkpoint import flat_config
from rrx.config import param
from rrx.errors import RRXError
from rrx.loggers import LoggerConfig, Tracker, artifacts, register_logger


def _needs(module: str, package: str, logger: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise RRXError(f"logger={logger} needs the {package} package: pip install {package} (or use logger=csv)")


@dataclass
class NoLoggerConfig(LoggerConfig):
    """no tracker: the run's own files only"""

    name: str = param("none", "the registered name of the logger")


@register_logger("none", config=NoLoggerConfig)
class NoTracker(Tracker):
    name = "none"

    def __init__(self, cfg, out_dir: Path):
        pass


@dataclass
class CSVConfig(LoggerConfig):
    """Lightning Fabric's CSVLogger: <run>/logs/version_<n>/metrics.csv (one row per epoch) and hparams.yaml"""

    name: str = param("csv", "the registered name of the logger")


class FabricTracker(Tracker):
    """A Lightning Fabric logger (``lightning_fabric.loggers``) writing under ``<run>/logs/version_<n>``: a resumed
    run, or a command run again in its folder, gets the next version and never replaces the earlier logs."""

    def __init__(self, cfg, out_dir: Path):
        self.out_dir = out_dir
        self.logger: Any = None  # the Fabric logger, made by start

    def make(self):
        raise NotImplementedError

    def start(self, config: dict) -> None:
        self.logger = self.make()
        self.logger.log_hyperparams(config)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.logger.log_metrics(metrics, step=step)

    def log_results(self, results: dict[str, float]) -> None:
        self.logger.log_metrics(results, step=0)

    def finish(self, status: str = "FINISHED") -> None:
        self.logger.finalize("success" if status == "FINISHED" else "failed")

    def describe(self) -> dict:
        return {"logger": self.name, "dir": str(Path(self.logger.log_dir))}


@register_logger("csv", config=CSVConfig)
class CSVTracker(FabricTracker):
    name = "csv"

    def make(self):
        from lightning_fabric.loggers import CSVLogger

        return CSVLogger(self.out_dir, name="logs", version=None)

    def start(self, config: dict) -> None:
        from omegaconf import OmegaConf

        self.logger = self.make()
        self.logger.experiment  # noqa: B018 - makes its (new, empty) version folder now
        # Fabric's CSVLogger keeps no hyperparameters: hparams.yaml beside its metrics.csv
        (Path(self.logger.log_dir) / "hparams.yaml").write_text(OmegaConf.to_yaml(config))


@dataclass
class TensorBoardConfig(LoggerConfig):
    """Lightning Fabric's TensorBoardLogger: event files under <run>/logs/version_<n> (tensorboard --logdir ...)"""

    name: str = param("tensorboard", "the registered name of the logger")


@register_logger("tensorboard", config=TensorBoardConfig)
class TensorBoardTracker(FabricTracker):
    """Also the run's tables as text and its figures as images."""

    name = "tensorboard"

    def make(self):
        _needs("tensorboard", "tensorboard", "tensorboard")
        from lightning_fabric.loggers import TensorBoardLogger

        return TensorBoardLogger(self.out_dir, name="logs", version=None, default_hp_metric=False)

    def log_artifacts(self, folder: Path) -> None:
        import numpy as np
        from PIL import Image

        writer = self.logger.experiment
        for path in artifacts(folder):
            if path.suffix == ".md":
                writer.add_text(path.stem, path.read_text(), 0)
            elif path.suffix == ".png":
                with Image.open(path) as image:
                    writer.add_image(path.stem, np.asarray(image.convert("RGB")), 0, dataformats="HWC")
        writer.flush()


@dataclass
class MLflowConfig(LoggerConfig):
    """MLflow: a run in a local file store (<run>/mlruns) unless tracking_uri names another (sqlite:///..., a server)"""

    name: str = param("mlflow", "the registered name of the logger")
    tracking_uri: str | None = param(None, "where runs are stored (null: file:<run folder>/mlruns)")
    experiment: str = param("rrx", "the MLflow experiment the run belongs to")


@register_logger("mlflow", config=MLflowConfig)
class MLflowTracker(Tracker):
    """Params: the config flattened (``method.lam``); metrics per epoch and at the end; the result files as
    artifacts; the run named after its folder, tagged ``rrx.run_folder``."""

    name = "mlflow"

    def __init__(self, cfg, out_dir: Path):
        _needs("mlflow", "mlflow-skinny", "mlflow")
        self.uri = cfg.tracking_uri or (out_dir.resolve() / "mlruns").as_uri()
        self.experiment, self.out_dir = cfg.experiment, out_dir
        self.client: Any = None
        self.run_id: str | None = None

    def start(self, config: dict) -> None:
        import os

        if self.uri.startswith("file:"):  # MLflow 3 keeps its file store for those who ask (no database needed)
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=self.uri)
        found = self.client.get_experiment_by_name(self.experiment)
        experiment = found.experiment_id if found else self.client.create_experiment(self.experiment)
        tags = {"rrx.run_folder": str(self.out_dir.resolve()), "mlflow.runName": self.out_dir.name}
        self.run_id = self.client.create_run(experiment, tags=tags, run_name=self.out_dir.name).info.run_id
        from mlflow.entities import Param

        params = [Param(k, str(v)[:6000]) for k, v in flat_config(config).items()]
        for i in range(0, len(params), 100):  # MLflow's limit per batch
            self.client.log_batch(self.run_id, params=params[i : i + 100])

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        found = [Metric(k, v, now, step) for k, v in metrics.items()]
        for i in range(0, len(found), 1000):
            self.client.log_batch(self.run_id, metrics=found[i : i + 1000])

    def log_results(self, results: dict[str, float]) -> None:
        self.log_metrics(results, step=0)

    def log_artifacts(self, folder: Path) -> None:
        for path in artifacts(folder):
            self.client.log_artifact(self.run_id, str(path))

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status=status)

    def describe(self) -> dict:
        return {"logger": self.name, "tracking_uri": self.uri, "experiment": self.experiment, "run_id": self.run_id}


@dataclass
class WandbConfig(LoggerConfig):
    """Weights & Biases: offline by default (files under <run>/wandb; wandb sync uploads them later)"""

    name: str = param("wandb", "the registered name of the logger")
    project: str = param("rrx", "the W&B project")
    mode: str = param("offline", "offline (no network) | online", choices=("offline", "online"))


@register_logger("wandb", config=WandbConfig)
class WandbTracker(Tracker):
    name = "wandb"

    def __init__(self, cfg, out_dir: Path):
        _needs("wandb", "wandb", "wandb")
        self.project, self.mode, self.out_dir = cfg.project, cfg.mode, out_dir
        self.run: Any = None

    def start(self, config: dict) -> None:
        import wandb

        self.run = wandb.init(
            project=self.project,
            mode=self.mode,
            dir=str(self.out_dir),
            name=self.out_dir.name,
            config=config,
            tags=[f"rrx.run_folder={self.out_dir.resolve()}"[:64]],
        )

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.run.log(metrics, step=step)

    def log_results(self, results: dict[str, float]) -> None:
        self.run.summary.update(results)

    def log_artifacts(self, folder: Path) -> None:
        for path in artifacts(folder):
            self.run.save(str(path), base_path=str(folder), policy="now")

    def finish(self, status: str = "FINISHED") -> None:
        self.run.finish(exit_code=0 if status == "FINISHED" else 1)

    def describe(self) -> dict:
        return {"logger": self.name, "project": self.project, "run_id": self.run.id, "mode": self.mode}
