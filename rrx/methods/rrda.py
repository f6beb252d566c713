"""Right Reasons Data Augmentation (thesis ch. 4, Alg. 3) as a batch operation."""

from __future__ import annotations

import torch


def rrda_partners(batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Partner index of each sample: a random pairing in which partners point at each other.

    Pairs come from a random permutation taken two at a time, so both directions of every
    pair are produced (Alg. 3 lines 4-7). With an odd batch the last sample takes the first
    sample of the permutation as its partner (one direction only).
    """
    perm = torch.randperm(batch_size, generator=generator)
    half = batch_size // 2
    left, right = perm[: 2 * half : 2], perm[1 : 2 * half : 2]
    partner = torch.empty(batch_size, dtype=torch.long)
    partner[left] = right
    partner[right] = left
    if batch_size % 2:
        partner[perm[-1]] = perm[0]
    return partner


def rrda(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None = None):
    """Paste every object onto its partner's context (thesis Alg. 3).

    x_new_i = m_i * x_i + (1 - m_i) * ctx_j,  ctx_j = (1 - m_j) * x_j,  label y_i,

    where j is i's partner; the partner's own object is removed with zeros (Alg. 3's fill).

    Args:
        x (Tensor): images (B, C, H, W).
        y (Tensor): labels (B,).
        mask (Tensor): object masks (B, 1, H, W), 1 on the object.
        generator (torch.Generator, optional): source of the random pairing. Default: None.

    Returns:
        (x_new, y, mask): the new images (B, C, H, W); labels and masks follow the object.
    """
    partner = rrda_partners(x.shape[0], generator).to(x.device)
    context = x * (1 - mask)  # (B, C, H, W), objects blacked out
    x_new = mask * x + (1 - mask) * context[partner]
    return x_new, y, mask
