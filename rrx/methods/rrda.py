"""Right Reasons Data Augmentation (thesis ch. 4, Alg. 3) as a batch operation."""

from __future__ import annotations

import torch

from rrx.errors import check_choice

PAIRINGS = ("alg3", "matching")  # method.pairing
FILLS = ("black", "tile")  # method.fill: what covers the partner's own object in the context it lends


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


def _first_true(flags: torch.Tensor) -> torch.Tensor:
    """Index of the first True along the last dim (B, N) -> (B,); N where there is none."""
    n = flags.shape[-1]
    index = torch.arange(n, device=flags.device).expand_as(flags)
    return torch.where(flags, index, n).amin(dim=-1)


def tile_backgrounds(x: torch.Tensor, mask: torch.Tensor, margin: int = 2) -> torch.Tensor:
    """``rrx.data.variations.only_bg_t`` for a whole batch at once, on x's device.

    Each image's object bounding box is filled by tiling the wider of the strips left/right of it
    (same rows), else the taller of the strips above/below it (same columns), the strips starting
    ``margin`` pixels from the box (0 if the image leaves no room); a box without room around it is
    black, an image without object unchanged.

    Args:
        x (Tensor): images (B, C, H, W).
        mask (Tensor): object masks (B, 1, H, W), 1 on the object.
    """
    b, c, h, w = x.shape
    rows, cols = mask[:, 0].bool().any(dim=2), mask[:, 0].bool().any(dim=1)  # (B, H), (B, W)
    top, left = _first_true(rows), _first_true(cols)
    bottom, right = h - _first_true(rows.flip(1)), w - _first_true(cols.flip(1))  # exclusive
    has_box = top < h

    def room(gap):  # (B, 4): pixels left of, right of, above and below the box, ``gap`` away from it
        return torch.stack([left - gap, w - right - gap, top - gap, h - bottom - gap], dim=1)

    # the gap: margin where some strip has room at it, else 0 (as only_bg_t tries margin, then 0)
    gap = torch.where((room(margin) > 0).any(dim=1), margin, 0)
    r_left, r_right, r_above, r_below = room(gap).unbind(1)
    horizontal = torch.maximum(r_left, r_right) > 0
    vertical = ~horizontal & (torch.maximum(r_above, r_below) > 0)

    yy = torch.arange(h, device=x.device).view(1, h, 1).expand(b, h, w)
    xx = torch.arange(w, device=x.device).view(1, 1, w).expand(b, h, w)

    def per(t):  # a per-image value (B,) broadcast over the pixels (B, H, W)
        return t.view(b, 1, 1)
    in_box = per(has_box) & (yy >= per(top)) & (yy < per(bottom)) & (xx >= per(left)) & (xx < per(right))
    # horizontal: the column inside the box maps into the strip right of it (or left of it), repeated
    use_right = r_right >= r_left
    width = torch.where(use_right, r_right, r_left).clamp(min=1)
    start = torch.where(use_right, right + gap, 0)
    src_x = per(start) + (xx - per(left)) % per(width)
    # vertical: the row inside the box maps into the strip below it (or above it)
    use_below = r_below >= r_above
    height = torch.where(use_below, r_below, r_above).clamp(min=1)
    src_y = per(torch.where(use_below, bottom + gap, 0)) + (yy - per(top)) % per(height)

    source = yy * w + xx  # (B, H, W) flat index of the pixel each output pixel copies
    source = torch.where(in_box & per(horizontal), yy * w + src_x, source)
    source = torch.where(in_box & per(vertical), src_y * w + xx, source)
    out = x.flatten(2).gather(2, source.flatten(1)[:, None].expand(b, c, h * w)).view_as(x)
    black = in_box & per(~horizontal & ~vertical)
    return out.masked_fill(black[:, None], 0)


def rrda(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None = None,
         pairing: str = "matching", fill: str = "black"):
    """Paste objects onto other images' contexts (thesis Alg. 3).

    new = m_i * x_i + (1 - m_i) * ctx_j,  label y_i,  ctx_j = x_j with its own object covered by ``fill``.

    ``pairing="alg3"``: for every i a partner j = random(B) drawn independently (with replacement,
    so j = i can happen), and both new_left (object i on context j) and new_right (object j on
    context i) are kept: 2B images, as Alg. 3 lines 2-7. ``pairing="matching"``: a random perfect
    matching in which partners swap contexts (``rrda_partners``): B images.
    ``fill="black"`` zeroes the partner's object; ``fill="tile"`` tiles its bounding box from the
    background beside it (the IN-9 ``only_bg_t`` rule, ``tile_backgrounds``).

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
    context = x * (1 - mask) if fill == "black" else tile_backgrounds(x, mask)  # (B, C, H, W), objects removed
    if pairing == "matching":
        left = torch.arange(x.shape[0], device=x.device)
        right = rrda_partners(x.shape[0], generator).to(x.device)
    else:
        right = torch.randint(x.shape[0], (x.shape[0],), generator=generator).to(x.device)
        left = torch.arange(x.shape[0], device=x.device)
        left, right = torch.cat([left, right]), torch.cat([right, left])  # new_left, then new_right
    x_new = mask[left] * x[left] + (1 - mask[left]) * context[right]
    return x_new, y[left], mask[left]
