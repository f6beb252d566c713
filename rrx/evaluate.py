"""Evaluation of a saved checkpoint on a challenge."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from rrx.attacks import create_attack
from rrx.challenges import create_challenge
from rrx.challenges.adversarial import evaluate_with_attack
from rrx.data import create_dataset
from rrx.errors import RRXError
from rrx.models import create_model
from rrx.results import write_results
from rrx.runtime import Runtime, seed_everything

log = logging.getLogger(__name__)


def load_checkpoint(path: str) -> tuple[dict, Path]:
    """Read ``path`` (a ``.pt`` file or a run folder holding ``checkpoint.pt``)."""
    if path in (None, "", "???"):
        raise RRXError("evaluate needs checkpoint=<run folder or .pt file>")
    file = Path(path).expanduser()
    if file.is_dir():
        file = file / "checkpoint.pt"
    if not file.is_file():
        raise RRXError(f"checkpoint={path}: {file} does not exist (give a run folder with checkpoint.pt, or a .pt file)")
    try:
        ckpt = torch.load(file, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises several types for a bad file
        raise RRXError(f"checkpoint={path}: cannot read {file} ({err})") from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "config" not in ckpt:
        raise RRXError(f"checkpoint={path}: {file} is not an rrx checkpoint (no state_dict/config)")
    return ckpt, file


def evaluate(cfg: DictConfig, out_dir: Path, dataset_overridden: bool) -> dict:
    """Evaluate ``cfg.checkpoint`` on ``cfg.challenge``; results go to ``out_dir``.

    The model is rebuilt from the checkpoint's config. The dataset is the one the model was
    trained on, unless the command line set ``dataset`` or ``dataset.*``.
    """
    seed_everything(cfg.seed)
    ckpt, file = load_checkpoint(cfg.checkpoint)
    trained = OmegaConf.create(ckpt["config"])
    dataset_cfg = cfg.dataset if dataset_overridden else trained.dataset
    runtime = Runtime.from_config(cfg.trainer, dataset_cfg)
    dataset = create_dataset(dataset_cfg)
    if dataset.num_classes != trained.dataset.num_classes:
        raise RRXError(
            f"checkpoint {file} predicts {trained.dataset.num_classes} classes, dataset {dataset.name} has {dataset.num_classes}"
        )
    challenge = create_challenge(cfg.challenge)
    # The state dict replaces any pretrained weights, so none are loaded here.
    model_cfg = OmegaConf.merge(trained.model, {"pretrained": False, "weights_path": None})
    model = create_model(model_cfg, dataset.num_classes, dataset.mean, dataset.std)
    model.load_state_dict(ckpt["state_dict"])
    model.to(runtime.device)
    log.info("Evaluating %s on %s / %s", file, dataset.name, cfg.challenge.name)
    results = evaluate_with_attack(challenge, cfg.attack.name, create_attack(cfg.attack), model, dataset, runtime)
    metrics = {"run": {**ckpt["run"], "dataset": dataset.name}, "challenges": results, "checkpoint": str(file.resolve())}
    write_results(out_dir, metrics)
    return metrics
