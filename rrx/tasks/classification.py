"""``task=classification`` (the default): a classifier trained with a method (thesis ch. 4-5), then challenged.

One phase, ``train``, of ``trainer.epochs`` epochs (ADA: ``method.standard_epochs + method.cycles x
method.ada_epochs``, its data changing at each cycle through the method's schedule). A batch is augmented if
``dataset.augment=crop_flip``, gets its RRDA images if ``method.rrda``, is perturbed by the training ``attack`` (ARRR,
Eq. 5.2; with ``attack.mix`` = alpha, Eq. 2.5) and scored by the method's loss. After training: the validation
accuracy on ``trainer.val_fraction`` of the training set, and ``challenge`` (with the attack's adversarial accuracy).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sized
from typing import cast

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch.utils.data import Subset, random_split

from rrx.attacks import create_attack
from rrx.challenges import check_variations, create_challenge
from rrx.challenges.accuracy import accuracy, mixed_rand_accuracy
from rrx.challenges.adversarial import evaluate_with_attack
from rrx.config import check
from rrx.data import create_dataset, data_report
from rrx.data.augment import augment
from rrx.errors import RRXError
from rrx.masks import MADE_MASKS, create_mask_source, has_context
from rrx.methods import create_method
from rrx.methods.groups import WithGroups, group_report, training_groups
from rrx.methods.rrda import rrda
from rrx.models import create_model
from rrx.record import Record
from rrx.tasks import register_task
from rrx.tasks.base import Phase, Task
from rrx.tasks.segmentation import SEGMENTATION_MODELS, SEGMENTATION_ONLY_DATASETS

log = logging.getLogger(__name__)


def mask_source(cfg: DictConfig, method):
    """The run's mask source (``cfg.mask``, ``rrx.masks``) for a method that uses masks; None for one that does not
    (a source other than ``labelled`` is then refused: it would change nothing) and for a config without one."""
    if "mask" not in cfg:
        return None
    if not method.needs_masks:
        if cfg.mask.name != "labelled":
            raise RRXError(f"mask={cfg.mask.name} changes nothing: method={cfg.method.name} uses no masks; drop mask=")
        return None
    return create_mask_source(cfg.mask)


def training_step(model, method, attack, mix, batch, runtime, generator: torch.Generator):
    """Loss of one batch, the labels it was taken on, and the method's logs.

    The batch is augmented if ``dataset.augment=crop_flip`` and gets its RRDA images if ``method.rrda``; then
    ``attack`` perturbs it and the method's loss is taken on the perturbed batch (ARRR, thesis Eq. 5.2),
    or, with ``mix`` = alpha, alpha * L(x) + (1 - alpha) * L(x_adv) (Eq. 2.5). ``attack=none`` leaves x as it is.
    """
    x, y, *rest = (t.to(runtime.device, non_blocking=True) for t in batch)
    groups = {"groups": rest.pop()} if method.groups_in_batch else {}  # rrx.methods.groups.WithGroups's
    mask = rest[0] if rest else None
    if runtime.augment is not None:  # dataset.augment=crop_flip: crops and flips that move the masks too
        x, mask = augment(x, mask, generator, *runtime.augment)
    if method.rrda:
        assert mask is not None  # RRDA needs masks: the method asks for them (needs_masks)
        paired = has_context(mask)  # not an image without a mask of its own (rrx.masks: the all-ones mask)
        if paired.all():
            x_new, y_new, mask_new = rrda(x, y, mask, generator, pairing=method.pairing, fill=method.fill)
            x, y, mask = torch.cat([x, x_new]), torch.cat([y, y_new]), torch.cat([mask, mask_new])
        elif paired.any():  # RRDA among the images with masks; the others as they are
            x_new, y_new, mask_new = rrda(
                x[paired], y[paired], mask[paired], generator, pairing=method.pairing, fill=method.fill
            )
            x, y, mask = torch.cat([x, x_new]), torch.cat([y, y_new]), torch.cat([mask, mask_new])
    x_train = attack.perturb(model, x, y)
    with runtime.autocast():
        loss, logs = method.loss(model, x_train, y, mask, **groups)
        if mix is not None:
            clean_loss, _ = method.loss(model, x, y, mask, **groups)
            loss = mix * clean_loss + (1 - mix) * loss
    return loss, y, logs


def run_info(cfg: DictConfig, method, masks=None) -> dict:
    """What a table needs to name the run; an attack used in training and a mask source other than the labelled
    masks (``masks``, ``rrx.masks``) are part of the method name."""
    attack = cfg.attack.display_name
    label = f"{method.label} + {attack}" if attack else method.label
    if masks is not None and masks.label:
        label = f"{label} ({masks.label})"
    return {
        "architecture": cfg.model.display_name,
        "method": label,
        "attack": cfg.attack.name,
        "dataset": cfg.dataset.name,
        "variant": cfg.dataset.get("variant"),  # Decoy MNIST: ross, cdep, or none (no decoy)
        "model": cfg.model.name,
        "method_name": cfg.method.name,
        "lam": float(method.lam),  # 0 for a method without a penalty (standard, ADA)
        "rrda": bool(cfg.method.rrda),
        "seed": int(cfg.seed),
    }


@register_task("classification")
class Classification(Task):
    name = "classification"
    fix = "lower the learning rate or method.lam"
    forward_methods = ("forward_features", "forward_head")  # ActDiff's

    def check(self) -> None:
        cfg = self.cfg
        if cfg.model.name in SEGMENTATION_MODELS:
            raise RRXError(
                f"model={cfg.model.name} segments images and cannot classify: use task=segmentation, or a "
                "classifier (e.g. model=resnet18)"
            )
        if cfg.dataset.name in SEGMENTATION_ONLY_DATASETS:
            raise RRXError(f"dataset={cfg.dataset.name} is a segmentation dataset: use task=segmentation")
        if "lam" in cfg.method and cfg.method.lam is None:
            raise RRXError(f"method.lam is null: method={cfg.method.name} weighs its penalty by it; give method.lam=")
        check(cfg)

    def setup(self, runtime, generator) -> torch.nn.Module:
        cfg = self.cfg
        self.runtime = runtime
        self.dataset = create_dataset(cfg.dataset)
        self.method = create_method(cfg.method)
        self.challenge = create_challenge(cfg.challenge)
        self.attack = create_attack(cfg.attack)
        net = create_model(cfg.model, self.dataset.num_classes, self.dataset.mean, self.dataset.std)
        self.method.check_model(net)
        if len(self.method.phases(1)) > 1 and cfg.trainer.scheduler == "cosine":
            raise RRXError(
                f"method={cfg.method.name} trains a second model from the first one's start, which one cosine schedule "
                "cannot restart: give trainer.scheduler=none (JTT's reference trains at a constant learning rate)"
            )
        masks = mask_source(cfg, self.method)
        self.info = run_info(cfg, self.method, masks)
        self.train_set = self.dataset.train_set(masks=self.method.needs_masks)
        check_variations(
            self.challenge, self.dataset, cfg.attack.name
        )  # every folder the evaluation reads, before training
        self.val_set = None
        if cfg.trainer.val_fraction:  # split by the generator that then orders the batches
            n_val = max(1, round(cfg.trainer.val_fraction * len(cast(Sized, self.train_set))))
            self.train_set, self.val_set = random_split(
                self.train_set, [len(cast(Sized, self.train_set)) - n_val, n_val], generator=generator
            )
        classes = self.dataset.classes
        assert classes is not None  # listed once the training set is loaded
        self.groups = None
        grouping = str(cfg.method.get("groups", "pair"))
        if self.method.needs_groups:  # of the images trained on
            ids, names = training_groups(self.dataset, self.train_set, list(classes), cfg.method.name, grouping)
            self.method.set_groups(ids, names)
            self.groups = group_report(ids, names)
        if self.method.needs_held_out_groups:
            if self.val_set is None:
                raise RRXError(
                    f"method={cfg.method.name} needs held-out training images with their groups: give "
                    "trainer.val_fraction (e.g. 0.2)"
                )
            held_out, held_out_names = training_groups(
                self.dataset, self.val_set, list(classes), cfg.method.name, grouping
            )
            self.method.set_held_out(self.val_set, held_out, held_out_names)
        self.masks = None
        if masks is not None:  # of the images trained on, by its own generator: the batch order stays the same
            cache = None if self.folder is None else self.folder / MADE_MASKS
            self.train_set, self.masks = masks.apply(
                self.train_set, list(classes), int(cfg.seed), self.dataset, runtime, cache
            )
        if self.method.groups_in_batch:
            self.train_set = WithGroups(self.train_set, ids)
        return net

    def describe(self) -> str:
        return f"{self.info['architecture']} / {self.info['method']} on {self.dataset.name}"

    @property
    def double_backprop(self) -> bool:
        return self.method.double_backprop

    @property
    def label(self) -> str:
        return self.method.label

    def identity(self) -> dict:
        classes = self.dataset.classes
        assert classes is not None  # listed once the training set is loaded (setup)
        return {"run": self.info, "classes": list(classes)}

    def optimizer(self, params):
        return instantiate(self.cfg.optimizer)(params=params)

    def phases(self) -> list[Phase]:
        """The method's (``Method.phases``): one phase ``train`` for most; JTT's identification model first."""
        return self.method.phases(int(self.cfg.trainer.epochs))

    def end_phase(self, phase, model) -> None:
        self.method.end_phase(phase.name, model, self.train_set, self.runtime)

    def scheduler(self, optimizer):
        if self.cfg.trainer.scheduler != "cosine":
            return None
        epochs, n = self.phases()[-1].epochs, len(self.train_set)  # the phase of the model evaluated
        steps = sum(math.ceil(self.method.data_factor(e) * n / self.runtime.batch_size) for e in range(1, epochs + 1))
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)

    def training_set(self, phase, epoch, model):
        return self.method.training_set(epoch, self.train_set, model, self.runtime)

    def resumed_set(self, phase):
        return self.method.current_set(self.train_set) or self.train_set

    def step(self, model, batch, generator):
        loss, y, logs = training_step(
            model, self.method, self.attack, self.cfg.attack.mix, batch, self.runtime, generator
        )
        return loss, {"images": len(y), "correct": (logs["logits"].argmax(1) == y).sum().item()}

    def summary(self, record: dict) -> str:
        return f"train acc {100 * record['acc']:.2f}%"

    def finish(self, model, loop) -> Record:
        runtime = self.runtime
        net = runtime.place(model)  # channels-last for evaluation where trainer.channels_last says so
        val_accuracy = val_mixed_rand = None
        if self.val_set is not None:
            val_accuracy = accuracy(net, runtime.loader(self.val_set, shuffle=False), runtime, desc="validation")
            log.info("validation accuracy %.2f%% (%d held-out training images)", 100 * val_accuracy, len(self.val_set))
            val_mixed_rand = self._val_mixed_rand(net)
        results, predictions = evaluate_with_attack(
            self.challenge,
            self.cfg.attack.name,
            self.attack,
            net,
            self.dataset,
            runtime,
            self.cfg.attack.get("eval_eps"),
        )
        return Record(
            "train",
            self.info,
            challenges=results,
            data=data_report(self.dataset),
            predictions=predictions,
            train={
                "epochs": loop.history["train"],
                "images": len(cast(Sized, self.train_set)),
                "val_accuracy": val_accuracy,
                "val_mixed_rand": val_mixed_rand,
                **({} if self.masks is None else {"masks": self.masks}),
                **({} if self.groups is None else {"groups": self.groups}),
                **({} if (steps := self.method.record()) is None else {self.cfg.method.name: steps}),
            },
        )

    def _val_mixed_rand(self, net) -> float | None:
        """The accuracy on the held-out training images with their objects on each other's backgrounds
        (``mixed_rand_accuracy``), where the training set has masks; None where it has none."""
        base = self.train_set.dataset if isinstance(self.train_set, Subset) else None
        try:
            masked = self.dataset.train_set(masks=True) if self.dataset.has_masks else None
        except RRXError:  # e.g. dataset.train_source=in9l: no training masks
            masked = None
        if masked is None or base is None or len(cast(Sized, masked)) != len(cast(Sized, base)):
            return None
        held_out = Subset(masked, cast(Subset, self.val_set).indices)
        generator = torch.Generator().manual_seed(int(self.cfg.seed))
        found = mixed_rand_accuracy(net, self.runtime.loader(held_out, shuffle=False), self.runtime, generator)
        log.info("validation mixed_rand accuracy %.2f%% (objects on each other's backgrounds)", 100 * found)
        return found

    def state_dict(self) -> dict:
        return {"method": self.method.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.method.load_state_dict(state["method"])

    @staticmethod
    def loop_state(ckpt: dict) -> dict:
        """The loop's state in a checkpoint of an rrx before the one loop (no ``loop`` key): one phase."""
        return {
            "phase": 0,
            "phase_epoch": ckpt["epoch"],
            "epoch": ckpt["epoch"],
            "step": ckpt["step"],
            "history": {"train": ckpt["history"]},
        }
