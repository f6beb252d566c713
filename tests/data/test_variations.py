"""IN-9 variation rules (used for RIVAL10) on hand-made tensors."""

import numpy as np
import pytest
import torch

from rrx.data.variations import background, bounding_box, mixed_partners, only_bg_b, only_bg_t, paste
from rrx.errors import RRXError


def _image():
    """1-channel 6x8 image whose pixel (r, c) = 10 r + c; object at rows 1..2, cols 1..2."""
    x = (10 * torch.arange(6)[:, None] + torch.arange(8)[None]).float()[None]
    m = torch.zeros(1, 6, 8)
    m[0, 1:3, 1:3] = 1
    m[0, 2, 1] = 0  # not a full box: the box is still rows 1..2, cols 1..2
    return x, m


def test_bounding_box():
    _, m = _image()
    assert bounding_box(m) == (1, 3, 1, 3)
    assert bounding_box(torch.zeros(1, 4, 4)) is None


def test_only_bg_b_blacks_the_box():
    x, m = _image()
    out = only_bg_b(x, m)
    assert (out[0, 1:3, 1:3] == 0).all() and out[0, 0, 0] == 0 and out[0, 3, 3] == 33


def test_only_bg_t_tiles_the_strip_two_pixels_right_of_the_box():
    x, m = _image()
    out = only_bg_t(x, m)
    # right strip starts at column 3 + 2 = 5: columns 5, 6, 7 -> box columns 1, 2 get 5, 6.
    assert out[0, 1:3, 1:3].tolist() == [[15, 16], [25, 26]]
    assert torch.equal(out[0, :, 3:], x[0, :, 3:]) and torch.equal(out[0, 0], x[0, 0])


def test_only_bg_t_with_no_room_beside_uses_rows_below():
    x = torch.arange(16).float().view(1, 4, 4)
    m = torch.zeros(1, 4, 4)
    m[0, 0, :] = 1  # the object spans the full width
    out = only_bg_t(x, m)
    assert out[0, 0].tolist() == x[0, 3].tolist()  # rows from 0 + 1 + 2 = 3 on


def test_background_and_paste():
    x, m = _image()
    assert torch.equal(background(x, m, "black"), x * (1 - m))
    assert torch.equal(background(x, m, "tile"), only_bg_t(x, m))
    with pytest.raises(RRXError, match="dataset.fill=grey; known: black, tile"):
        background(x, m, "grey")
    bg = torch.full_like(x, -1.0)
    pasted = paste(x, m, bg)
    assert pasted[0, 1, 1] == 11 and pasted[0, 2, 1] == -1 and pasted[0, 0, 0] == -1


def test_mixed_partners_needs_two_images_per_class():
    with pytest.raises(RRXError, match="class 1 has 1 image"):
        mixed_partners(np.array([0, 0, 1]), np.random.default_rng(0))


def test_dataset_fill_and_method_fill_are_one_vocabulary():
    from rrx.data.variations import FILL_RULES
    from rrx.methods.rrda import FILLS

    assert FILL_RULES == ("black", "tile") and tuple(FILLS) == FILL_RULES
