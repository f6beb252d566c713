"""What every training method shares: its weight, the RRDA flag and a display name."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rrx.config import ComponentConfig, param
from rrx.errors import RRXError
from rrx.methods.rrda import FILLS, PAIRINGS


@dataclass
class MethodConfig(ComponentConfig):
    """what every method has: training on RRDA images too"""

    rrda: bool = param(False, "true: train on each batch plus its RRDA images (thesis ch. 4, Alg. 3)")
    pairing: str = param(
        "matching",
        "RRDA pairs: matching (B new images, partners swap contexts) | alg3 (2B images, thesis Alg. 3)",
        choices=PAIRINGS,
    )
    fill: str = param(
        "black",
        "RRDA: what covers the partner's own object in the context it lends (tile: IN-9's only_bg_t)",
        choices=FILLS,
    )


@dataclass
class PenaltyConfig(MethodConfig):
    """a method with a penalty weighed by lam"""

    lam: float | None = param(1.0, "lambda, the weight of the method's penalty", low=0.0)


@dataclass
class InputGradientConfig(PenaltyConfig):
    """a penalty on an input gradient (RRR, GradMask)"""

    reduction: str = param(
        "mean",
        "the penalty over the batch: mean | sum (the reference code's; Table 7's lambdas assume sum + normalized)",
        choices=("mean", "sum"),
    )
    input_space: str = param(
        "pixels",
        "input gradient w.r.t.: pixels (the [0, 1] image) | normalized (the model's normalised input)",
        choices=("pixels", "normalized"),
    )


class Method:
    """Base class of training methods.

    Args:
        cfg: the ``method`` config: ``name``, ``lam`` (weight of the method's penalty) and
            ``rrda`` (train on the batch plus its RRDA images, thesis Alg. 3), and for RRDA ``pairing``
            (``alg3``: 2B images from independent partners; ``matching``: B images from swapped pairs) and
            ``fill`` (``black`` or ``tile``: what covers the partner's object), see ``rrx.methods.rrda.rrda``.
    """

    display_name = "Method"
    needs_masks_for_loss = False
    double_backprop = False  # the loss differentiates an input gradient (create_graph=True)
    needs_groups = False  # the training images' groups (object class, background class): set_groups before training
    groups_in_batch = False  # each item carries its group, and loss(..., groups=(B,) indices) weighs by it
    needs_held_out_groups = False  # the held-out training images and their groups: set_held_out before training

    def __init__(self, cfg):
        self.lam = float(cfg.lam) if "lam" in cfg else 0.0  # a method without a penalty (standard) weighs none
        self.rrda = bool(cfg.rrda)
        self.pairing, self.fill = cfg.pairing, cfg.fill

    @property
    def needs_masks(self) -> bool:
        return self.needs_masks_for_loss or self.rrda

    @property
    def label(self) -> str:
        """Method column of the thesis tables, e.g. ``Standard + RRDA``."""
        return f"{self.display_name} + RRDA" if self.rrda else self.display_name

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None):
        raise NotImplementedError

    def check_model(self, model) -> None:
        """Raise RRXError before training if the method cannot work on ``model`` (e.g. CDEP on a residual net)."""

    def set_groups(self, groups: list[int], names: list[list[str]]) -> None:
        """For a method that ``needs_groups``: the group index of each training image and the groups [object,
        background] in index order (``rrx.methods.groups.training_groups``)."""

    def set_held_out(self, data, groups: list[int], names: list[list[str]]) -> None:
        """For a method that ``needs_held_out_groups``: the held-out training images (``trainer.val_fraction``),
        the group index of each and the groups in index order."""

    def record(self) -> dict | None:
        """What the run's record keeps of the method's own steps (under ``train.<method name>``), or None."""
        return None

    # Schedule hooks: a method that changes the training data over time (ADA) overrides these.
    def phases(self, epochs: int) -> list:
        """The run's phases (``rrx.tasks.base.Phase``) for ``trainer.epochs`` = ``epochs``: one, ``train``, of
        ``total_epochs(epochs)``; the last phase is named ``train`` and its model is the one evaluated."""
        from rrx.tasks.base import Phase

        return [Phase("train", self.total_epochs(epochs))]

    def end_phase(self, name: str, model, base, runtime) -> None:
        """Called when the phase ``name`` has trained its last epoch on ``base`` (the training set)."""

    def total_epochs(self, epochs: int) -> int:
        return epochs

    def data_factor(self, epoch: int) -> int:
        """Size of the training data in ``epoch``, in multiples of the training set."""
        return 1

    def training_set(self, epoch: int, base, model, runtime):
        """A new training set from ``epoch`` on, or None to keep the current one."""
        return None

    # Resuming: what a checkpoint keeps of the method, and the training set it was on.
    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def current_set(self, base):
        """The training set in use after ``load_state_dict``, or None for ``base``."""
        return None


class InputGradientPenalty(Method):
    """CE (a batch mean) + lam * the per-image penalty reduced over the batch, where the penalty differentiates
    an input gradient.

    ``cfg.reduction``: ``mean`` (rrx's default) or ``sum`` over the batch (the reference code's, e.g.
    saliency-red-herring's ``rrr_loss.sum() * lam``); ``cfg.input_space``: ``pixels`` (the [0, 1] image, the
    default) or ``normalized`` (the model's normalised input, as the reference code). Since d/dz = std * d/dx
    and a sum is B times a mean, the same training needs lam(mean, pixels) = lam(sum, normalized) * B * std^2
    for RRR (squared gradients) and * B * std for GradMask (absolute gradients), for a batch of B.
    """

    needs_masks_for_loss = True
    double_backprop = True

    def __init__(self, cfg):
        super().__init__(cfg)
        self.reduction, self.input_space = cfg.reduction, cfg.input_space

    def penalty(
        self,
        logits: torch.Tensor,
        x: torch.Tensor,
        y: torch.Tensor,
        mask: torch.Tensor,
        scale: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Per-image penalty (B,); ``scale`` (1, C, 1, 1) turns pixel gradients into normalised-input ones."""
        raise NotImplementedError

    def loss(self, model, x, y, mask):
        x = x.detach().requires_grad_(True)
        logits = model(x)
        ce = F.cross_entropy(logits, y)
        scale = None
        if self.input_space == "normalized":  # d/dz = std * d/dx, z = (x - mean) / std
            scale = getattr(model, "std", None)
            if not isinstance(scale, torch.Tensor):
                raise RRXError(
                    f"method.input_space=normalized differentiates the model's normalised input, and "
                    f"{type(model).__name__} does not say its normalisation: wrap it as rrx.Model(model, mean=..., "
                    "std=...), or use input_space=pixels"
                )
        per_image = self.penalty(logits, x, y, mask, scale)
        penalty = per_image.sum() if self.reduction == "sum" else per_image.mean()
        return ce + self.lam * penalty, {"ce": ce.detach(), "penalty": penalty.detach(), "logits": logits.detach()}
