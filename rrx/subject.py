"""What ``rrx evaluate``, ``rrx analyze`` and the Model Inspector look at: a trained checkpoint or an off-the-shelf
model on its dataset (``open_subject``); they read checkpoints with ``rrx.checkpoint.load_checkpoint``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, cast

import torch
from omegaconf import DictConfig, OmegaConf

from rrx.checkpoint import describe, load_checkpoint, saved_config
from rrx.config import check, typed
from rrx.data import create_dataset, data_report
from rrx.data.base import Benchmark
from rrx.errors import RRXError
from rrx.models import model_from_checkpoint
from rrx.models.pretrained import method_label, off_the_shelf
from rrx.provenance import collect, weights
from rrx.record import Record
from rrx.runtime import Runtime, seed_everything

log = logging.getLogger(__name__)


def checkpoint_state(ckpt: dict) -> dict:
    """What ``metrics.json`` says of the checkpoint evaluated: finished or not, and its epochs (None: older rrx)."""
    return {"finished": ckpt.get("finished"), "epoch": ckpt.get("epoch"), "epochs": ckpt.get("epochs")}


@dataclass(frozen=True)
class DatasetChoice:
    """What a command line said of the dataset: ``group`` when it chose one (``dataset=<name>``), and the keys it set
    (``dataset.root=...`` sets ``root``). Nothing said: a checkpoint is evaluated on the dataset it was trained on."""

    group: bool = False
    keys: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        """Whether the command line said anything of the dataset."""
        return self.group or bool(self.keys)

    @classmethod
    def of(cls, choice: "DatasetChoice | bool") -> "DatasetChoice":
        """``choice`` itself, or ``True``/``False`` (the dataset group chosen, or nothing said)."""
        return choice if isinstance(choice, DatasetChoice) else cls(group=bool(choice))


def checkpoint_dataset(cfg: DictConfig, trained: DictConfig, choice: DatasetChoice) -> DictConfig:
    """The dataset config a checkpoint trained on ``trained`` is evaluated on.

    ``dataset=<name>`` on the command line: the command's dataset, whole. Else the checkpoint's own dataset with the
    command's ``dataset.<key>`` values (``dataset.root=B`` moves the root and keeps the dataset and its image size)
    and, always, the command's own ``cache_dir`` (``$RRX_CACHE`` or ``dataset.cache_dir``): a folder stored in a
    checkpoint, maybe on another machine, never decides where rrx writes.
    """
    if choice.group:
        return cfg.dataset
    dataset = cast(DictConfig, OmegaConf.create(OmegaConf.to_container(trained, resolve=True)))
    for key in choice.keys:  # ~dataset.<key> reads as None, as dataset.<key>=null
        OmegaConf.update(dataset, key, OmegaConf.select(cfg.dataset, key), merge=False)
    if "cache_dir" in dataset and "cache_dir" in cfg.dataset and "cache_dir" not in choice.keys:
        dataset.cache_dir = cfg.dataset.cache_dir
    return typed("dataset", dataset)  # the keys a checkpoint of an older rrx lacks take today's defaults


@dataclass
class Subject:
    """What ``rrx evaluate`` and ``rrx analyze`` look at: a dataset and the model to build on it.

    ``run`` names the model in the tables; ``origin`` is where the model came from (its checkpoint and whether that
    finished, or the off-the-shelf model's config), which ``record`` puts into the results' record; ``build()`` makes
    the model on ``runtime.device``.
    """

    dataset: Benchmark
    runtime: Runtime
    run: dict
    origin: dict
    build: Callable[[], torch.nn.Module]

    def record(self, command: str, started: float, model: torch.nn.Module, **sections) -> Record:
        """The record of results on this subject: its ``run``, the data report, its origin, and ``sections``
        (``challenges``, ``analyses`` or a command's own blocks), with the provenance of the command that
        ``started`` (a Unix time) on ``model``."""
        origin = dict(self.origin)
        fields = {name: origin.pop(name) for name in ("checkpoint", "checkpoint_state") if name in origin}
        known = {name: sections.pop(name) for name in ("challenges", "analyses") if name in sections}
        used = weights(origin.get("model_config"), model, fields.get("checkpoint"))
        return Record(
            command,
            self.run,
            data=data_report(self.dataset),
            **fields,
            **known,
            sections={**origin, **sections},
            provenance=collect(started, self.runtime.device, used),
        )


def open_subject(
    cfg: DictConfig,
    dataset_choice: DatasetChoice | bool,
    unpickle_older: bool = True,
    loaded: tuple[dict, Path] | None = None,
) -> Subject:
    """``cfg.checkpoint`` (a trained run) or ``cfg.model`` (off the shelf, no checkpoint) on its dataset.

    A checkpoint is rebuilt from its config, on the dataset it was trained on with the command line's ``dataset.*``
    keys, or on another one chosen with ``dataset=<name>`` (``checkpoint_dataset``); that dataset's class names must
    be the checkpoint's. An unfinished checkpoint is used and marked so in ``origin``. ``unpickle_older``: see
    ``rrx.checkpoint.read_checkpoint``; ``loaded``: the checkpoint and its file, already read.
    """
    check(cfg)
    seed_everything(cfg.seed)
    if cfg.get("model") is not None:
        if cfg.checkpoint:
            raise RRXError(
                f"give checkpoint={cfg.checkpoint} or model={cfg.model.name}, not both: a checkpoint brings its model"
            )
        return _off_the_shelf_subject(cfg)
    ckpt, file = loaded or load_checkpoint(cfg.checkpoint, unpickle_older)
    return _checkpoint_subject(cfg, DatasetChoice.of(dataset_choice), ckpt, file)


def _off_the_shelf_subject(cfg: DictConfig) -> Subject:
    """``model=<name>`` without a checkpoint: its own weights, head and normalisation (``rrx.models.pretrained``)."""
    runtime = Runtime.from_config(cfg.trainer, cfg.dataset)
    dataset = create_dataset(cfg.dataset)
    run = {
        "architecture": cfg.model.display_name,
        "method": method_label(cfg.model),
        "attack": "none",
        "dataset": dataset.name,
        "variant": cfg.dataset.get("variant"),
        "model": cfg.model.name,
        "method_name": "off_the_shelf",
        "lam": None,
        "rrda": False,
        "seed": int(cfg.seed),
    }
    origin = {"model_config": OmegaConf.to_container(cfg.model, resolve=True)}

    def build() -> torch.nn.Module:
        model = off_the_shelf(cfg.model, dataset, cfg.dataset.get("label_map", "reference"))
        if getattr(model, "label_map_name", None):  # a 1000-class model read through a map: the table names it
            run["label_map"] = origin["label_map"] = model.label_map_name
            run["method"] = f"{run['method']} ({model.label_map_name} map)"
        return runtime.place(model)

    return Subject(dataset, runtime, run, origin, build)


def _checkpoint_subject(cfg: DictConfig, choice: DatasetChoice, ckpt: dict, file: Path) -> Subject:
    state = checkpoint_state(ckpt)
    if state["finished"] is False:
        log.warning(
            "checkpoint %s is %s: its results are marked unfinished and rrx report lists them apart",
            file,
            describe(ckpt),
        )
    elif state["finished"] is None:
        log.warning("checkpoint %s is %s: whether its training finished is unknown", file, describe(ckpt))
    trained = saved_config(ckpt["config"])  # in today's keys (RENAMED_KEYS), typed
    dataset_cfg = checkpoint_dataset(cfg, trained.dataset, choice)
    if dataset_cfg.image_size != trained.dataset.image_size:
        log.warning(
            "evaluating at %d px a model trained at %d px (dataset.image_size)",
            dataset_cfg.image_size,
            trained.dataset.image_size,
        )
    runtime = Runtime.from_config(cfg.trainer, dataset_cfg)
    dataset = create_dataset(dataset_cfg)
    if dataset.num_classes != trained.dataset.num_classes:
        raise RRXError(
            f"checkpoint {file} predicts {trained.dataset.num_classes} classes, "
            f"dataset {dataset.name} has {dataset.num_classes}"
        )
    if "classes" in ckpt:
        dataset.expect_classes(ckpt["classes"], f"dataset {dataset.name} (checkpoint {file})")

    def build() -> torch.nn.Module:
        return runtime.place(model_from_checkpoint(ckpt, dataset))

    origin = {"checkpoint": str(file.resolve()), "checkpoint_state": state}
    return Subject(dataset, runtime, {**ckpt["run"], "dataset": dataset.name}, origin, build)
