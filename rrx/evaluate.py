"""``rrx evaluate``: a saved checkpoint, or an off-the-shelf model, on a challenge."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, cast

import torch
from omegaconf import DictConfig

from rrx.attacks import create_attack
from rrx.challenges import check_variations, create_challenge
from rrx.challenges.adversarial import evaluate_with_attack
from rrx.checkpoint import describe, load_checkpoint, saved_config
from rrx.loggers import tracked
from rrx.outputs import claim_new_folder, record_hydra_config
from rrx.provenance import collect, weights
from rrx.record import Record
from rrx.results import write_results
from rrx.runtime import Runtime, seed_everything
from rrx.subject import DatasetChoice, checkpoint_dataset, checkpoint_state, open_subject
from rrx.tasks import TASKS
from rrx.tasks.base import LoopState

if TYPE_CHECKING:
    from rrx.tasks.segmentation import Segmentation

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig, out_dir: Path, dataset_choice: DatasetChoice | bool = False) -> Record:
    """Evaluate ``cfg.checkpoint`` (or the off-the-shelf ``cfg.model``) on ``cfg.challenge`` (see ``open_subject``);
    results go to ``out_dir`` (a new folder). An unfinished checkpoint is evaluated and marked so in ``metrics.json``.
    A ``task=segmentation`` checkpoint is scored again instead (``evaluate_segmentation``)."""
    started, loaded = time.time(), None
    if cfg.get("model") is None:
        loaded = load_checkpoint(cfg.checkpoint, segmentation=True)
        if loaded[0].get("task") == "segmentation":
            return evaluate_segmentation(cfg, out_dir, *loaded, DatasetChoice.of(dataset_choice), started)
    subject = open_subject(cfg, dataset_choice, loaded=loaded)
    with claim_new_folder(out_dir, "evaluate", replace_unfinished=True), tracked(cfg, out_dir) as tracker:
        record_hydra_config(out_dir, cfg)
        challenge = create_challenge(cfg.challenge)
        check_variations(challenge, subject.dataset, cfg.attack.name)
        model = subject.build()
        log.info(
            "Evaluating %s (%s) on %s / %s",
            subject.run["architecture"],
            subject.run["method"],
            subject.dataset.name,
            cfg.challenge.name,
        )
        results, predictions = evaluate_with_attack(
            challenge,
            cfg.attack.name,
            create_attack(cfg.attack),
            model,
            subject.dataset,
            subject.runtime,
            cfg.attack.get("eval_eps"),
        )
        record = subject.record("evaluate", started, model, challenges=results)
        record.predictions = predictions
        write_results(out_dir, record, tracker)
        return record


def evaluate_segmentation(
    cfg: DictConfig, out_dir: Path, ckpt: dict, file: Path, choice: DatasetChoice, started: float
) -> Record:
    """A ``task=segmentation`` checkpoint scored again: each fork's best epoch on the validation set and on the
    robustness set (Alg. 2) of ``segmentation.robustness_window`` (null: the run's own), on the run's dataset with
    the command's ``dataset.*`` keys (``checkpoint_dataset``). An unfinished run's trained forks are scored and the
    record is marked unfinished."""
    state = checkpoint_state(ckpt)
    if state["finished"] is False:
        log.warning("checkpoint %s is %s: its results are marked unfinished", file, describe(ckpt))
    task_cls = cast("type[Segmentation]", TASKS.get("segmentation"))
    trained = saved_config(ckpt["config"], task_cls.upgrade_config)  # in today's keys, typed
    trained.dataset = checkpoint_dataset(cfg, trained.dataset, choice)
    if cfg.segmentation.robustness_window is not None:
        trained.segmentation.robustness_window = cfg.segmentation.robustness_window
    task = task_cls(trained)
    task.check()
    seed_everything(cfg.seed)
    runtime = Runtime.from_config(cfg.trainer, trained.dataset)
    net = runtime.place(task.setup(runtime, torch.Generator()))
    task.load_state_dict(ckpt)
    loop = LoopState.of(ckpt, task)
    with claim_new_folder(out_dir, "evaluate", replace_unfinished=True), tracked(cfg, out_dir) as tracker:
        record_hydra_config(out_dir, cfg)
        log.info(
            "Scoring %s (%s) again on %s: robustness window %d px",
            file,
            task.describe(),
            trained.dataset.name,
            task.robustness_window,
        )
        record = replace(
            task.record(net, loop.best, loop.history, rescore=True),
            command="evaluate",
            checkpoint=str(file.resolve()),
            checkpoint_state=state,
            provenance=collect(started, runtime.device, weights(None, None, str(file.resolve()))),
        )
        write_results(out_dir, record, tracker)
        return record
