"""Image files in, tensors out: reading RGB files, resizing images and masks to a square side, and dropping the
samples that cannot be read (``dataset.on_bad_sample=skip``)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from rrx.errors import RRXError

log = logging.getLogger(__name__)

BAD_SAMPLE_RULES = ("error", "skip")  # dataset.on_bad_sample: stop naming the file, or check all and drop bad ones
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")


def load_rgb_bytes(path: Path) -> np.ndarray:
    """(H, W, 3) uint8; an unreadable file is an RRXError naming it."""
    try:
        with Image.open(path) as img:
            return np.array(img.convert("RGB"), dtype=np.uint8)
    except OSError as err:
        raise RRXError(f"cannot read image {path}: {err}") from err


def load_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1]; an unreadable file is an RRXError naming it."""
    return load_rgb_bytes(path).astype(np.float32) / 255.0


def keep_readable(samples: list, load) -> tuple[list, list[str]]:
    """The samples whose ``load(index)`` succeeds, and the errors of the others (each logged)."""
    good, skipped = [], []
    for index, sample in enumerate(samples):
        try:
            load(index)
        except RRXError as err:
            skipped.append(str(err))
            log.warning("skipped: %s", err)
            continue
        good.append(sample)
    return good, skipped


def resize(t: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    """An image or mask (C, H, W) resized to (C, size, size): ``bilinear`` (antialiased) or ``nearest``; returned
    as it is when it already has that size."""
    if t.shape[-2:] == (size, size):
        return t
    kwargs = {"align_corners": False, "antialias": True} if mode == "bilinear" else {}
    return F.interpolate(t[None], size=(size, size), mode=mode, **kwargs)[0]
