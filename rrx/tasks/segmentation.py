"""``task=segmentation``: the thesis's chapter 3 protocol, as phases of the one training loop (``rrx.train``).

``method=standard``: a U-Net trained ``trainer.epochs`` epochs. ``method=ada`` (thesis 3.2.3): a U-Net trained
``method.standard_epochs`` epochs on the conventional data (Alg. 1 lines 1-3), then forked: one copy per method in
``segmentation.attributions`` continues with ADA for ``method.cycles`` cycles of ``method.ada_epochs`` epochs
(Alg. 1 lines 4-7: each cycle recomputes every training image's erased window with the fork's current model and
trains on the conventional data plus these ADA images), and with ``segmentation.baseline`` a plain copy continues
on the conventional data alone for as many epochs, the U-Net row of Tables 3-4. Every fork starts from the same
model and optimizer state (``Phase.start="fork"``); its random draws are seeded by the run's seed and its name
(``phase_seed``), so a fork's result does not depend on the others.

The conventional data (Alg. 1 line 1) are the training images plus, with ``segmentation.augment=table2``, an
augmented copy of each (Table 2, drawn afresh each epoch). After every epoch the validation images are scored
(Table 1's metrics); each fork keeps its epoch with the best validation DSC (the thesis: "the epoch of each model
with the best validation results", ``Phase.best``), whose validation metrics are its Table 3 row and whose
robustness-set metrics (Alg. 2) its Table 4 row. The windows each method erases in the first ADA cycle, all computed
on the forked model, give the IoU matrix of Fig. 10.

Adam (``optimizer=adam``, thesis: lr 0.001) at a constant learning rate; ``trainer.batch_size`` images a batch.

The run's record holds the forks' results in its ``segmentation`` section (``Segmentation.section``); ``TABLES``
(Tables 3 and 4, the IoU matrix) and ``FIGURES`` (Figs. 8 and 10) read them (``rrx.segmentation.report``).
"""

from __future__ import annotations

import copy
import logging
import zlib
from collections.abc import Sized
from dataclasses import dataclass, replace
from functools import cached_property
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.utils.data import ConcatDataset, Dataset, Subset

from rrx.config import check, shown
from rrx.data.base import labels_of
from rrx.errors import RRXError
from rrx.masks import create_mask_source
from rrx.methods.ada import AdaSchedule
from rrx.models.unet import create_unet
from rrx.record import Record
from rrx.segmentation.ada import (
    ATTRIBUTIONS,
    ada_windows,
    check_window,
    robustness_batch,
    robustness_corners,
    with_ada_images,
)
from rrx.segmentation.augment import Augmented
from rrx.segmentation.data import OBJECT_MASK_DATASETS, SegmentationData, create_segmentation_data
from rrx.segmentation.metrics import iou_matrix, per_image, soft_dice_loss, summarise
from rrx.segmentation.report import (
    dice_curves,
    has_iou,
    iou_figure,
    iou_table,
    is_segmentation,
    note,
    robustness_table,
    validation_table,
)
from rrx.tables import Figure, Table
from rrx.tasks import register_task
from rrx.tasks.base import FORK, Phase, Task

log = logging.getLogger(__name__)
BASELINE = "unet"  # the fork that continues without ADA
SEGMENTATION_MODELS = ("unet",)
SEGMENTATION_METHODS = ("standard", "ada")  # plain training, and the thesis's ADA protocol (ch. 3)
SEGMENTATION_ONLY_DATASETS = ("scgm",)
SEGMENTATION_DATASETS = (*OBJECT_MASK_DATASETS, *SEGMENTATION_ONLY_DATASETS)
# Settings of the loop and of classification that the protocol cannot honour, each with the only value it takes and
# why: any other value is one error line (rrx before the one loop ignored them; old runs' configs read as this value).
# A key the typed config of the chosen component does not have (method.lam of method=standard and ADA) is refused
# when the config is composed; one a dataset does not have (scgm's dataset.augment) reads as this value.
NOT_FOR_SEGMENTATION = {
    "trainer.scheduler": ("none", "the protocol trains at a constant learning rate (thesis 3.2.3)"),
    "trainer.val_fraction": (0.0, "the protocol validates on the dataset's own validation images"),
    "dataset.augment": (
        "none",
        "that is classification's crops and flips; segmentation.augment=table2 augments image and "
        "mask together (thesis Table 2)",
    ),
}


def check_segmentation(cfg) -> None:
    """Everything ``task=segmentation`` needs of the config, before any data is read."""
    if cfg.model.name not in SEGMENTATION_MODELS:
        raise RRXError(
            f"task=segmentation needs a model that segments: model={cfg.model.name} cannot; "
            f"valid: {', '.join(f'model={m}' for m in SEGMENTATION_MODELS)}"
        )
    if cfg.method.name not in SEGMENTATION_METHODS:
        raise RRXError(
            f"task=segmentation trains with {' or '.join(f'method={m}' for m in SEGMENTATION_METHODS)}; "
            f"method={cfg.method.name} cannot segment"
        )
    if cfg.method.rrda:
        raise RRXError(
            "method.rrda=true is for classification (RRDA pastes objects onto other images' backgrounds); "
            "use method.rrda=false with task=segmentation"
        )
    if cfg.attack.name != "none":
        raise RRXError(f"attack={cfg.attack.name} is for classification; use attack=none with task=segmentation")
    if cfg.get("challenge") is not None:  # conf/task/segmentation.yaml leaves it out: a challenge=<name> was given
        raise RRXError(
            "task=segmentation takes no challenge (a classifier's test): it scores its own validation and robustness "
            "sets (segmentation.robustness_window); drop challenge=<name>"
        )
    if cfg.dataset.name not in SEGMENTATION_DATASETS:
        raise RRXError(
            f"task=segmentation needs object masks: dataset={cfg.dataset.name} has none to segment; "
            f"valid: {', '.join(SEGMENTATION_DATASETS)}"
        )
    if int(cfg.trainer.devices) * int(cfg.trainer.num_nodes) != 1:
        raise RRXError("task=segmentation trains on one device: use trainer.devices=1 trainer.num_nodes=1")
    mask = cfg.mask.name if "mask" in cfg else "labelled"
    if mask not in ("labelled", "fraction"):
        raise RRXError(
            f"mask={mask} makes masks for a classifier to train on; task=segmentation trains on labelled masks: "
            "give mask=labelled, or mask=fraction mask.p=<share> to train on a labelled share"
        )
    for key, (value, why) in NOT_FOR_SEGMENTATION.items():
        given = OmegaConf.select(cfg, key, default=value)
        if given != value:
            raise RRXError(f"{key}={shown(given)} is not used by task=segmentation: {why}; use {key}={shown(value)}")
    seg = cfg.segmentation  # its choices and ranges: rrx.settings.SegmentationConfig (check)
    size = int(cfg.dataset.image_size)
    if cfg.method.name == "ada":
        check_window("method.window", int(cfg.method.window), size)
        if len(set(seg.attributions)) != len(seg.attributions):
            raise RRXError(f"segmentation.attributions={list(seg.attributions)} names a method twice")
        if not seg.attributions and not seg.baseline:
            raise RRXError(
                "method=ada with segmentation.attributions=[] and segmentation.baseline=false has nothing to "
                "train after the standard epochs: give an attribution method"
            )
        if not seg.attributions:
            log.warning(
                "segmentation.attributions=[]: after the standard epochs only the plain fork (no ADA) trains; "
                "give attribution methods for ADA's forks"
            )
        if int(cfg.method.cycles) * int(cfg.method.ada_epochs) < 1:
            raise RRXError(
                f"method.cycles={cfg.method.cycles}: the segmentation protocol picks each fork's best epoch "
                "among its ADA epochs, so it needs at least one cycle"
            )
    check_window("segmentation.robustness_window", int(seg.robustness_window), size)


@dataclass(frozen=True)
class Fork:
    """One row of Tables 3-4: ``name`` (``unet`` or an attribution method), ``attribution`` (None: no ADA)."""

    name: str
    attribution: str | None
    label: str


def phase_seed(seed: int, phase: str) -> int:
    """The seed of a phase (``standard``, or a fork's name): the same whichever other forks the run has."""
    return int(np.random.SeedSequence([seed, zlib.crc32(phase.encode())]).generate_state(1)[0])


def make_loss(name: str):
    """``dice``: the soft Dice loss; ``bce``: binary cross-entropy of the sigmoid output."""
    return soft_dice_loss if name == "dice" else lambda probs, m: F.binary_cross_entropy(probs.float(), m.float())


@torch.no_grad()
def score(model, batches, threshold: float, spacing: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Table 1's metrics per image over ``batches`` of (x, m), the prediction being ``model(x) > threshold``;
    ``spacing`` (N, 2) gives HSD in the images' physical units."""
    model.eval()
    parts, start = [], 0
    for x, m in batches:
        step = None if spacing is None else spacing[start : start + len(x)]
        parts.append(per_image(model(x) > threshold, m > 0.5, step))
        start += len(x)
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def validation_batches(data: Dataset, runtime):
    for x, _, m in runtime.loader(data, shuffle=False):
        yield x.to(runtime.device), m.to(runtime.device)


def robustness_batches(data: Dataset, runtime, z: int):
    """Alg. 2: each validation image with a z x z region erased at every grid position, in batches of
    ``trainer.batch_size`` images."""
    for x, m in validation_batches(data, runtime):
        erased, truth = robustness_batch(x, m, z)
        yield from zip(erased.split(runtime.batch_size), truth.split(runtime.batch_size))


def robustness(model, data: SegmentationData, runtime, threshold: float, z: int) -> dict:
    """Table 4's metrics of ``model`` on the robustness set of window ``z`` (Alg. 2)."""
    h, w = data.val[0][0].shape[-2:]
    positions = len(robustness_corners(h, w, z))  # erased copies of each image
    spacing = None if data.val_spacing is None else data.val_spacing.repeat_interleave(positions, dim=0)
    return summarise(score(model, robustness_batches(data.val, runtime, z), threshold, spacing))


@register_task("segmentation")
class Segmentation(Task):
    name = "segmentation"
    fix = "lower optimizer.lr"
    report_heading = "Segmentation, dataset"
    report_note = staticmethod(note)

    def __init__(self, cfg):
        super().__init__(cfg)
        self.threshold = float(cfg.segmentation.threshold)
        self.robustness_window = int(cfg.segmentation.robustness_window)
        self.window = int(cfg.method.window) if cfg.method.name == "ada" else 0
        self.state = {"windows": {}, "first_windows": {}, "ada_images": {}}
        self.masks: dict | None = None  # mask=fraction's report (labelled_share)

    @cached_property
    def schedule(self) -> AdaSchedule:
        """Alg. 1's epochs; ``method=standard``: no standard epochs, then one plain U-Net of ``trainer.epochs``."""
        m = self.cfg.method
        if m.name == "ada":
            return AdaSchedule(int(m.standard_epochs), int(m.cycles), int(m.ada_epochs))
        return AdaSchedule(0, 1, int(self.cfg.trainer.epochs))

    @cached_property
    def forks(self) -> tuple[Fork, ...]:
        """The plain U-Net (``method=standard``, or ``segmentation.baseline``) and one ADA fork per attribution
        (read after ``check``)."""
        cfg, label = self.cfg, self.cfg.model.display_name
        ada = cfg.method.name == "ada"
        forks = [Fork(BASELINE, None, label)] if not ada or cfg.segmentation.baseline else []
        if ada:
            forks += [Fork(a, a, f"{label} + ADA ({ATTRIBUTIONS[a]})") for a in cfg.segmentation.attributions]
        return tuple(forks)

    def check(self) -> None:
        check(self.cfg)
        check_segmentation(self.cfg)

    def setup(self, runtime, generator) -> torch.nn.Module:
        cfg = self.cfg
        self.runtime = runtime
        self.loss_fn = make_loss(cfg.segmentation.loss)
        self.data: SegmentationData = create_segmentation_data(cfg.dataset)
        self.masks = self.labelled_share(cfg)
        net = create_unet(cfg.model, self.data.channels, self.data.mean, self.data.std, int(cfg.dataset.image_size))
        self.conventional: Dataset = self.data.train
        self.augmented = None
        if cfg.segmentation.augment == "table2":
            self.augmented = Augmented(self.data.train, int(cfg.segmentation.augment_seed))
            self.conventional = ConcatDataset([self.data.train, self.augmented])
        return net

    def labelled_share(self, cfg) -> dict | None:
        """``mask=fraction``: the U-Net trains on the seeded share ``mask.p`` of each class's training images only
        (the labelled share a ``mask=segmenter`` source of a classification run was trained on, rrx.masks.segmenter);
        its report, or None with every training image's mask (``mask=labelled``)."""
        if "mask" not in cfg or cfg.mask.name == "labelled":
            return None
        source = create_mask_source(cfg.mask)
        labels = labels_of(self.data.train)
        classes = self.data.classes or [str(k) for k in range(max(labels) + 1)]
        kept, report = source.kept(self.data.train, classes, int(cfg.seed))
        if not kept:
            raise RRXError(
                f"mask.p={shown(cfg.mask.p)} keeps no training image of the {len(labels)}: task=segmentation has "
                "nothing to train on; give a larger mask.p"
            )
        self.data = replace(self.data, train=Subset(self.data.train, kept))
        return report

    def describe(self) -> str:
        share = "" if self.masks is None else f" ({100 * self.masks['p']:g}% of the masks)"
        return (
            f"{self.cfg.model.display_name} / {'ADA' if self.cfg.method.name == 'ada' else 'Standard'} "
            f"on {self.data.name}{share}"
        )

    def identity(self) -> dict:
        return {} if self.masks is None else {"masks": self.masks}  # the share a mask=segmenter source checks

    def optimizer(self, params):
        return instantiate(self.cfg.optimizer)(params=params)

    def phases(self) -> list[Phase]:
        seed, standard = int(self.cfg.seed), self.schedule.standard_epochs
        ada = self.cfg.method.name == "ada"
        return [Phase("standard", standard, seed=phase_seed(seed, "standard"))] + [
            Phase(
                f.name,
                self.schedule.cycles * self.schedule.ada_epochs,
                label=f.label if ada else "",
                start=FORK,
                fork_of="standard",
                seed=phase_seed(seed, f.name),
                first_epoch=standard + 1,
                best=True,
            )
            for f in self.forks
        ]

    def fork(self, phase: Phase) -> Fork | None:
        return next((f for f in self.forks if f.name == phase.name), None)

    def training_set(self, phase, epoch, model) -> Dataset:
        """The conventional data, plus a fork's ADA images, their windows recomputed at the first epoch of each
        cycle; a new dataset every epoch (the augmented copies are drawn afresh)."""
        if self.augmented is not None:
            self.augmented.set_epoch(phase.first_epoch - 1 + epoch)
        fork = self.fork(phase)
        if fork is None or fork.attribution is None:
            self.current = self.conventional
            return self.current
        z, path_epoch = self.window, self.schedule.standard_epochs + epoch
        if self.schedule.starts_cycle(path_epoch):
            corners = ada_windows(model, self.data.train, fork.attribution, z, self.runtime)
            self.state["windows"][fork.name] = corners
            self.state["first_windows"].setdefault(fork.name, corners)
            found = int((corners[:, 0] >= 0).sum())
            self.state["ada_images"].setdefault(fork.name, []).append(found)
            log.info(
                "ADA cycle %d (%s): %d of %d images got a %dx%d window",
                self.schedule.cycle(path_epoch),
                ATTRIBUTIONS[fork.attribution],
                found,
                len(corners),
                z,
                z,
            )
        self.current = with_ada_images(self.conventional, self.data.train, self.state["windows"][fork.name], z)
        return self.current

    def resumed_set(self, phase) -> Dataset:
        return self.conventional  # never trained on: training_set gives every epoch's data

    def step(self, model, batch, generator):
        x, _, m = batch
        x, m = x.to(self.runtime.device), m.to(self.runtime.device)
        with self.runtime.autocast():
            probs = model(x)
        return self.loss_fn(probs, m), {"images": len(x)}

    def validate(self, phase, epoch, model) -> dict:
        val = summarise(
            score(model, validation_batches(self.data.val, self.runtime), self.threshold, self.data.val_spacing)
        )
        return {"validation": val, "images": len(cast(Sized, self.current))}

    def score(self, record: dict) -> float:
        return record["validation"]["mean"]["DSC"]

    def summary(self, record: dict) -> str:
        return f"validation DSC {record['validation']['mean']['DSC']:.2f}"

    def finish(self, model, loop) -> Record:
        """Each fork's best epoch on the validation and the robustness set, the IoU matrix, and the run's record.
        ``model`` is left holding the last fork's best epoch."""
        return self.record(model, loop.best, loop.history, rescore=False)

    def record(self, model, best: dict, history: dict, rescore: bool) -> Record:
        """The record (``command="train"``; ``rrx evaluate`` replaces it) of the forks ``best`` holds (their best
        epochs' ``epoch``, ``record`` and ``state_dict``): validation metrics as recorded in training, or scored again
        with ``rescore`` (``rrx evaluate``), and the robustness set of ``segmentation.robustness_window``; the
        task's numbers are its ``segmentation`` section (``section``)."""
        forks = {}
        for fork in self.forks:
            if fork.name not in best:  # an unfinished run: this fork has not trained yet
                continue
            kept = best[fork.name]
            model.load_state_dict(kept["state_dict"])
            validation = kept["record"]["validation"]
            if rescore:
                validation = summarise(
                    score(model, validation_batches(self.data.val, self.runtime), self.threshold, self.data.val_spacing)
                )
            robust = robustness(model, self.data, self.runtime, self.threshold, self.robustness_window)
            log.info(
                "%s: best epoch %d, validation DSC %.2f, robustness DSC %.2f (%d images)",
                fork.label,
                kept["epoch"],
                validation["mean"]["DSC"],
                robust["mean"]["DSC"],
                robust["images"],
            )
            forks[fork.name] = {
                "label": fork.label,
                "attribution": fork.attribution,
                "best_epoch": kept["epoch"],
                "validation": validation,
                "robustness": robust,
                "history": history[fork.name],
                "ada_images": self.state["ada_images"].get(fork.name),
            }
        return Record(
            "train",
            self.run_info(),
            task=self.name,
            challenges={},
            data=self.data.info,
            train={
                "images": len(cast(Sized, self.data.train)),
                "val_images": len(cast(Sized, self.data.val)),
                **({} if self.masks is None else {"masks": self.masks}),
            },
            sections={"segmentation": self.section(forks, history.get("standard", []))},
        )

    def run_info(self) -> dict:
        cfg = self.cfg
        return {
            "task": "segmentation",
            "architecture": cfg.model.display_name,
            "method": "ADA" if cfg.method.name == "ada" else "Standard",
            "dataset": cfg.dataset.name,
            "model": cfg.model.name,
            "method_name": cfg.method.name,
            "attack": "none",
            "lam": 0.0,  # no method penalty: the U-Net trains on segmentation.loss alone
            "rrda": False,
            "seed": int(cfg.seed),
        }

    def section(self, forks: dict, standard_history: list) -> dict:
        """The record's ``segmentation`` section: the protocol, the forks' results, the IoU matrix (Fig. 10)."""
        first, s, seg = self.state["first_windows"], self.schedule, self.cfg.segmentation
        return {
            "protocol": {
                "standard_epochs": s.standard_epochs,
                "fork_epochs": s.cycles * s.ada_epochs,
                "ada_epochs": s.ada_epochs if self.window else None,
                "window": self.window or None,
                "robustness_window": self.robustness_window,
                "loss": seg.loss,
                "augment": seg.augment,
                "threshold": self.threshold,
            },
            "hsd_unit": "pixels" if self.data.val_spacing is None else "mm",
            "standard": {"history": standard_history},
            "forks": forks,
            "iou": iou_matrix({ATTRIBUTIONS[a]: w for a, w in first.items()}, self.window) if len(first) > 1 else None,
            "first_cycle_windows": {a: w.tolist() for a, w in first.items()},
        }

    def state_dict(self) -> dict:
        return {"protocol": self.state}

    def load_state_dict(self, state: dict) -> None:
        protocol = state["protocol"]
        self.state = {k: protocol.get(k, {}) for k in ("windows", "first_windows", "ada_images")}

    @staticmethod
    def upgrade_config(saved: dict) -> dict:
        """The protocol never read a challenge, which an rrx before the typed configs composed into every run's
        config: it is dropped. Before the one loop, a segmentation run's optimizer was ``segmentation.optimizer``
        and the keys of ``NOT_FOR_SEGMENTATION`` had no effect on it: it reads as today's config with their only
        value."""
        saved = {k: v for k, v in saved.items() if k != "challenge"}
        if "optimizer" not in saved.get("segmentation", {}):
            return saved
        saved = copy.deepcopy(saved)
        saved["optimizer"] = saved["segmentation"].pop("optimizer")
        for key, (value, _) in NOT_FOR_SEGMENTATION.items():
            group, name = key.split(".")
            saved.setdefault(group, {})[name] = value
        return saved

    @staticmethod
    def loop_state(ckpt: dict) -> dict:
        """The loop's state in a checkpoint of an rrx before the one loop: its ``protocol`` held it."""
        p = ckpt["protocol"]
        best = {
            name: {"epoch": b["epoch"], "record": {"validation": b["validation"]}, "state_dict": b["state_dict"]}
            for name, b in p["best"].items()
        }
        return {
            "phase": p["phase"],
            "phase_epoch": p["phase_epoch"],
            "epoch": p["epoch"],
            "step": 0,
            "history": p["history"],
            "best": best,
            "forks": {"standard": p["fork"]} if p["fork"] else {},
        }


# Thesis ch. 3, from each record's ``segmentation`` section (``rrx.segmentation.report``): written into each run's
# folder and, per dataset, under the report's "Segmentation, dataset" heading.
TABLES = [
    Table("table3", "Validation set (Table 3 shape)", validation_table, is_segmentation, 3, mark_best=False),
    Table("table4", "Robustness set, Alg. 2 (Table 4 shape)", robustness_table, is_segmentation, 4, mark_best=False),
    Table(
        "iou",
        "IoU between the windows each method erases in the first ADA cycle (Fig. 10 as numbers)",
        iou_table,
        has_iou,
        10.5,
        mark_best=False,
    ),
]
FIGURES = [
    Figure("fig8_dice", "Validation Dice per epoch (Fig. 8 shape)", dice_curves, is_segmentation, 8),
    Figure(
        "fig10_iou",
        "IoU between the erased windows of the attribution methods (Fig. 10 shape)",
        iou_figure,
        has_iou,
        10,
    ),
]
