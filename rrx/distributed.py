"""Data-parallel training through Lightning Fabric: one process ("rank") per device, DDP averaging the gradients.

Why Fabric rather than ``torchrun`` and ``torch.distributed`` by hand: Fabric keeps rrx's own training loop
(``fabric.launch``, ``fabric.setup(model, optimizer)``, ``fabric.backward(loss)``), picks the backend (gloo on
CPU, NCCL on CUDA), and finds the cluster environment (SLURM, torchrun) by itself, so ``rrx train`` stays
one command and no process-group code lives in rrx.

How the ranks start:

- On one node, ``trainer.devices=N`` spawns N worker processes (Fabric's ``ddp_spawn``) that each run
  ``rrx.train._train`` with the config and run folder the parent resolved. Fabric's other launcher re-runs
  the command line per rank, which does not fit a Hydra app: each rank would resolve its own
  ``${now:...}-${rrx_unique:}`` run folder, and rrx's dispatcher has already consumed the ``train`` word.
  The parent locks the run folder and waits; rank 0 (a worker) writes into it.
- On many nodes (``trainer.num_nodes=M``) SLURM (``srun``, one task per device) or ``torchrun`` starts every
  rank itself, and each runs ``rrx train`` with the same ``hydra.run.dir``; rank 0 locks and writes the
  folder, the other ranks only read a checkpoint to resume from.
"""

from __future__ import annotations

import logging
import logging.config
import multiprocessing
import os
import signal
import time
from typing import Any, Callable, cast

import numpy as np
import torch
from lightning_fabric import Fabric
from lightning_fabric.strategies import ParallelStrategy
from omegaconf import OmegaConf
from torch.multiprocessing import ProcessRaisedException

from rrx.errors import RRXError
from rrx.runtime import resolve_device
from rrx.signals import Stopped, stop_on_signals


def create_fabric(trainer) -> Fabric:
    """A Fabric for ``trainer.device`` (``auto``/``cpu``/``cuda`` gives the accelerator), ``trainer.devices``
    processes per node on ``trainer.num_nodes`` nodes, with ``trainer.strategy`` (checked: ``rrx.settings``).

    One device in all is the single-device path (no process group, no wrapper that changes numbers: float32
    precision, rrx's own autocast). More is DDP. Raises RRXError for more devices than this node has (GPUs
    visible, or CPUs for CPU ranks), or a torch without the backend.
    """
    device = resolve_device(trainer.device)
    devices, nodes = int(trainer.devices), int(trainer.num_nodes)
    chosen: list[int] | int  # Fabric's devices: the GPU indices, or how many
    if device.type == "cuda":
        visible = torch.cuda.device_count()
        if device.index is not None and devices > 1:
            raise RRXError(
                f"trainer.device={trainer.device} names one GPU but trainer.devices={devices}; use "
                "trainer.device=cuda (the ranks take GPUs 0..N-1; choose them with CUDA_VISIBLE_DEVICES)"
            )
        if devices > visible:
            raise RRXError(
                f"trainer.devices={devices} but this node has {visible} GPU(s) visible; "
                f"use trainer.devices={visible} or fewer (GPUs per node)"
            )
        chosen = [device.index] if device.index is not None else devices
    elif device.type == "cpu":
        cpus = len(os.sched_getaffinity(0))
        if devices > cpus:
            raise RRXError(
                f"trainer.devices={devices} CPU processes but this node has {cpus} CPU(s) available; "
                f"use trainer.devices={cpus} or fewer, or trainer.device=cuda"
            )
        chosen = devices
    elif devices * nodes > 1:
        raise RRXError(
            f"trainer.devices={devices} trainer.num_nodes={nodes} on {device.type}: "
            "data-parallel training runs on cpu or cuda only"
        )
    else:
        chosen = 1
    accelerator = device.type
    if devices * nodes == 1:
        return Fabric(accelerator=accelerator, devices=chosen, strategy="auto", precision="32-true")
    tasks = os.environ.get("SLURM_NTASKS_PER_NODE", "").split("(")[0]  # e.g. "4" or "4(x2)"
    if tasks.isdigit() and int(tasks) != devices:
        raise RRXError(
            f"trainer.devices={devices} but this SLURM job runs {tasks} task(s) per node; SLURM must start one "
            f"task per device: set hydra.launcher.tasks_per_node={devices} (or srun --ntasks-per-node={devices})"
        )
    backend = "nccl" if accelerator == "cuda" else "gloo"
    if not torch.distributed.is_available() or (backend == "nccl" and not torch.distributed.is_nccl_available()):
        raise RRXError(
            f"trainer.strategy=ddp on {accelerator} needs torch.distributed with {backend}, which this "
            "torch build lacks; use trainer.devices=1 or a torch build with it"
        )
    fabric = Fabric(accelerator=accelerator, devices=chosen, num_nodes=nodes, strategy="ddp", precision="32-true")
    if _started_externally(fabric):  # SLURM tasks, torchrun
        return fabric
    if nodes > 1:
        raise RRXError(
            f"trainer.num_nodes={nodes} needs one process per device started on every node by SLURM "
            f"(srun with --ntasks-per-node={devices}) or torchrun (--nnodes={nodes} --nproc-per-node={devices})"
        )
    return Fabric(accelerator=accelerator, devices=chosen, strategy="ddp_spawn", precision="32-true")


def _started_externally(fabric: Fabric) -> bool:
    """Whether SLURM or torchrun starts the ranks of ``fabric``'s DDP strategy, as its cluster environment says."""
    environment = cast(ParallelStrategy, fabric.strategy).cluster_environment  # DDP's: a parallel strategy
    assert environment is not None  # Fabric gives its strategy one
    return environment.creates_processes_externally


def spawns_ranks(fabric: Fabric) -> bool:
    """Whether ``fabric.launch`` starts the ranks as new processes (``ddp_spawn`` on one node)."""
    return fabric.world_size > 1 and not _started_externally(fabric)


class _RankStopped(Exception):
    """A rank's ``Stopped`` (SIGTERM, SIGINT), carried as an Exception so torch's spawn reports it to the parent."""


def launch(fabric: Fabric, function, *args):
    """``function(fabric, *args)`` on every rank; returns rank 0's result.

    Spawned ranks log as the parent's Hydra job does (rank 0 into the run's ``train.log``, the others warnings
    only); a rank's RRXError or stop comes back to the parent as the same one-line error.
    """
    if not spawns_ranks(fabric):
        return fabric.launch(function, *args)
    from hydra.core.hydra_config import HydraConfig

    logging_config = None
    if HydraConfig.initialized():
        logging_config = OmegaConf.to_container(HydraConfig.get().job_logging, resolve=True)
    try:
        # launch passes *args on to its function; its annotation names the fabric argument alone
        return fabric.launch(cast(Callable[[Fabric], Any], _spawned), function, logging_config, *args)
    except ProcessRaisedException as err:  # a rank failed; torch has ended the others
        last = str(err).strip().splitlines()[-1]
        for cls, kind in ((RRXError, RRXError), (_RankStopped, Stopped)):
            prefix = f"{cls.__module__}.{cls.__name__}: "
            if last.startswith(prefix):
                raise kind(last.removeprefix(prefix)) from None
        raise
    except BaseException:  # stopped, or submitit's requeue exit: no rank may outlive the folder lock
        _stop_ranks()
        raise


def _stop_ranks(grace_s: float = 3.0) -> None:
    """SIGINT to the spawned ranks still running once this process was stopped (each stops at once, as Ctrl-C
    stops it; rank 0 records the stop), SIGKILL to those still running ``grace_s`` later (a rank waiting in a
    collective for a rank that is gone), and wait for them: a signal sent to the parent alone (``kill <pid>``,
    submitit's requeue) would otherwise leave them training."""
    ranks = multiprocessing.active_children()
    for rank in ranks:
        assert rank.pid is not None  # an active child has started
        try:
            os.kill(rank.pid, signal.SIGINT)
        except ProcessLookupError:  # already gone
            pass
    deadline = time.monotonic() + grace_s
    for rank in ranks:
        rank.join(timeout=max(0.0, deadline - time.monotonic()))
        if rank.is_alive():
            rank.kill()
            rank.join()


def _spawned(fabric: Fabric, function, logging_config: dict | None, *args):
    if "SUBMITIT_EXECUTOR" in os.environ:
        # In a submitit job the parent alone answers SLURM's signals (SIGUSR2: requeue; SIGTERM: ignored, see
        # rrx.signals.stop_on_signals) and stops the ranks with SIGINT when it exits (launch); a rank that took them
        # would end the job before it is requeued.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    if fabric.global_rank == 0 and logging_config is not None:
        logging.config.dictConfig(logging_config)
    else:
        logging.basicConfig(level=logging.WARNING)
    try:
        with stop_on_signals():
            return function(fabric, *args)
    except Stopped as stop:
        raise _RankStopped(str(stop)) from None


def check_same_folder(fabric: Fabric, out_dir) -> None:
    """Every rank must write into rank 0's run folder: ranks that SLURM or torchrun started each resolve their
    own, equal only when ``hydra.run.dir`` (or the sweep's) is given. Raises RRXError on every rank if not."""
    same = fabric.broadcast(str(out_dir)) == str(out_dir)
    # all_reduce takes an int or float too (its docstring), which its annotation leaves out; it gives a tensor back
    agreed = cast(torch.Tensor, fabric.all_reduce(float(same), reduce_op="sum"))  # type: ignore[arg-type]
    if agreed.item() < fabric.world_size:
        raise RRXError(
            f"the ranks resolved different run folders (rank {fabric.global_rank}: {out_dir}); give every rank "
            "the same hydra.run.dir=<folder> (hydra.sweep.dir for a sweep)"
        )


def rank_seed(seed: int, rank: int, epoch: int) -> int:
    """A seed for rank ``rank``'s random draws in ``epoch``: distinct per rank and epoch, so ranks draw
    different RRDA partners, attack starts and penalty samples, and a resumed run draws as an uninterrupted one."""
    return int(
        np.random.SeedSequence(seed % 2**63, spawn_key=(rank, epoch)).generate_state(1)[0]
    )  # < 2**32, as NumPy needs
