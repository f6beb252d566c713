"""What a task tells the training loop (``rrx.train``): the contract ``classification`` and ``segmentation`` implement.

A task knows its science: which settings it takes, its model and data, its phases, the loss of a batch, how it
validates and evaluates, and (module-level ``TABLES`` and ``FIGURES``, ``rrx.tables``) the tables of its own
record sections. The loop knows the run: the folder and its lock, Fabric, seeds, the
non-finite guard, the scheduler, the checkpoint, resume, ``status.json`` and the record. So a capability of the loop
(data-parallel ranks, ``torch.compile``, channels-last, resume) reaches both tasks at once, or a task refuses it in
``check`` with one ``rrx: error:`` line; it is never silently ignored.

One call order, for every task (``rrx.train._train``)::

    check()                          before any data is read (also before the run folder is claimed)
    setup(runtime, generator) -> model   data, model (not yet placed), the task's components
    optimizer(params), scheduler(optimizer, steps)
    phases()                         e.g. [train] or [standard, fork 1, fork 2, ...]
    for each phase: the loop seeds it (Phase.seed), starts it from the run's state or a fork (Phase.start), then
        each epoch: training_set(phase, epoch, model) -> new data or None; step(model, batch, generator) per batch;
        validate(phase, epoch, model) -> the epoch's validation (or None); the best epoch kept (Phase.best)
    finish(model, loop) -> the run's ``Record`` (``rrx.record``), which the loop completes with its timing and writes
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch.utils.data import Dataset

from rrx.record import Record

CONTINUE, FORK = "continue", "fork"  # Phase.start


@dataclass(frozen=True)
class Phase:
    """One stretch of training with its own history.

    Args:
        name (str): the phase's key in the history and the checkpoint (``train``, ``standard``, a fork's name).
        epochs (int): its length.
        label (str): how logs and error messages name it ("" for a task's only phase).
        start (str): ``continue`` from the model and optimizer as the previous phase left them, or ``fork`` from
            the state the phase ``fork_of`` ended with (every fork of a protocol starts from the same state).
        fork_of (str): the phase a ``fork`` starts from.
        seed (int | None): the phase's random state, set at its start (torch, NumPy, Python and the generator that
            orders batches), so a phase's result does not depend on the phases before it; None keeps the run's.
        first_epoch (int): the number its first epoch has on the model's own path (a fork after 3 standard epochs
            starts at 4), as the history records it.
        best (bool): keep the epoch with the best validation score (``Task.score``) and evaluate that one; False:
            the last epoch.
    """

    name: str
    epochs: int
    label: str = ""
    start: str = CONTINUE
    fork_of: str | None = None
    seed: int | None = None
    first_epoch: int = 1
    best: bool = False


class Task:
    """Base class of tasks; ``rrx.tasks.register_task`` registers a subclass under ``cfg.task``.

    Args:
        cfg: the composed ``rrx train`` config.
    """

    name = "task"
    fix = "lower the learning rate"  # what the non-finite guard's error suggests
    forward_methods: tuple[str, ...] = ()  # model methods training calls besides forward (through DDP and compile too)

    def __init__(self, cfg: DictConfig):
        self.cfg = cfg
        self.folder: Path | None = None  # the run folder, set by the loop before setup: what the run keeps there

    # --- before training -----------------------------------------------------------------------------------------
    def check(self) -> None:
        """Raise RRXError for any setting the task cannot honour, before data are read or the folder is claimed."""

    def setup(self, runtime, generator: torch.Generator) -> torch.nn.Module:
        """Build data, model and the task's components for ``runtime``; returns the model (the loop places it).
        ``generator`` is the run's (seeded by ``seed``), which then orders the batches."""
        raise NotImplementedError

    def optimizer(self, params) -> torch.optim.Optimizer:
        raise NotImplementedError

    def scheduler(self, optimizer: torch.optim.Optimizer):
        """The learning-rate scheduler stepped after every batch, or None."""
        return None

    def phases(self) -> list[Phase]:
        raise NotImplementedError

    @property
    def double_backprop(self) -> bool:
        """Training differentiates input gradients (no channels-last on CPU, no torch.compile)."""
        return False

    @property
    def label(self) -> str:
        """The method's name in logs."""
        return self.cfg.method.name

    def identity(self) -> dict:
        """What the checkpoint stores to say what was trained, besides the config (e.g. the class names)."""
        return {}

    # --- training ------------------------------------------------------------------------------------------------
    def training_set(self, phase: Phase, epoch: int, model: torch.nn.Module) -> Dataset | None:
        """The data of ``epoch`` (1-based within ``phase``), or None to keep the previous epoch's."""
        raise NotImplementedError

    def resumed_set(self, phase: Phase) -> Dataset:
        """The data a resumed run trains on until ``training_set`` gives new data."""
        raise NotImplementedError

    def step(self, model: torch.nn.Module, batch, generator: torch.Generator) -> tuple[torch.Tensor, dict]:
        """The loss of one batch and its logs: ``images`` (how many the loss averages over) and, for a classifier,
        ``correct``."""
        raise NotImplementedError

    def end_phase(self, phase: Phase, model: torch.nn.Module) -> None:
        """Called when ``phase`` has trained its last epoch, before the next phase starts (and before the checkpoint
        that records the phase as done): e.g. JTT's error set of its identification model."""

    def validate(self, phase: Phase, epoch: int, model: torch.nn.Module) -> dict | None:
        """Entries added to the epoch's history (e.g. its validation metrics), or None."""
        return None

    def summary(self, record: dict) -> str:
        """What the log line of an epoch shows besides its loss (e.g. ``train acc 93.75%``)."""
        return ""

    def score(self, record: dict) -> float:
        """The validation score a ``best`` phase maximises, from ``validate``'s entries."""
        raise NotImplementedError

    # --- after training ------------------------------------------------------------------------------------------
    def finish(self, model: torch.nn.Module, loop: "LoopState") -> Record:
        """Evaluate and return the run's record (``command="train"``): ``run``, ``challenges``, ``data``, the task's
        ``sections`` and its entries of the ``train`` section; the loop adds its timing and the checkpoint."""
        raise NotImplementedError

    # --- in rrx report -------------------------------------------------------------------------------------------
    report_heading = "Dataset"  # report.md's section of one dataset's runs: "## <heading> `<dataset>` (<n> runs)"

    @staticmethod
    def report_note(records: list[Record]) -> str | None:
        """What the task's numbers are, under its report heading (units, what a row is); None: nothing to add."""
        return None

    # --- what a checkpoint keeps of the task ---------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned, from a checkpoint dict."""

    @staticmethod
    def upgrade_config(saved: dict) -> dict:
        """A checkpoint's config (a plain dict) in today's keys, where an older rrx spelled or used it otherwise."""
        return saved

    @staticmethod
    def loop_state(ckpt: dict) -> dict:
        """The ``LoopState`` fields of a checkpoint written before the one loop (no ``loop`` key)."""
        raise NotImplementedError

    def describe(self) -> str:
        """What is trained, for the log: e.g. ``ResNet-18 / RRR on synthetic``."""
        return f"{self.cfg.model.name} / {self.cfg.method.name} on {self.cfg.dataset.name}"


@dataclass
class LoopState:
    """Where the loop is, as the checkpoint keeps it.

    Args:
        phase (int): index of the phase in progress (``len(phases)`` when all are done).
        phase_epoch (int): epochs of that phase done.
        epoch (int): epochs done in all.
        step (int): optimizer steps done in all.
        history (dict): per phase name, one entry per epoch (``epoch``, ``loss``, ``acc`` for a classifier,
            ``seconds``, and what ``Task.validate`` adds).
        best (dict): per ``best`` phase, its best epoch so far: ``epoch``, ``record`` (its history entry) and
            ``state_dict`` (the model then, on the CPU).
        forks (dict): per phase that others fork from, the model and optimizer states it ended with.
    """

    phase: int = 0
    phase_epoch: int = 0
    epoch: int = 0
    step: int = 0
    history: dict = field(default_factory=dict)
    best: dict = field(default_factory=dict)
    forks: dict = field(default_factory=dict)

    def __post_init__(self):  # a checkpoint's None: empty
        self.history = {} if self.history is None else self.history
        self.best = {} if self.best is None else self.best
        self.forks = {} if self.forks is None else self.forks

    @classmethod
    def of(cls, ckpt: dict, task: Task) -> "LoopState":
        """The loop's state a checkpoint holds; one written before the one loop (no ``loop`` key) through the task's
        ``loop_state``."""
        return cls(**(ckpt["loop"] if "loop" in ckpt else task.loop_state(ckpt)))

    def state_dict(self) -> dict:
        return {
            "phase": self.phase,
            "phase_epoch": self.phase_epoch,
            "epoch": self.epoch,
            "step": self.step,
            "history": self.history,
            "best": self.best,
            "forks": self.forks,
        }
