"""Training: config -> dataset, model, method -> epochs -> checkpoint -> challenge -> metrics."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import random_split
from tqdm import tqdm

from rrx.attacks import create_attack
from rrx.challenges import create_challenge
from rrx.challenges.adversarial import evaluate_with_attack
from rrx.challenges.background import accuracy
from rrx.data import create_dataset
from rrx.errors import RRXError, check_choice
from rrx.methods import create_method
from rrx.methods.rrda import rrda
from rrx.models import create_model
from rrx.results import run_info, write_results
from rrx.runtime import Runtime, seed_everything

log = logging.getLogger(__name__)
SCHEDULERS = ("cosine", "none")  # trainer.scheduler, stepped per batch


def training_step(model, method, attack, mix, batch, runtime: Runtime, generator: torch.Generator):
    """Loss of one batch.

    The batch gets its RRDA images if ``method.rrda``; then ``attack`` perturbs it and the
    method's loss is taken on the perturbed batch (ARRR, thesis Eq. 5.2), or, with ``mix`` =
    alpha, alpha * L(x) + (1 - alpha) * L(x_adv) (Eq. 2.5). ``attack=none`` leaves x as it is.
    """
    x, y, *rest = (t.to(runtime.device, non_blocking=True) for t in batch)
    mask = rest[0] if rest else None
    if method.rrda:
        x_new, y_new, mask_new = rrda(x, y, mask, generator)
        x, y, mask = torch.cat([x, x_new]), torch.cat([y, y_new]), torch.cat([mask, mask_new])
    x_train = attack.perturb(model, x, y)
    with runtime.autocast():
        loss, logs = method.loss(model, x_train, y, mask)
        if mix is not None:
            clean_loss, _ = method.loss(model, x, y, mask)
            loss = mix * clean_loss + (1 - mix) * loss
    return loss, y, logs


def train_epoch(model, method, attack, mix, loader, optimizer, scheduler, runtime, generator, epoch: int, step: int) -> dict:
    """One pass over ``loader``; stops with the step number on a NaN or infinite loss."""
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    start = time.perf_counter()
    bar = tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=not runtime.progress)
    for batch in bar:
        step += 1
        loss, y, logs = training_step(model, method, attack, mix, batch, runtime, generator)
        if not math.isfinite(loss.item()):
            raise RRXError(f"loss is {loss.item()} at epoch {epoch}, step {step}; lower the learning rate or method.lam")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total_loss += loss.item() * len(y)
        correct += (logs["logits"].argmax(1) == y).sum().item()
        seen += len(y)
        bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.3f}")
    return {"epoch": epoch, "loss": total_loss / seen, "acc": correct / seen, "seconds": time.perf_counter() - start, "step": step}


def save_checkpoint(path: Path, model, cfg: DictConfig, info: dict) -> None:
    """The model's state dict with the composed config it was trained with."""
    torch.save({"state_dict": model.state_dict(), "config": OmegaConf.to_container(cfg, resolve=True), "run": info}, path)


def train(cfg: DictConfig, out_dir: Path) -> dict:
    """Train one model as ``cfg`` says, evaluate ``cfg.challenge``, write results to ``out_dir``.

    Returns the metrics dict (also written as ``metrics.json``).
    """
    if cfg.method.lam is None:
        raise RRXError(f"method.lam is null: lambda_grid.{cfg.method.name} has no lambda_index={cfg.get('lambda_index')}")
    started = time.time()
    seed_everything(cfg.seed)
    runtime = Runtime.from_config(cfg.trainer, cfg.dataset)
    dataset = create_dataset(cfg.dataset)
    method = create_method(cfg.method)
    challenge = create_challenge(cfg.challenge)
    attack = create_attack(cfg.attack)
    model = create_model(cfg.model, dataset.num_classes, dataset.mean, dataset.std).to(runtime.device)
    if method.double_backprop and model.use_plain_attention():
        log.info("%s differentiates input gradients: timm's fused attention switched to its plain form", method.label)
    info = run_info(cfg, method)
    log.info("Training %s / %s on %s (%s) -> %s", info["architecture"], info["method"], dataset.name, runtime.device, out_dir)

    train_set = dataset.train_set(masks=method.needs_masks)
    generator = torch.Generator().manual_seed(int(cfg.seed))
    val_set = None
    if cfg.trainer.val_fraction:
        n_val = max(1, round(cfg.trainer.val_fraction * len(train_set)))
        train_set, val_set = random_split(train_set, [len(train_set) - n_val, n_val], generator=generator)
    loader = runtime.loader(train_set, shuffle=True, generator=generator)
    optimizer = instantiate(cfg.optimizer)(params=model.parameters())
    epochs = method.total_epochs(int(cfg.trainer.epochs))
    steps = sum(math.ceil(method.data_factor(e) * len(train_set) / runtime.batch_size) for e in range(1, epochs + 1))
    check_choice("trainer.scheduler", cfg.trainer.scheduler, SCHEDULERS)
    scheduler = None
    if cfg.trainer.scheduler == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)

    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = out_dir / "checkpoint.pt"
    history, step, start = [], 0, time.perf_counter()
    for epoch in range(1, epochs + 1):
        new_data = method.training_set(epoch, train_set, model, runtime)
        if new_data is not None:
            loader = runtime.loader(new_data, shuffle=True, generator=generator)
        stats = train_epoch(model, method, attack, cfg.attack.mix, loader, optimizer, scheduler, runtime, generator, epoch, step)
        step = stats.pop("step")
        history.append(stats)
        log.info("epoch %d/%d  loss %.4f  train acc %.2f%%  %.1f s", epoch, epochs, stats["loss"], 100 * stats["acc"], stats["seconds"])
        save_checkpoint(checkpoint, model, cfg, info)
    train_seconds = time.perf_counter() - start

    val_accuracy = None
    if val_set is not None:
        val_accuracy = accuracy(model, runtime.loader(val_set, shuffle=False), runtime, desc="validation")
        log.info("validation accuracy %.2f%% (%d held-out training images)", 100 * val_accuracy, len(val_set))
    results = evaluate_with_attack(challenge, cfg.attack.name, attack, model, dataset, runtime)
    metrics = {
        "run": info,
        "train": {
            "epochs": history,
            "seconds": train_seconds,
            "images": len(train_set),
            "val_accuracy": val_accuracy,
            "device": str(runtime.device),
        },
        "challenges": results,
        "checkpoint": checkpoint.name,
        "started": started,  # Unix time; with "finished", the run's wall time including data and evaluation
        "finished": time.time(),
    }
    write_results(out_dir, metrics)
    return metrics
