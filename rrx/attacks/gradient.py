"""L-inf gradient-sign attacks, FGSM (Goodfellow et al. 2015) and PGD (Madry et al. 2018).

Both work in pixel units of the [0, 1] image (before the model's normalisation), compute the
attack against the model in eval mode, and leave no gradient in its parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from rrx.attacks import AttackConfig, register_attack
from rrx.config import param

EPS = 0.03137  # 8/255


@dataclass
class GradientAttackConfig(AttackConfig):
    """an L-inf gradient-sign attack in pixel units of the [0, 1] image; with training the method trains on x_adv
    (ARRR, thesis Eq. 5.2)"""

    eps: float = param(EPS, "the L-inf budget in [0, 1] pixel units (8/255)", low=0.0)
    eval_eps: list[float] | None = param(
        None, "a list of eps: also the accuracy under this attack at each (the Table 9 curve)", low=0.0
    )


@dataclass
class FGSMConfig(GradientAttackConfig):
    """FGSM, L-inf (Goodfellow et al. 2015)"""

    name: str = param("fgsm", "the registered name of the attack")
    display_name: str | None = param("FGSM", "the attack's name in the tables")


@dataclass
class PGDConfig(GradientAttackConfig):
    """PGD, L-inf (Madry et al. 2018)"""

    name: str = param("pgd", "the registered name of the attack")
    display_name: str | None = param("PGD", "the attack's name in the tables")
    step_size: float = param(0.00784, "the size of each signed-gradient step (2/255)", low=0.0, low_open=True)
    steps: int = param(10, "the number of steps", low=1)
    random_start: bool = param(True, "true: begin from a uniform point in the eps-ball")


def loss_gradient_sign(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """sign(d CE(model(x), y) / dx), computed with ``torch.autograd.grad`` on the input only."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(x), y), x)
    return grad.sign()


class _EvalMode:
    """Puts the model in eval mode for the attack and restores its mode afterwards."""

    def __init__(self, model):
        self.model, self.was_training = model, model.training

    def __enter__(self):
        self.model.eval()

    def __exit__(self, *exc):
        self.model.train(self.was_training)


@register_attack("fgsm", config=FGSMConfig)
class FGSM:
    """x_adv = clip(x + eps * sign(grad_x CE), 0, 1) (thesis Eq. 2.5's perturbation)."""

    def __init__(self, cfg):
        self.eps = float(cfg.eps)

    def at_eps(self, eps: float) -> "FGSM":
        """The same attack with budget ``eps``."""
        return FGSM(OmegaConf.create({"eps": eps}))

    def perturb(self, model, x, y):
        with _EvalMode(model):
            return (x.detach() + self.eps * loss_gradient_sign(model, x, y)).clamp(0, 1)


@register_attack("pgd", config=PGDConfig)
class PGD:
    """``steps`` signed-gradient steps of ``step_size``, projected onto the eps-ball around x and [0, 1].

    ``random_start`` begins from a uniform point in the eps-ball.
    """

    def __init__(self, cfg):
        self.eps, self.step_size = float(cfg.eps), float(cfg.step_size)
        self.steps, self.random_start = int(cfg.steps), bool(cfg.random_start)

    def at_eps(self, eps: float) -> "PGD":
        """The same attack with budget ``eps``; the step size keeps its ratio to eps."""
        return PGD(
            OmegaConf.create(
                {
                    "eps": eps,
                    "step_size": self.step_size * eps / self.eps if self.eps else eps / 4,
                    "steps": self.steps,
                    "random_start": self.random_start,
                }
            )
        )

    def perturb(self, model, x, y):
        x = x.detach()
        x_adv = x
        if self.random_start:
            x_adv = (x + torch.empty_like(x).uniform_(-self.eps, self.eps)).clamp(0, 1)
        with _EvalMode(model):
            for _ in range(self.steps):
                x_adv = x_adv + self.step_size * loss_gradient_sign(model, x_adv, y)
                x_adv = (x + (x_adv - x).clamp(-self.eps, self.eps)).clamp(0, 1)
        return x_adv.detach()
