"""Right for the Right Reasons (Ross et al. 2017; thesis Eq. 2.7)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rrx.methods import register_method
from rrx.methods.base import InputGradientPenalty


def rrr_penalty(logits: torch.Tensor, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Eq. 2.7's right-reasons term, averaged over the batch:

    mean_n sum_d ((1 - m)_nd * d/dx_nd sum_k log p_k(x_n))^2

    Args:
        logits (Tensor): (B, K), computed from ``x`` (which requires grad).
        x (Tensor): inputs (B, C, H, W).
        mask (Tensor): (B, 1, H, W), 1 on the object; the context 1 - mask is penalised.

    The thesis sums both loss terms over the batch; rrx averages both (cross-entropy is a
    batch mean), so ``lam`` keeps its meaning. ``create_graph=True`` lets the penalty train.
    """
    log_prob_sum = F.log_softmax(logits, dim=1).sum()
    (grad,) = torch.autograd.grad(log_prob_sum, x, create_graph=True)
    return ((1 - mask) * grad).pow(2).sum(dim=(1, 2, 3)).mean()


@register_method("rrr")
class RRR(InputGradientPenalty):
    """Cross-entropy + lam * RRR penalty (thesis range of lam: 1e1 .. 1e3, Table 7)."""

    display_name = "RRR"

    def penalty(self, logits, x, y, mask):
        return rrr_penalty(logits, x, mask)
