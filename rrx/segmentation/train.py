"""``rrx train task=segmentation``: the thesis's chapter 3 protocol, with checkpoints, resume and ``metrics.json``.

``method=standard``: a U-Net trained ``trainer.epochs`` epochs. ``method=ada`` (thesis 3.2.3): a U-Net trained
``method.standard_epochs`` epochs on the conventional data (Alg. 1 lines 1-3), then forked: one copy per method in
``segmentation.attributions`` continues with ADA for ``method.cycles`` cycles of ``method.ada_epochs`` epochs
(Alg. 1 lines 4-7: each cycle recomputes every training image's erased window with the fork's current model and
trains on the conventional data plus these ADA images), and with ``segmentation.baseline`` a plain copy continues
on the conventional data alone for as many epochs, the U-Net row of Tables 3-4. Every fork starts from the same
model and optimizer state; its random draws are seeded by the run's seed and its position in the protocol, so a
fork's result does not depend on the others.

The conventional data (Alg. 1 line 1) are the training images plus, with ``segmentation.augment=table2``, an
augmented copy of each (Table 2, drawn afresh each epoch). After every epoch the validation images are scored
(Table 1's metrics); each fork keeps its epoch with the best validation DSC (the thesis: "the epoch of each model
with the best validation results"), chosen among its own epochs after the fork, whose validation metrics are its
Table 3 row and whose robustness-set metrics (Alg. 2) its Table 4 row. The windows each method erases in the first
ADA cycle, all computed on the forked model, give the IoU matrix of Fig. 10.

Adam (``segmentation.optimizer``, thesis: lr 0.001) at a constant learning rate; ``trainer.batch_size`` images a
batch; one device.
"""

from __future__ import annotations

import copy
import logging
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import ConcatDataset, Dataset

from rrx.checkpoint import CHECKPOINT, open_run, record_stop, restore_rng_states, rng_states, save_checkpoint
from rrx.guard import guarded_step
from rrx.models.unet import create_unet
from rrx.outputs import ERROR, record_hydra_config, write_json, write_status
from rrx.runtime import Runtime, seed_everything
from rrx.schema import validate
from rrx.report.segmentation import write_run_tables
from rrx.segmentation.ada import (ATTRIBUTIONS, ada_windows, check_window, robustness_batch, robustness_corners,
                                  with_ada_images)
from rrx.segmentation.augment import Augmented
from rrx.segmentation.data import SegmentationData, create_segmentation_data
from rrx.segmentation.metrics import iou_matrix, per_image, soft_dice_loss, summarise
from rrx.segmentation.task import check_segmentation
from rrx.signals import Stopped, stop_on_signals

log = logging.getLogger(__name__)
BASELINE = "unet"  # the fork that continues without ADA


@dataclass(frozen=True)
class Fork:
    """One row of Tables 3-4: ``name`` (``unet`` or an attribution method), ``attribution`` (None: no ADA)."""

    name: str
    attribution: str | None
    label: str


@dataclass(frozen=True)
class Plan:
    """Epochs before the fork, epochs of each fork, the forks, and ADA's cycle length and window."""

    standard_epochs: int
    fork_epochs: int
    forks: tuple[Fork, ...]
    ada_epochs: int
    window: int

    @property
    def total(self) -> int:
        return self.standard_epochs + len(self.forks) * self.fork_epochs


def make_plan(cfg: DictConfig) -> Plan:
    """The protocol ``cfg`` asks for (see the module docstring)."""
    label = cfg.model.display_name
    if cfg.method.name == "standard":
        return Plan(0, int(cfg.trainer.epochs), (Fork(BASELINE, None, label),), 1, 0)
    seg = cfg.segmentation
    forks = [Fork(BASELINE, None, label)] if seg.baseline else []
    forks += [Fork(a, a, f"{label} + ADA ({ATTRIBUTIONS[a]})") for a in seg.attributions]
    m = cfg.method
    return Plan(int(m.standard_epochs), int(m.cycles) * int(m.ada_epochs), tuple(forks), int(m.ada_epochs), int(m.window))


def phase_seed(seed: int, phase: str) -> int:
    """The seed of a phase (``standard``, or a fork's name): the same whichever other forks the run has."""
    return int(np.random.SeedSequence([seed, zlib.crc32(phase.encode())]).generate_state(1)[0])


def make_loss(name: str):
    """``dice``: the soft Dice loss; ``bce``: binary cross-entropy of the sigmoid output."""
    return soft_dice_loss if name == "dice" else lambda probs, m: F.binary_cross_entropy(probs.float(), m.float())


@torch.no_grad()
def evaluate(model, batches, threshold: float, spacing: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Table 1's metrics per image over ``batches`` of (x, m), the prediction being ``model(x) > threshold``;
    ``spacing`` (N, 2) gives HSD in the images' physical units."""
    model.eval()
    parts, start = [], 0
    for x, m in batches:
        step = None if spacing is None else spacing[start : start + len(x)]
        parts.append(per_image(model(x) > threshold, m > 0.5, step))
        start += len(x)
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def validation_batches(data: Dataset, runtime: Runtime):
    for x, _, m in runtime.loader(data, shuffle=False):
        yield x.to(runtime.device), m.to(runtime.device)


def robustness_batches(data: Dataset, runtime: Runtime, z: int):
    """Alg. 2: each validation image with a z x z region erased at every grid position, in batches of
    ``trainer.batch_size`` images."""
    for x, m in validation_batches(data, runtime):
        erased, truth = robustness_batch(x, m, z)
        yield from zip(erased.split(runtime.batch_size), truth.split(runtime.batch_size))


def train_epoch(model, loader, optimizer, loss_fn, runtime: Runtime, where: str) -> float:
    """One pass; stops (``guarded_step``: RRXError naming ``where`` and the step) on a non-finite loss, gradient or
    parameter."""
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    total, seen = 0.0, 0
    for step, (x, _, m) in enumerate(loader, 1):
        x, m = x.to(runtime.device), m.to(runtime.device)
        with runtime.autocast():
            probs = model(x)
        loss = loss_fn(probs, m)
        guarded_step(loss.item(), loss.backward, optimizer, params, f"{where}, step {step}",
                     "lower segmentation.optimizer.lr")
        total += loss.item() * len(x)
        seen += len(x)
    return total / seen


def _cpu_copy(state: dict) -> dict:
    return copy.deepcopy({k: v.detach().cpu() if torch.is_tensor(v) else v for k, v in state.items()})


class SegmentationRun:
    """One run of the protocol in ``out_dir``; ``resume`` is the checkpoint dict of an unfinished run, or None."""

    def __init__(self, cfg: DictConfig, out_dir: Path, resume: dict | None):
        self.cfg, self.out_dir = cfg, out_dir
        self.plan = make_plan(cfg)
        seg = cfg.segmentation
        self.threshold, self.robustness_window = float(seg.threshold), int(seg.robustness_window)
        self.loss_fn = make_loss(seg.loss)
        seed_everything(int(cfg.seed))
        self.runtime = Runtime.from_config(cfg.trainer, cfg.dataset)
        self.data: SegmentationData = create_segmentation_data(cfg.dataset)
        self.model = create_unet(cfg.model, self.data.channels, self.data.mean, self.data.std,
                                 int(cfg.dataset.image_size)).to(self.runtime.device)
        self.optimizer = self.new_optimizer()
        self.generator = torch.Generator()
        self.conventional: Dataset = self.data.train
        self.augmented = None
        if seg.augment == "table2":
            self.augmented = Augmented(self.data.train, int(seg.augment_seed))
            self.conventional = ConcatDataset([self.data.train, self.augmented])
        self.started = time.time()
        self.state = {"phase": 0, "phase_epoch": 0, "epoch": 0, "fork": None, "history": {}, "best": {}, "windows": {},
                      "first_windows": {}, "ada_images": {}}
        self.resumed_after = None
        if resume is not None:
            self.model.load_state_dict(resume["state_dict"])
            self.optimizer.load_state_dict(resume["optimizer"])
            restore_rng_states(resume["rng"], self.generator)
            self.state, self.started, self.resumed_after = resume["protocol"], resume["started"], resume["epoch"]
            log.info("Resuming %s after epoch %d of %d", out_dir, resume["epoch"], self.plan.total)

    def new_optimizer(self):
        return instantiate(self.cfg.segmentation.optimizer)(params=self.model.parameters())

    def phases(self) -> list[tuple[str, Fork | None, int]]:
        """(name, fork or None for the standard epochs, epochs) in order."""
        return [("standard", None, self.plan.standard_epochs)] + [(f.name, f, self.plan.fork_epochs) for f in self.plan.forks]

    def save(self, finished: bool = False) -> None:
        payload = {"state_dict": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                   "rng": rng_states(self.generator), "config": OmegaConf.to_container(self.cfg, resolve=True),
                   "task": "segmentation", "protocol": self.state, "epoch": self.state["epoch"], "epochs": self.plan.total,
                   "finished": finished, "started": self.started}
        save_checkpoint(self.out_dir / CHECKPOINT, payload)
        write_status(self.out_dir, "finished" if finished else "running", self.state["epoch"], self.plan.total)

    def start_phase(self, name: str, fork: Fork | None) -> None:
        """A phase's model, optimizer and random state: the forked ones for a fork, seeded afresh."""
        if fork is not None:
            self.model.load_state_dict(self.state["fork"]["model"])
            self.optimizer = self.new_optimizer()
            # a copy: load_state_dict keeps the given tensors, which this fork's steps would then change for the next
            self.optimizer.load_state_dict(copy.deepcopy(self.state["fork"]["optimizer"]))
        seed = phase_seed(int(self.cfg.seed), name)
        seed_everything(seed)
        self.generator.manual_seed(seed)

    def epoch_data(self, fork: Fork | None, epoch: int, path_epoch: int) -> Dataset:
        """The training data of a phase's ``epoch`` (1-based): the conventional data, plus the fork's ADA images,
        their windows recomputed at the first epoch of each cycle."""
        if self.augmented is not None:
            self.augmented.set_epoch(path_epoch)
        if fork is None or fork.attribution is None:
            return self.conventional
        z = self.plan.window
        if (epoch - 1) % self.plan.ada_epochs == 0:
            corners = ada_windows(self.model, self.data.train, fork.attribution, z, self.runtime)
            self.state["windows"][fork.name] = corners
            self.state["first_windows"].setdefault(fork.name, corners)
            found = int((corners[:, 0] >= 0).sum())
            self.state["ada_images"].setdefault(fork.name, []).append(found)
            log.info("ADA cycle %d (%s): %d of %d images got a %dx%d window", (epoch - 1) // self.plan.ada_epochs + 1,
                     ATTRIBUTIONS[fork.attribution], found, len(corners), z, z)
        return with_ada_images(self.conventional, self.data.train, self.state["windows"][fork.name], z)

    def train_phase(self, name: str, fork: Fork | None, epochs: int) -> None:
        offset = self.plan.standard_epochs if fork is not None else 0
        history = self.state["history"].setdefault(name, [])
        for epoch in range(self.state["phase_epoch"] + 1, epochs + 1):
            path_epoch = offset + epoch
            where = f"epoch {path_epoch}" + (f" ({fork.label})" if fork and self.cfg.method.name == "ada" else "")
            start = time.perf_counter()
            data = self.epoch_data(fork, epoch, path_epoch)
            loader = self.runtime.loader(data, shuffle=True, generator=self.generator)
            loss = train_epoch(self.model, loader, self.optimizer, self.loss_fn, self.runtime, where)
            val = summarise(evaluate(self.model, validation_batches(self.data.val, self.runtime), self.threshold,
                                     self.data.val_spacing))
            seconds = time.perf_counter() - start
            history.append({"epoch": path_epoch, "loss": loss, "validation": val, "images": len(data), "seconds": seconds})
            if fork is not None:
                best = self.state["best"].get(name)
                if best is None or val["mean"]["DSC"] > best["validation"]["mean"]["DSC"]:
                    self.state["best"][name] = {"epoch": path_epoch, "validation": val,
                                                "state_dict": _cpu_copy(self.model.state_dict())}
            self.state["phase_epoch"], self.state["epoch"] = epoch, self.state["epoch"] + 1
            log.info("[%d/%d] %s: loss %.4f  validation DSC %.2f  %.1f s", self.state["epoch"], self.plan.total, where,
                     loss, val["mean"]["DSC"], seconds)
            self.save()

    def run(self) -> dict:
        write_status(self.out_dir, "running", self.state["epoch"], self.plan.total)
        try:
            for index, (name, fork, epochs) in enumerate(self.phases()):
                if index < self.state["phase"]:
                    continue
                if self.state["phase_epoch"] == 0:
                    self.start_phase(name, fork)
                self.train_phase(name, fork, epochs)
                if index == 0:
                    self.state["fork"] = {"model": _cpu_copy(self.model.state_dict()),
                                          "optimizer": copy.deepcopy(self.optimizer.state_dict())}
                self.state["phase"], self.state["phase_epoch"] = index + 1, 0
                self.save()
            metrics = self.results()
        except (Exception, KeyboardInterrupt, Stopped) as err:
            record_stop(self.out_dir, err, self.state["epoch"], self.plan.total)
            raise
        write_json(self.out_dir / "metrics.json", metrics)
        write_run_tables(metrics, self.out_dir)
        self.save(finished=True)
        return metrics

    def results(self) -> dict:
        """Each fork's best epoch on the validation and the robustness set, the IoU matrix, and the run's record."""
        spacing, z = self.data.val_spacing, self.robustness_window
        positions = len(robustness_corners(*self.data.val[0][0].shape[-2:], z))  # erased copies of each image
        robust_spacing = None if spacing is None else spacing.repeat_interleave(positions, dim=0)
        forks = {}
        for fork in self.plan.forks:
            best = self.state["best"][fork.name]
            self.model.load_state_dict(best["state_dict"])
            validation = best["validation"]
            robustness = summarise(evaluate(self.model, robustness_batches(self.data.val, self.runtime, z), self.threshold,
                                            robust_spacing))
            log.info("%s: best epoch %d, validation DSC %.2f, robustness DSC %.2f (%d images)", fork.label, best["epoch"],
                     validation["mean"]["DSC"], robustness["mean"]["DSC"], robustness["images"])
            forks[fork.name] = {"label": fork.label, "attribution": fork.attribution, "best_epoch": best["epoch"],
                                "validation": validation, "robustness": robustness,
                                "history": self.state["history"][fork.name],
                                "ada_images": self.state["ada_images"].get(fork.name)}
        first = self.state["first_windows"]
        cfg, plan = self.cfg, self.plan
        history = [h for name, _, _ in self.phases() for h in self.state["history"].get(name, [])]
        return {
            "run": {"task": "segmentation", "architecture": cfg.model.display_name,
                    "method": "ADA" if cfg.method.name == "ada" else "Standard", "dataset": cfg.dataset.name,
                    "model": cfg.model.name, "method_name": cfg.method.name, "attack": "none", "lam": float(cfg.method.lam),
                    "rrda": False, "seed": int(cfg.seed)},
            "challenges": {},
            "segmentation": {
                "protocol": {"standard_epochs": plan.standard_epochs, "fork_epochs": plan.fork_epochs,
                             "ada_epochs": plan.ada_epochs if plan.window else None, "window": plan.window or None,
                             "robustness_window": z, "loss": cfg.segmentation.loss, "augment": cfg.segmentation.augment,
                             "threshold": self.threshold},
                "hsd_unit": "pixels" if spacing is None else "mm",
                "standard": {"history": self.state["history"].get("standard", [])},
                "forks": forks,
                "iou": iou_matrix({ATTRIBUTIONS[a]: w for a, w in first.items()}, plan.window) if len(first) > 1 else None,
                "first_cycle_windows": {a: w.tolist() for a, w in first.items()},
            },
            "train": {"seconds": sum(h["seconds"] for h in history), "images": len(self.data.train),
                      "val_images": len(self.data.val), "device": str(self.runtime.device), "devices": 1,
                      "resumed_after_epoch": self.resumed_after},
            "data": self.data.info,
            "checkpoint": CHECKPOINT,
            "started": self.started,
            "finished": time.time(),
        }


def train_segmentation(cfg: DictConfig, out_dir: Path) -> dict:
    """Run ``cfg``'s segmentation protocol in ``out_dir`` (a new run, the same unfinished run resumed, or the same
    finished run returned), as ``rrx.train.train`` does for classification. Returns the metrics dict."""
    validate(cfg)
    check_segmentation(cfg)
    size = int(cfg.dataset.image_size)
    if cfg.method.name == "ada":
        check_window("method.window", int(cfg.method.window), size)
    check_window("segmentation.robustness_window", int(cfg.segmentation.robustness_window), size)
    out_dir = Path(out_dir)
    run = open_run(out_dir, cfg)
    with run.folder, stop_on_signals():
        if run.metrics is not None:
            log.info("%s already holds this run, finished: nothing to do", out_dir)
            return run.metrics
        (out_dir / ERROR).unlink(missing_ok=True)
        record_hydra_config(out_dir, cfg)
        return SegmentationRun(cfg, out_dir, run.checkpoint).run()
