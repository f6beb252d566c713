"""GradMask (Simpson et al. 2019, Eq. 4)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rrx.config import param
from rrx.methods import register_method
from rrx.methods.base import InputGradientConfig, InputGradientPenalty


@dataclass
class GradMaskConfig(InputGradientConfig):
    """GradMask (Simpson et al. 2019): true class vs strongest other class"""

    name: str = param("gradmask", "the registered name of the method")
    lam: float | None = param(1.0e-3, "weight of the GradMask penalty (thesis range 1e-5 .. 5e-3)", low=0.0)


def gradmask_penalty(
    logits: torch.Tensor, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, scale: torch.Tensor | None = None
) -> torch.Tensor:
    """Per image: sum_d |(1 - m)_nd * d/dx_nd |z_a - z_b||, a = true class, b = strongest other class -> (B,).

    Simpson et al. define the penalty for two classes (a, b); for K classes rrx uses the
    true class against the highest-scoring other class, the pair whose margin decides.
    ``scale``: as in ``rrr_penalty`` (the per-channel std, for the gradient w.r.t. the normalised input).
    """
    true = logits.gather(1, y[:, None])[:, 0]
    others = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf"))
    margin = (true - others.max(dim=1).values).abs().sum()
    (grad,) = torch.autograd.grad(margin, x, create_graph=True)
    if scale is not None:
        grad = grad * scale
    return ((1 - mask) * grad).abs().sum(dim=(1, 2, 3))


@register_method("gradmask", config=GradMaskConfig)
class GradMask(InputGradientPenalty):
    """Cross-entropy + lam * GradMask penalty (thesis range of lam: 1e-5 .. 5e-3, Table 7)."""

    display_name = "GradMask"

    def penalty(self, logits, x, y, mask, scale=None):
        return gradmask_penalty(logits, x, y, mask, scale)
