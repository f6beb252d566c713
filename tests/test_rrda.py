"""RRDA (thesis Alg. 3) on hand-made tensors."""

import torch

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
