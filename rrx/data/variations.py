"""The IN-9 variation rules, for datasets whose variations are generated from object masks.

All functions take a [0, 1] image x (3, H, W) and its object mask m (1, H, W), 1 on the object.
"""

from __future__ import annotations

import numpy as np
import torch

from rrx.errors import RRXError, check_choice

FILL_RULES = ("tile", "black")


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


def only_bg_t(x: torch.Tensor, m: torch.Tensor, margin: int = 2) -> torch.Tensor:
    """The object's bounding box filled by tiling the background beside it.

    The box is filled with copies of the wider of the strips left and right of it (same rows),
    else of the taller of the strips above and below it (same columns); those strips hold no
    object pixels. Strips start ``margin`` pixels away from the box, where mask edges and
    resizing blend object into background (closer if the image leaves no room). A box that
    covers the whole image is left black.
    """
    out = only_bg_b(x, m)
    box = bounding_box(m)
    if box is None:
        return out
    top, bottom, left, right = box
    height, width = x.shape[1:]
    for gap in (margin, 0):
        room_left, room_right = left - gap, width - right - gap
        room_above, room_below = top - gap, height - bottom - gap
        if max(room_left, room_right) > 0:
            if room_right >= room_left:
                strip = x[:, top:bottom, right + gap :]
            else:
                strip = x[:, top:bottom, : left - gap]
            reps = -(-(right - left) // strip.shape[2])
            out[:, top:bottom, left:right] = strip.repeat(1, 1, reps)[:, :, : right - left]
            break
        if max(room_above, room_below) > 0:
            strip = x[:, bottom + gap :, left:right] if room_below >= room_above else x[:, : top - gap, left:right]
            reps = -(-(bottom - top) // strip.shape[1])
            out[:, top:bottom, left:right] = strip.repeat(1, reps, 1)[:, : bottom - top, :]
            break
    return out


def background(x: torch.Tensor, m: torch.Tensor, fill: str) -> torch.Tensor:
    """The image without its object: ``tile`` = only_bg_t (as IN-9's mixed backgrounds), ``black`` = object zeroed."""
    check_choice("dataset.fill", fill, FILL_RULES)
    return only_bg_t(x, m) if fill == "tile" else x * (1 - m)


def paste(x: torch.Tensor, m: torch.Tensor, bg: torch.Tensor) -> torch.Tensor:
    """Object of x (where m = 1) on background bg."""
    return m * x + (1 - m) * bg
