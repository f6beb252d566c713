"""Training: config -> dataset, model, method -> epochs (a checkpoint each) -> challenge -> metrics."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace
from pathlib import Path

import torch
from hydra.utils import instantiate
from lightning_fabric import Fabric
from omegaconf import DictConfig, OmegaConf
from torch.nn.parameter import UninitializedParameter
from torch.utils.data import random_split
from tqdm import tqdm

from rrx.attacks import create_attack
from rrx.challenges import check_variations, create_challenge
from rrx.challenges.adversarial import evaluate_with_attack
from rrx.challenges.accuracy import accuracy
from rrx.checkpoint import (CHECKPOINT, RESUME_RULES, TrainingParts, examine_run, open_run, read_checkpoint, record_stop,
                            save_checkpoint)
from rrx.data import create_dataset, data_report
from rrx.data.augment import augment
from rrx.distributed import check_same_folder, create_fabric, launch, rank_seed
from rrx.errors import RRXError, check_choice
from rrx.guard import guarded_step
from rrx.methods import create_method
from rrx.methods.rrda import rrda
from rrx.models import create_model
from rrx.outputs import ERROR, record_hydra_config, write_status
from rrx.results import run_info, write_results
from rrx.runtime import Runtime, seed_everything
from rrx.schema import validate
from rrx.segmentation.task import check_classification
from rrx.signals import Stopped, stop_on_signals

log = logging.getLogger(__name__)
SCHEDULERS = ("cosine", "none")  # trainer.scheduler, stepped per batch
FORWARD_METHODS = ("forward_features", "forward_head")  # model methods the methods call besides forward


def training_step(model, method, attack, mix, batch, runtime: Runtime, generator: torch.Generator):
    """Loss of one batch.

    The batch is augmented if ``dataset.augment`` and gets its RRDA images if ``method.rrda``; then
    ``attack`` perturbs it and the method's loss is taken on the perturbed batch (ARRR, thesis Eq. 5.2),
    or, with ``mix`` = alpha, alpha * L(x) + (1 - alpha) * L(x_adv) (Eq. 2.5). ``attack=none`` leaves x as it is.
    """
    x, y, *rest = (t.to(runtime.device, non_blocking=True) for t in batch)
    mask = rest[0] if rest else None
    if runtime.augment is not None:  # dataset.augment: crops and flips that move the masks too
        x, mask = augment(x, mask, generator, *runtime.augment)
    if method.rrda:
        x_new, y_new, mask_new = rrda(x, y, mask, generator, pairing=method.pairing, fill=method.fill)
        x, y, mask = torch.cat([x, x_new]), torch.cat([y, y_new]), torch.cat([mask, mask_new])
    x_train = attack.perturb(model, x, y)
    with runtime.autocast():
        loss, logs = method.loss(model, x_train, y, mask)
        if mix is not None:
            clean_loss, _ = method.loss(model, x, y, mask)
            loss = mix * clean_loss + (1 - mix) * loss
    return loss, y, logs


def train_epoch(model, method, attack, mix, loader, optimizer, scheduler, runtime, generator, epoch: int, step: int,
                fabric: Fabric) -> dict:
    """One pass over ``loader``. Stops (RRXError with the epoch and step) on a non-finite loss before the
    backward pass, non-finite gradients before the optimizer step, or non-finite parameters after it.

    With several ranks, each checks the loss summed over the ranks and the averaged gradients, so all stop
    together; the returned loss and accuracy are over every rank's images.
    """
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    total_loss, correct, seen = 0.0, 0, 0
    start = time.perf_counter()
    bar = tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=not runtime.progress)
    for batch in bar:
        step += 1
        loss, y, logs = training_step(model, method, attack, mix, batch, runtime, generator)
        checked = loss if fabric.world_size == 1 else fabric.all_reduce(loss.detach().clone(), reduce_op="sum")
        guarded_step(checked.item(), lambda: fabric.backward(loss), optimizer, params, f"epoch {epoch}, step {step}",
                     "lower the learning rate or method.lam")
        if scheduler is not None:
            scheduler.step()
        total_loss += loss.item() * len(y)
        correct += (logs["logits"].argmax(1) == y).sum().item()
        seen += len(y)
        bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.3f}")
    if fabric.world_size > 1:  # over every rank's images
        sums = torch.tensor([total_loss, correct, seen], dtype=torch.float64)
        total_loss, correct, seen = fabric.all_reduce(sums, reduce_op="sum").tolist()
    return {"epoch": epoch, "loss": total_loss / seen, "acc": correct / seen, "seconds": time.perf_counter() - start, "step": step}


def train(cfg: DictConfig, out_dir: Path) -> dict | None:
    """Train one model as ``cfg`` says, evaluate ``cfg.challenge``, write results to ``out_dir``.

    ``out_dir`` belongs to this run: an unfinished run of the same config there is resumed from its last
    epoch (``trainer.resume=auto``), a finished one returns its metrics, any other run's folder is refused.
    With ``trainer.devices`` x ``trainer.num_nodes`` > 1 the ranks train together (``rrx.distributed``); the
    process that owns the folder (the one that spawned the ranks, or rank 0 of ranks SLURM or torchrun
    started) locks it. Returns the metrics dict (also written as ``metrics.json``); None on the other ranks.
    ``task=segmentation`` runs ``rrx.segmentation.train`` instead.
    """
    if cfg.get("task") == "segmentation":
        from rrx.segmentation.train import train_segmentation

        return train_segmentation(cfg, out_dir)
    check_classification(cfg)
    if cfg.method.lam is None:
        raise RRXError(f"method.lam is null: the experiment's lambda_grid has no lambda for method {cfg.method.name} "
                       f"at lambda_index={cfg.get('lambda_index')}")
    validate(cfg)
    check_choice("trainer.scheduler", cfg.trainer.scheduler, SCHEDULERS)
    check_choice("trainer.resume", cfg.trainer.resume, RESUME_RULES)
    fabric = create_fabric(cfg.trainer)
    batch, world = int(cfg.trainer.batch_size), fabric.world_size
    if batch % world:
        raise RRXError(f"trainer.batch_size={batch} is the global batch, shared by {world} ranks (trainer.devices x "
                       f"trainer.num_nodes): use a multiple of {world}, e.g. trainer.batch_size={world * max(1, batch // world)}")
    out_dir = Path(out_dir)
    if fabric.global_rank > 0:  # a rank SLURM or torchrun started: it reads the folder, rank 0 locks and writes it
        run = examine_run(out_dir, cfg)
        with stop_on_signals():
            return None if run.metrics is not None else launch(fabric, _train, cfg, out_dir, run.file)
    run = open_run(out_dir, cfg)
    with run.folder, stop_on_signals():
        if run.metrics is not None:
            log.info("%s already holds this run, finished: nothing to do", out_dir)
            return run.metrics
        (out_dir / ERROR).unlink(missing_ok=True)  # a failed earlier attempt, now retried
        record_hydra_config(out_dir, cfg)
        return launch(fabric, _train, cfg, out_dir, run.file)


def _train(fabric: Fabric, cfg: DictConfig, out_dir: Path, resume_from: Path | None) -> dict | None:
    """One rank's training (the only one with one device), resumed from the checkpoint file ``resume_from`` if
    given. Every rank builds the same model and data and trains on its share of each batch; rank 0 alone
    writes the checkpoint, status, evaluation and results."""
    rank, world = fabric.global_rank, fabric.world_size
    if rank > 0:
        logging.getLogger("rrx").setLevel(logging.WARNING)
    if world > 1:
        check_same_folder(fabric, out_dir)
    resume = read_checkpoint(resume_from) if resume_from else None  # every rank reads rank 0's checkpoint
    seed_everything(cfg.seed)
    runtime = Runtime.from_config(cfg.trainer, cfg.dataset)
    if world > 1:
        runtime = replace(runtime, device=fabric.device, progress=runtime.progress and rank == 0, rank=rank, world_size=world)
    dataset = create_dataset(cfg.dataset)
    method = create_method(cfg.method)
    challenge = create_challenge(cfg.challenge)
    attack = create_attack(cfg.attack)
    net = create_model(cfg.model, dataset.num_classes, dataset.mean, dataset.std)
    method.check_model(net)
    net = runtime.place(net, method.double_backprop)
    if method.double_backprop and net.use_plain_attention():
        log.info("%s differentiates input gradients: timm's fused attention switched to its plain form", method.label)
    info = run_info(cfg, method)
    where = str(runtime.device) if world == 1 else f"{world} ranks on {runtime.device.type}"
    log.info("Training %s / %s on %s (%s) -> %s", info["architecture"], info["method"], dataset.name, where, out_dir)

    train_set = dataset.train_set(masks=method.needs_masks)
    check_variations(challenge, dataset, cfg.attack.name)  # every folder the evaluation reads, before training
    generator = torch.Generator().manual_seed(int(cfg.seed))  # the same on every rank: split and batch order
    val_set = None
    if cfg.trainer.val_fraction:
        n_val = max(1, round(cfg.trainer.val_fraction * len(train_set)))
        train_set, val_set = random_split(train_set, [len(train_set) - n_val, n_val], generator=generator)
    loader = runtime.train_loader(train_set, generator)
    optimizer = instantiate(cfg.optimizer)(params=net.parameters())
    epochs = method.total_epochs(int(cfg.trainer.epochs))
    steps = sum(math.ceil(method.data_factor(e) * len(train_set) / runtime.batch_size) for e in range(1, epochs + 1))
    scheduler = None
    if cfg.trainer.scheduler == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)

    checkpoint = out_dir / CHECKPOINT
    parts = TrainingParts(net, optimizer, scheduler, method, generator)
    started, history, step, first_epoch = time.time(), [], 0, 1
    if resume is not None:
        parts.load_state_dict(resume)
        started, history, step, first_epoch = resume["started"], resume["history"], resume["step"], resume["epoch"] + 1
        loader = runtime.train_loader(method.current_set(train_set) or train_set, generator)
        log.info("Resuming %s after epoch %d of %d (step %d)", out_dir, resume["epoch"], epochs, step)
    if world > 1 and any(isinstance(p, UninitializedParameter) for p in net.parameters()):
        with torch.no_grad():  # DDP needs every parameter's shape: one forward sizes lazy layers (model=mlp)
            net.eval()(train_set[0][0][None].to(runtime.device))
    # DDP with several ranks, as it was with one device; compiled if trainer.compile (training only)
    model, optimizer = fabric.setup(runtime.compiled(net, method.double_backprop, method.label), optimizer)
    for name in FORWARD_METHODS:  # ActDiff calls these instead of forward: through DDP too
        model.mark_forward_method(name)

    identity = {"config": OmegaConf.to_container(cfg, resolve=True), "run": info, "classes": list(dataset.classes), "epochs": epochs}

    def save(epoch: int, finished: bool) -> None:
        if rank == 0:
            save_checkpoint(checkpoint, {**parts.state_dict(), **identity, "epoch": epoch, "step": step, "finished": finished,
                                         "started": started, "history": history})
            write_status(out_dir, "finished" if finished else "running", epoch, epochs)

    saved = first_epoch - 1  # the epoch checkpoint.pt holds
    if rank == 0:
        write_status(out_dir, "running", saved, epochs)
    try:
        for epoch in range(first_epoch, epochs + 1):
            draws = generator
            if world > 1:  # each rank its own random draws (RRDA partners, attack starts, ...); batch order stays shared
                seed = rank_seed(int(cfg.seed), rank, epoch)
                seed_everything(seed)
                draws = torch.Generator().manual_seed(seed)
            new_data = method.training_set(epoch, train_set, net, runtime)
            if new_data is not None:
                if world > 1:  # every rank built it from the same model; rank 0's (ADA's windows) is everyone's
                    method.load_state_dict(fabric.broadcast(method.state_dict()))
                    new_data = method.current_set(train_set) or train_set
                loader = runtime.train_loader(new_data, generator)
            stats = train_epoch(model, method, attack, cfg.attack.mix, loader, optimizer, scheduler, runtime, draws, epoch, step, fabric)
            step = stats.pop("step")
            history.append(stats)
            log.info("epoch %d/%d  loss %.4f  train acc %.2f%%  %.1f s", epoch, epochs, stats["loss"], 100 * stats["acc"], stats["seconds"])
            save(epoch, finished=False)
            saved = epoch
        if rank > 0:  # evaluation is rank 0's alone; waiting for it at a barrier would meet the collective timeout
            return None

        net = runtime.place(net)  # channels-last for evaluation where trainer.channels_last says so
        val_accuracy = None
        if val_set is not None:
            val_accuracy = accuracy(net, runtime.loader(val_set, shuffle=False), runtime, desc="validation")
            log.info("validation accuracy %.2f%% (%d held-out training images)", 100 * val_accuracy, len(val_set))
        results = evaluate_with_attack(challenge, cfg.attack.name, attack, net, dataset, runtime, cfg.attack.get("eval_eps"))
    except (Exception, KeyboardInterrupt, Stopped) as err:
        if rank == 0:
            record_stop(out_dir, err, saved, epochs)
        raise
    metrics = {
        "run": info,
        "train": {
            "epochs": history,
            "seconds": sum(h["seconds"] for h in history),
            "images": len(train_set),
            "val_accuracy": val_accuracy,
            "device": str(runtime.device),
            "devices": world,
            "resumed_after_epoch": None if resume is None else resume["epoch"],
        },
        "challenges": results,
        "data": data_report(dataset),
        "checkpoint": checkpoint.name,
        "started": started,  # Unix time; with "finished", the run's wall time including data and evaluation
        "finished": time.time(),
    }
    write_results(out_dir, metrics)
    save(epochs, finished=True)
    return metrics
