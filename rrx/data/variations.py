"""The IN-9 variation rules, for datasets whose variations are generated from object masks.

All functions take a [0, 1] image x (3, H, W) and its object mask m (1, H, W), 1 on the object.
"""

from __future__ import annotations

import numpy as np
import torch

from rrx.errors import RRXError, check_choice

VARIATIONS = (
    "original",
    "only_fg",
    "no_fg",
    "only_bg_b",
    "only_bg_t",
    "mixed_same",
    "mixed_rand",
    "mixed_next",
)  # IN-9's
# What covers a background image's own object where another object is pasted on it: dataset.fill (RIVAL10's mixed
# variations) and method.fill (RRDA's contexts), one vocabulary. black: the object's pixels zeroed; tile: its
# bounding box tiled from the background beside it (IN-9's only_bg_t rule).
FILL_RULES = ("black", "tile")


def mixed_partners(labels: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Index of the background image for each object, per mixed variation (IN-9 rules).

    mixed_same: another image of the same class; mixed_rand: another image of any class
    (uniform over all other images); mixed_next: an image of class (y + 1) mod K.
    """
    n = len(labels)
    k = int(labels.max()) + 1
    by_class = [np.flatnonzero(labels == c) for c in range(k)]
    for c, members in enumerate(by_class):
        if len(members) < 2:
            raise RRXError(f"class {c} has {len(members)} image(s); mixed_same needs at least 2 per class")
    same, rand, nxt = (np.empty(n, dtype=np.int64) for _ in range(3))
    for i, y in enumerate(labels):
        same[i] = rng.choice(by_class[y][by_class[y] != i])
        rand[i] = (i + rng.integers(1, n)) % n
        nxt[i] = rng.choice(by_class[(y + 1) % k])
    return {"mixed_same": same, "mixed_rand": rand, "mixed_next": nxt}


def bounding_box(m: torch.Tensor) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of the mask's bounding box, bottom/right exclusive; None if empty."""
    rows = torch.nonzero(m[0].any(dim=1)).flatten()
    cols = torch.nonzero(m[0].any(dim=0)).flatten()
    if len(rows) == 0:
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def only_bg_b(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """The object's bounding box set to black."""
    out = x.clone()
    box = bounding_box(m)
    if box is not None:
        top, bottom, left, right = box
        out[:, top:bottom, left:right] = 0
    return out


def _first_true(flags: torch.Tensor) -> torch.Tensor:
    """Index of the first True along the last dim (B, N) -> (B,); N where there is none."""
    n = flags.shape[-1]
    index = torch.arange(n, device=flags.device).expand_as(flags)
    return torch.where(flags, index, n).amin(dim=-1)


def tile_backgrounds(x: torch.Tensor, mask: torch.Tensor, margin: int = 2) -> torch.Tensor:
    """The ``only_bg_t`` rule for a whole batch at once, on x's device.

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


def only_bg_t(x: torch.Tensor, m: torch.Tensor, margin: int = 2) -> torch.Tensor:
    """The object's bounding box filled by tiling the background beside it (``tile_backgrounds`` on one image).

    The box is filled with copies of the wider of the strips left and right of it (same rows),
    else of the taller of the strips above and below it (same columns); those strips hold no
    object pixels. Strips start ``margin`` pixels away from the box, where mask edges and
    resizing blend object into background (closer if the image leaves no room). A box that
    covers the whole image is left black.
    """
    return tile_backgrounds(x[None], m[None], margin)[0]


def background(x: torch.Tensor, m: torch.Tensor, fill: str) -> torch.Tensor:
    """The image (C, H, W) or batch (B, C, H, W) without its object: ``tile`` = only_bg_t (as IN-9's mixed
    backgrounds), ``black`` = object zeroed."""
    check_choice("dataset.fill", fill, FILL_RULES)
    if fill == "black":
        return x * (1 - m)
    return only_bg_t(x, m) if x.dim() == 3 else tile_backgrounds(x, m)


def paste(x: torch.Tensor, m: torch.Tensor, bg: torch.Tensor) -> torch.Tensor:
    """Object of x (where m = 1) on background bg."""
    return m * x + (1 - m) * bg
