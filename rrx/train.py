"""The training loop of every task: config -> task -> phases of epochs (a checkpoint each) -> evaluation -> record.

The loop owns the run: its folder and lock, Lightning Fabric (one device, or data-parallel ranks), the seeds of each
rank and phase, the non-finite guard (``guarded_step``), the learning-rate scheduler, the checkpoint (one payload for
every task, with a ``task`` key), resume, ``status.json`` and ``metrics.json``. The task (``rrx.tasks``) supplies the
science: model and data, phases, the loss of a batch, validation, evaluation and tables.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, cast

import torch
from lightning_fabric import Fabric
from omegaconf import DictConfig, OmegaConf
from torch.nn.parameter import UninitializedParameter
from tqdm import tqdm

from rrx.checkpoint import (
    CHECKPOINT,
    examine_run,
    open_run,
    read_checkpoint,
    record_stop,
    restore_rng_states,
    rng_states,
    save_checkpoint,
)
from rrx.distributed import check_same_folder, create_fabric, launch, rank_seed
from rrx.errors import RRXError
from rrx.guard import guarded_step
from rrx.loggers import flat_numbers, open_tracker
from rrx.outputs import ERROR, record_hydra_config, write_status
from rrx.provenance import collect, weights
from rrx.record import Record
from rrx.runtime import Runtime, seed_everything
from rrx.signals import Stopped, stop_on_signals
from rrx.tasks import create_task
from rrx.tasks.base import FORK, LoopState, Phase, Task

if TYPE_CHECKING:
    from rrx.models.classifier import Classifier

log = logging.getLogger(__name__)


def train_epoch(
    task: Task,
    model,
    loader,
    optimizer,
    scheduler,
    params: list,
    generator: torch.Generator,
    where: str,
    loop: LoopState,
    fabric: Fabric,
    progress: bool,
) -> dict:
    """One pass over ``loader``: the task's loss of each batch, one guarded optimizer step each (an RRXError naming
    ``where`` and the step on a non-finite loss before the backward pass, non-finite gradients before the step, or
    non-finite parameters after it), the scheduler stepped per batch. Returns the epoch's mean loss and, for a
    classifier, its training accuracy.

    With several ranks, each checks the loss summed over the ranks and the averaged gradients, so all stop together;
    the returned loss and accuracy are over every rank's images.
    """
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    bar = tqdm(loader, desc=where, leave=False, disable=not progress)
    for batch in bar:
        loop.step += 1
        loss, logs = task.step(model, batch, generator)
        checked = loss
        if fabric.world_size != 1:  # all_reduce gives back what it is given: a tensor
            checked = cast(torch.Tensor, fabric.all_reduce(loss.detach().clone(), reduce_op="sum"))
        guarded_step(
            checked.item(), lambda: fabric.backward(loss), optimizer, params, f"{where}, step {loop.step}", task.fix
        )
        if scheduler is not None:
            scheduler.step()
        total_loss += loss.item() * logs["images"]
        correct += logs.get("correct", 0)
        seen += logs["images"]
        bar.set_postfix(
            loss=f"{total_loss / seen:.3f}", **({"acc": f"{correct / seen:.3f}"} if "correct" in logs else {})
        )
    if fabric.world_size > 1:  # over every rank's images
        sums = torch.tensor([total_loss, correct, seen], dtype=torch.float64)
        total_loss, correct, seen = cast(torch.Tensor, fabric.all_reduce(sums, reduce_op="sum")).tolist()
    return {"loss": total_loss / seen, **({"acc": correct / seen} if "correct" in logs else {})}


def train(cfg: DictConfig, out_dir: Path) -> Record | None:
    """Train as ``cfg`` says (``cfg.task``: ``classification`` or ``segmentation``), evaluate,
    write results to ``out_dir``.

    ``out_dir`` belongs to this run: an unfinished run of the same config there is resumed from its last
    epoch (``trainer.resume=auto``), a finished one returns its record, any other run's folder is refused.
    With ``trainer.devices`` x ``trainer.num_nodes`` > 1 the ranks train together (``rrx.distributed``); the
    process that owns the folder (the one that spawned the ranks, or rank 0 of ranks SLURM or torchrun
    started) locks it. Returns the run's ``Record`` (also written as ``metrics.json``); None on the other ranks.
    """
    task = create_task(cfg)
    task.check()  # every typed value too (rrx.config.check): trainer.resume, trainer.strategy, ...
    fabric = create_fabric(cfg.trainer)
    batch, world = int(cfg.trainer.batch_size), fabric.world_size
    if batch % world:
        raise RRXError(
            f"trainer.batch_size={batch} is the global batch, shared by {world} ranks (trainer.devices x "
            f"trainer.num_nodes): use a multiple of {world}, e.g. trainer.batch_size={world * max(1, batch // world)}"
        )
    out_dir = Path(out_dir)
    if fabric.global_rank > 0:  # a rank SLURM or torchrun started: it reads the folder, rank 0 locks and writes it
        run = examine_run(out_dir, cfg, task.upgrade_config)
        with stop_on_signals():
            return None if run.metrics is not None else launch(fabric, _train, cfg, out_dir, run.file)
    run = open_run(out_dir, cfg, task.upgrade_config)
    assert run.folder is not None  # open_run locks the folder
    with run.folder, stop_on_signals():
        if run.metrics is not None:
            log.info("%s already holds this run, finished: nothing to do", out_dir)
            return run.metrics
        (out_dir / ERROR).unlink(missing_ok=True)  # a failed earlier attempt, now retried
        record_hydra_config(out_dir, cfg)
        return launch(fabric, _train, cfg, out_dir, run.file)


def _cpu_copy(state: dict) -> dict:
    return copy.deepcopy({k: v.detach().cpu() if torch.is_tensor(v) else v for k, v in state.items()})


def _train(fabric: Fabric, cfg: DictConfig, out_dir: Path, resume_from: Path | None) -> Record | None:
    """One rank's training (the only one with one device), resumed from the checkpoint file ``resume_from`` if
    given. Every rank builds the same model and data and trains on its share of each batch; rank 0 alone
    writes the checkpoint, status, evaluation and results."""
    rank, world = fabric.global_rank, fabric.world_size
    if rank > 0:
        logging.getLogger("rrx").setLevel(logging.WARNING)
    if world > 1:
        check_same_folder(fabric, out_dir)
    resume = read_checkpoint(resume_from) if resume_from else None  # every rank reads rank 0's checkpoint
    task = create_task(cfg)  # a spawned rank builds its own
    seed_everything(cfg.seed)
    runtime = Runtime.from_config(cfg.trainer, cfg.dataset)
    if world > 1:
        runtime = replace(
            runtime, device=fabric.device, progress=runtime.progress and rank == 0, rank=rank, world_size=world
        )
    generator = torch.Generator().manual_seed(int(cfg.seed))  # the same on every rank: split and batch order
    task.folder = out_dir
    net = runtime.place(task.setup(runtime, generator), task.double_backprop)
    if task.double_backprop and cast("Classifier", net).use_plain_attention():  # a classification task's model
        log.info("%s differentiates input gradients: timm's fused attention switched to its plain form", task.label)
    where = str(runtime.device) if world == 1 else f"{world} ranks on {runtime.device.type}"
    log.info("Training %s (%s) -> %s", task.describe(), where, out_dir)

    phases = task.phases()
    epochs = sum(p.epochs for p in phases)
    optimizer = task.optimizer(net.parameters())
    scheduler = task.scheduler(optimizer)
    loop, started, resumed_after = LoopState(), time.time(), None
    if resume is not None:
        net.load_state_dict(resume["state_dict"])
        optimizer.load_state_dict(resume["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(resume["scheduler"])
        task.load_state_dict(resume)
        restore_rng_states(resume["rng"], generator)
        loop = LoopState.of(resume, task)
        started, resumed_after = resume["started"], resume["epoch"]
        log.info("Resuming %s after epoch %d of %d (step %d)", out_dir, resume["epoch"], epochs, loop.step)
    if world > 1 and any(isinstance(p, UninitializedParameter) for p in net.parameters()):
        with torch.no_grad():  # DDP needs every parameter's shape: one forward sizes lazy layers (model=mlp)
            net.eval()(task.resumed_set(phases[0])[0][0][None].to(runtime.device))
    # DDP with several ranks, as it was with one device; compiled if trainer.compile (training only)
    model, optimizer = fabric.setup(runtime.compiled(net, task.double_backprop, task.label), optimizer)
    for name in task.forward_methods:  # e.g. ActDiff calls these instead of forward: through DDP too
        model.mark_forward_method(name)
    params = [p for p in model.parameters() if p.requires_grad]
    identity = {
        "task": task.name,
        "config": OmegaConf.to_container(cfg, resolve=True),
        **task.identity(),
        "epochs": epochs,
    }

    def save(finished: bool) -> None:
        if rank == 0:
            save_checkpoint(
                out_dir / CHECKPOINT,
                {
                    "state_dict": net.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": None if scheduler is None else scheduler.state_dict(),
                    "rng": rng_states(generator),
                    **task.state_dict(),
                    **identity,
                    "epoch": loop.epoch,
                    "step": loop.step,
                    "finished": finished,
                    "started": started,
                    "loop": loop.state_dict(),
                },
            )
            write_status(out_dir, "finished" if finished else "running", loop.epoch, epochs)

    loader = None
    tracker = None  # rank 0's: it logs the numbers summed over the ranks
    # "running" is written inside the block whose end (a failure, a stop) writes "stopped": a signal that arrives
    # just after it cannot leave a run that has ended marked running; the tracker opens there too, last before the loop
    try:
        if rank == 0:
            write_status(out_dir, "running", loop.epoch, epochs)
            if "logger" in cfg:
                tracker = open_tracker(cfg.logger, out_dir, cast(dict, OmegaConf.to_container(cfg, resolve=True)))
        for index, phase in enumerate(phases):
            if index < loop.phase:
                continue
            if loop.phase_epoch == 0:
                start_phase(phase, loop, net, optimizer, generator)
            loader = run_phase(
                task,
                phase,
                loop,
                net,
                model,
                optimizer,
                scheduler,
                params,
                generator,
                loader,
                runtime,
                fabric,
                cfg,
                epochs,
                save,
                tracker,
            )
            task.end_phase(phase, net)
            if any(p.start == FORK and p.fork_of == phase.name for p in phases):
                loop.forks[phase.name] = {
                    "model": _cpu_copy(net.state_dict()),
                    "optimizer": copy.deepcopy(optimizer.state_dict()),
                }
            loop.phase, loop.phase_epoch = index + 1, 0
            if index + 1 < len(phases):
                save(finished=False)
        if rank > 0:  # evaluation is rank 0's alone; waiting for it at a barrier would meet the collective timeout
            return None
        record = task.finish(net, loop)
        history = [h for p in phases for h in loop.history.get(p.name, [])]
        record.train = {
            **(record.train or {}),
            "seconds": sum(h["seconds"] for h in history),
            "device": str(runtime.device),
            "devices": world,
            "resumed_after_epoch": resumed_after,
        }
        record.checkpoint, record.started, record.finished = CHECKPOINT, started, time.time()
        model_cfg = OmegaConf.to_container(cfg.model, resolve=True) if "model" in cfg else None
        record.provenance = collect(started, runtime.device, weights(cast(dict, model_cfg), net), record.finished)
        from rrx.results import write_results  # the tables (pandas, every component's module): once there are results

        write_results(out_dir, record, tracker)
        save(finished=True)
    except (Exception, KeyboardInterrupt, Stopped) as err:
        if rank == 0:
            record_stop(out_dir, err, loop.epoch, epochs)
        if tracker is not None:
            tracker.finish("FAILED" if not isinstance(err, (KeyboardInterrupt, Stopped)) else "KILLED")
        raise
    return record


def start_phase(phase: Phase, loop: LoopState, net, optimizer, generator: torch.Generator) -> None:
    """A phase's model, optimizer and random state: a fork's saved model and optimizer, and its own seed."""
    if phase.start == FORK:
        net.load_state_dict(loop.forks[phase.fork_of]["model"])
        # a copy: load_state_dict keeps the given tensors, which this fork's steps would then change for the next
        optimizer.load_state_dict(copy.deepcopy(loop.forks[phase.fork_of]["optimizer"]))
    if phase.seed is not None:
        seed_everything(phase.seed)
        generator.manual_seed(phase.seed)


def run_phase(
    task: Task,
    phase: Phase,
    loop: LoopState,
    net,
    model,
    optimizer,
    scheduler,
    params,
    generator,
    loader,
    runtime: Runtime,
    fabric: Fabric,
    cfg,
    epochs: int,
    save,
    tracker=None,
):
    """The remaining epochs of ``phase``: each one's data, training pass, validation, best epoch, history,
    checkpoint and the tracker's numbers (``rrx.loggers``; rank 0's). Returns the last loader (the next phase may go
    on with its data)."""
    rank, world = fabric.global_rank, fabric.world_size
    history = loop.history.setdefault(phase.name, [])
    for epoch in range(loop.phase_epoch + 1, phase.epochs + 1):
        path_epoch = phase.first_epoch - 1 + epoch
        where = f"epoch {path_epoch}" + (f" ({phase.label})" if phase.label else "")
        start = time.perf_counter()
        draws = generator
        if world > 1:  # each rank its own random draws (RRDA partners, attack starts, ...); batch order stays shared
            seed = rank_seed(int(cfg.seed), rank, loop.epoch + 1)
            seed_everything(seed)
            draws = torch.Generator().manual_seed(seed)
        data = task.training_set(phase, epoch, net)
        if (
            data is not None and world > 1
        ):  # every rank built it from the same model; rank 0's (ADA's windows) is everyone's
            task.load_state_dict(fabric.broadcast(task.state_dict()))
            data = task.resumed_set(phase)
        if data is not None or loader is None:
            loader = runtime.train_loader(task.resumed_set(phase) if data is None else data, generator)
        stats = train_epoch(
            task, model, loader, optimizer, scheduler, params, draws, where, loop, fabric, runtime.progress
        )
        entry = {"epoch": path_epoch, **stats, **(task.validate(phase, epoch, net) or {})}
        entry["seconds"] = time.perf_counter() - start
        history.append(entry)
        if phase.best:
            best = loop.best.get(phase.name)
            if best is None or task.score(entry) > task.score(best["record"]):
                loop.best[phase.name] = {
                    "epoch": path_epoch,
                    "record": entry,
                    "state_dict": _cpu_copy(net.state_dict()),
                }
        loop.phase_epoch, loop.epoch = epoch, loop.epoch + 1
        log.info(
            "epoch %d/%d%s  loss %.4f  %s  %.1f s",
            loop.epoch,
            epochs,
            f" ({where})" if phase.label else "",
            stats["loss"],
            task.summary(entry),
            entry["seconds"],
        )
        if tracker is not None:
            numbers = flat_numbers({k: v for k, v in entry.items() if k != "epoch"})
            tracker.log_metrics({f"{phase.name}/{k}" if phase.label else k: v for k, v in numbers.items()}, loop.epoch)
        save(finished=False)
    return loader
