"""RRDA (thesis Alg. 3) on hand-made tensors."""

import torch

from rrx.data.variations import bounding_box, only_bg_b
from rrx.methods.rrda import rrda, rrda_partners


def _batch():
    """Four 1-channel 2x2 images: image i has value 10*i + 1 on its object, 10*i + 2 on its context."""
    masks = torch.tensor(
        [
            [[1, 0], [0, 0]],
            [[0, 1], [0, 0]],
            [[1, 1], [0, 0]],
            [[0, 0], [0, 1]],
        ],
        dtype=torch.float32,
    )[:, None]  # (4, 1, 2, 2)
    x = torch.stack([torch.where(masks[i] == 1, 10.0 * i + 1, 10.0 * i + 2) for i in range(4)])
    y = torch.tensor([5, 6, 7, 8])
    return x, y, masks


def test_partners_pair_up_both_directions():
    for size in (2, 4, 8, 64):
        partner = rrda_partners(size, torch.Generator().manual_seed(size))
        idx = torch.arange(size)
        assert torch.equal(partner[partner], idx), "each pair appears in both directions"
        assert (partner != idx).all()


def test_partners_odd_batch():
    partner = rrda_partners(5, torch.Generator().manual_seed(1))
    paired = [i for i in range(5) if partner[partner[i]] == i and partner[i] != i]
    assert len(paired) == 4
    (last,) = set(range(5)) - set(paired)
    assert partner[last] != last


def test_object_kept_context_from_partner_labels_follow_object():
    x, y, m = _batch()
    g = torch.Generator().manual_seed(0)
    partner = rrda_partners(4, torch.Generator().manual_seed(0))
    x_new, y_new, m_new = rrda(x, y, m, g)
    assert torch.equal(y_new, y)
    assert torch.equal(m_new, m)
    for i in range(4):
        j = int(partner[i])
        for r in range(2):
            for c in range(2):
                if m[i, 0, r, c] == 1:
                    expected = 10.0 * i + 1  # own object, exactly
                elif m[j, 0, r, c] == 1:
                    expected = 0.0  # partner's object removed: black fill
                else:
                    expected = 10.0 * j + 2  # partner's context
                assert x_new[i, 0, r, c].item() == expected, (i, j, r, c)


def test_every_image_swaps_context_with_its_partner():
    x, y, m = _batch()
    partner = rrda_partners(4, torch.Generator().manual_seed(3))
    x_new, _, _ = rrda(x, y, m, torch.Generator().manual_seed(3))
    # Image 0's context pixel (1, 0) is context in every image: it must come from the partner.
    for i in range(4):
        j = int(partner[i])
        assert x_new[i, 0, 1, 0].item() == 10.0 * j + 2
        assert x_new[j, 0, 1, 0].item() == 10.0 * i + 2


def test_alg3_gives_2b_images_from_independent_partners():
    """Alg. 3: right = random(B) for every left, with replacement; new_left then new_right."""
    x, y, m = _batch()
    right = torch.randint(4, (4,), generator=torch.Generator().manual_seed(7))  # the draw rrda makes
    x_new, y_new, m_new = rrda(x, y, m, torch.Generator().manual_seed(7), pairing="alg3")
    assert x_new.shape == (8, 1, 2, 2)
    pairs = [(i, int(right[i])) for i in range(4)] + [(int(right[i]), i) for i in range(4)]  # (object, context)
    for k, (i, j) in enumerate(pairs):
        assert y_new[k] == y[i] and torch.equal(m_new[k], m[i])
        for r in range(2):
            for c in range(2):
                if m[i, 0, r, c] == 1:
                    expected = 10.0 * i + 1
                elif m[j, 0, r, c] == 1:
                    expected = 0.0
                else:
                    expected = 10.0 * j + 2
                assert x_new[k, 0, r, c].item() == expected, (k, i, j, r, c)


def test_alg3_draws_with_replacement():
    partners = torch.randint(64, (64,), generator=torch.Generator().manual_seed(0))
    assert len(set(partners.tolist())) < 64  # repeats: not a permutation
    x = torch.rand(64, 3, 8, 8)
    m = torch.zeros(64, 1, 8, 8)
    m[:, :, 2:5, 2:5] = 1
    x_new, y_new, _ = rrda(x, torch.arange(64), m, torch.Generator().manual_seed(0), pairing="alg3")
    assert x_new.shape[0] == 128 and torch.equal(y_new[64:], partners)


def test_tile_fill_covers_the_partners_object_with_its_background():
    """A 1x6 strip image: object (value 9) at columns 1-2 of image 1;
    tile copies columns 5.. (margin 2) into the box."""
    x = torch.tensor([[[[1.0, 1, 1, 1, 1, 1]]], [[[2.0, 9, 9, 3, 4, 5]]]])  # (2, 1, 1, 6)
    m = torch.tensor([[[[0.0, 0, 0, 0, 0, 1]]], [[[0.0, 1, 1, 0, 0, 0]]]])
    x_new, _, _ = rrda(x, torch.tensor([0, 1]), m, torch.Generator().manual_seed(0), pairing="matching", fill="tile")
    # image 0 keeps its object (column 5) on image 1's context, whose object box (cols 1-2) is tiled
    # from the strip right of it starting 2 px away: column 5 only, value 5
    assert x_new[0, 0, 0].tolist() == [2.0, 5.0, 5.0, 3.0, 4.0, 1.0]
    black, _, _ = rrda(x, torch.tensor([0, 1]), m, torch.Generator().manual_seed(0), fill="black")
    assert black[0, 0, 0].tolist() == [2.0, 0.0, 0.0, 3.0, 4.0, 1.0]


def _only_bg_t_by_strips(x, m, margin=2):
    """The only_bg_t rule as rrx wrote it per image before the batched version: the reference it must equal.

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


def test_batched_tiling_equals_the_per_image_only_bg_t_rule():
    from rrx.data.variations import tile_backgrounds

    g = torch.Generator().manual_seed(0)
    x = torch.rand(24, 3, 16, 16, generator=g)
    m = torch.zeros(24, 1, 16, 16)
    for i in range(24):  # boxes of every size and place, including the whole image and none at all
        t, left = torch.randint(0, 16, (2,), generator=g).tolist()
        b, r = torch.randint(t + 1, 17, (1,), generator=g).item(), torch.randint(left + 1, 17, (1,), generator=g).item()
        m[i, :, t:b, left:r] = 1
    m[0] = 1
    m[1] = 0
    m[2, :, 1:15, 1:15] = 1  # room only at gap 0
    expected = torch.stack([_only_bg_t_by_strips(x[i], m[i]) for i in range(24)])
    assert torch.equal(tile_backgrounds(x, m), expected)


def test_unknown_pairing_and_fill_list_the_choices():
    import pytest

    from rrx.errors import RRXError

    x, y, m = _batch()
    with pytest.raises(RRXError, match="method.pairing=pairs; known: alg3, matching"):
        rrda(x, y, m, pairing="pairs")
    with pytest.raises(RRXError, match="method.fill=grey; known: black, tile"):
        rrda(x, y, m, fill="grey")
