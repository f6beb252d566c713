"""Right Reasons Data Augmentation (thesis ch. 4, Alg. 3) as a batch operation."""

from __future__ import annotations

import torch

from rrx.data.variations import FILL_RULES, background
from rrx.errors import check_choice

PAIRINGS = ("alg3", "matching")  # method.pairing
FILLS = FILL_RULES  # method.fill: what covers the partner's own object in the context it lends (as dataset.fill)


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


def rrda(
    x: torch.Tensor,
    y: torch.Tensor,
    mask: torch.Tensor,
    generator: torch.Generator | None = None,
    pairing: str = "matching",
    fill: str = "black",
):
    """Paste objects onto other images' contexts (thesis Alg. 3).

    new = m_i * x_i + (1 - m_i) * ctx_j,  label y_i,  ctx_j = x_j with its own object covered by ``fill``.

    ``pairing="alg3"``: for every i a partner j = random(B) drawn independently (with replacement,
    so j = i can happen), and both new_left (object i on context j) and new_right (object j on
    context i) are kept: 2B images, as Alg. 3 lines 2-7. ``pairing="matching"``: a random perfect
    matching in which partners swap contexts (``rrda_partners``): B images.
    ``fill="black"`` zeroes the partner's object; ``fill="tile"`` tiles its bounding box from the
    background beside it (the IN-9 ``only_bg_t`` rule, ``rrx.data.variations.tile_backgrounds``).

    Args:
        x (Tensor): images (B, C, H, W).
        y (Tensor): labels (B,).
        mask (Tensor): object masks (B, 1, H, W), 1 on the object.
        generator (torch.Generator, optional): source of the random partners. Default: None.
        pairing (str, optional): ``alg3`` or ``matching``. Default: ``matching``.
        fill (str, optional): ``black`` or ``tile``. Default: ``black``.

    Returns:
        (x_new, y_new, mask_new): (2B or B, C, H, W) images; labels and masks follow the object.
    """
    check_choice("method.pairing", pairing, PAIRINGS)
    check_choice("method.fill", fill, FILLS)
    context = background(x, mask, fill)  # (B, C, H, W), objects removed
    if pairing == "matching":
        left = torch.arange(x.shape[0], device=x.device)
        right = rrda_partners(x.shape[0], generator).to(x.device)
    else:
        right = torch.randint(x.shape[0], (x.shape[0],), generator=generator).to(x.device)
        left = torch.arange(x.shape[0], device=x.device)
        left, right = torch.cat([left, right]), torch.cat([right, left])  # new_left, then new_right
    x_new = mask[left] * x[left] + (1 - mask[left]) * context[right]
    return x_new, y[left], mask[left]
