"""Right for the Right Reasons (Ross et al. 2017; thesis Eq. 2.7)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rrx.config import param
from rrx.methods import register_method
from rrx.methods.base import InputGradientConfig, InputGradientPenalty


@dataclass
class RRRConfig(InputGradientConfig):
    """Right for the Right Reasons (Ross et al. 2017, thesis Eq. 2.7)"""

    name: str = param("rrr", "the registered name of the method")
    lam: float | None = param(100.0, "weight of the RRR penalty (thesis range 1e1 .. 1e3, Table 7)", low=0.0)


def rrr_penalty(
    logits: torch.Tensor, x: torch.Tensor, mask: torch.Tensor, scale: torch.Tensor | None = None
) -> torch.Tensor:
    """Eq. 2.7's right-reasons term per image:

    sum_d ((1 - m)_nd * d/dx_nd sum_k log p_k(x_n))^2   -> (B,)

    Args:
        logits (Tensor): (B, K), computed from ``x`` (which requires grad).
        x (Tensor): inputs (B, C, H, W).
        mask (Tensor): (B, 1, H, W), 1 on the object; the context 1 - mask is penalised.
        scale (Tensor, optional): (1, C, 1, 1) per-channel std: the gradient is then taken with respect to the
            normalised input z = (x - mean) / std, d/dz = std * d/dx. Default: None (pixels of the [0, 1] image).

    ``create_graph=True`` lets the penalty train.
    """
    log_prob_sum = F.log_softmax(logits, dim=1).sum()
    (grad,) = torch.autograd.grad(log_prob_sum, x, create_graph=True)
    if scale is not None:
        grad = grad * scale
    return ((1 - mask) * grad).pow(2).sum(dim=(1, 2, 3))


@register_method("rrr", config=RRRConfig)
class RRR(InputGradientPenalty):
    """Cross-entropy + lam * RRR penalty (thesis range of lam: 1e1 .. 1e3, Table 7)."""

    display_name = "RRR"

    def penalty(self, logits, x, y, mask, scale=None):
        return rrr_penalty(logits, x, mask, scale)
