"""Localisation metrics, the weighted IoU and ObEy's best over object masks, against hand-computed values and Quantus on
the same arrays."""

import numpy as np
import pytest
import torch

from rrx.analyses.localisation import (
    iou,
    normalise_map,
    obey,
    obey_iou,
    pointing_game,
    relevance_mass,
    relevance_rank,
    stack_masks,
    weighted_iou,
)


def _hand_made():
    maps = torch.tensor(
        [
            [[0.0, 4.0], [1.0, 3.0]],  # max at (0, 1), on the object
            [[5.0, 1.0], [1.0, 0.0]],  # max at (0, 0), off the object
            [[2.0, 2.0], [0.0, 0.0]],
        ]
    )  # tied maxima, one on the object
    masks = torch.tensor([[[0, 1], [0, 1]], [[0, 1], [1, 0]], [[0, 1], [0, 0]]], dtype=torch.float32)
    return maps, masks


def test_hand_made_values():
    maps, masks = _hand_made()
    assert pointing_game(maps, masks).tolist() == [1.0, 0.0, 1.0]
    assert relevance_mass(maps, masks).tolist() == pytest.approx([7 / 8, 2 / 7, 2 / 4])
    # top-|mask| pixels: image 0 {4, 3} both inside; image 1 {5, then a tie of 1s taken in index order} -> 1 of 2;
    # image 2: top-1 is the first of the tied 2s, at (0, 0), outside
    assert relevance_rank(maps, masks).tolist() == pytest.approx([1.0, 0.5, 0.0])
    # image 0: p = [0, 1, .25, .75], q = [0, 1, 0, 1]: sum p q = 1.75, sum max = 0 + 1 + .25 + 1 = 2.25
    assert weighted_iou(maps, masks)[0].item() == pytest.approx(1.75 / 2.25)
    # p >= .5 at pixels 1 and 3 = the mask: IoU 1
    assert iou(maps, masks)[0].item() == 1.0


def test_an_empty_mask_is_nan_and_a_constant_map_normalises_to_zero():
    maps = torch.ones(1, 3, 3)
    masks = torch.zeros(1, 1, 3, 3)
    for metric in (pointing_game, relevance_mass, relevance_rank, weighted_iou, iou):
        assert torch.isnan(metric(maps, masks)).all()
    assert normalise_map(maps).abs().sum() == 0


def test_a_constant_map_points_nowhere():
    """An all-zero (or any constant) map beside a varying one: undefined for every metric (every pixel is a maximum,
    the ranking is arbitrary), while the varying map's values stand: its maximum (9) lies on the object."""
    maps = torch.stack([torch.zeros(3, 3), torch.arange(9.0).reshape(3, 3)])
    masks = torch.zeros(2, 1, 3, 3)
    masks[:, :, 2, 2] = 1
    for metric in (pointing_game, relevance_mass, relevance_rank, weighted_iou, iou):
        values = metric(maps, masks)
        assert torch.isnan(values[0]) and not torch.isnan(values[1]), metric.__name__
    assert pointing_game(maps, masks)[1] == 1 and relevance_mass(maps, masks)[1] == pytest.approx(8 / 36)


@pytest.mark.parametrize("name", ["PointingGame", "RelevanceMassAccuracy", "RelevanceRankAccuracy"])
def test_against_quantus(name):
    quantus = pytest.importorskip("quantus")
    rng = np.random.default_rng(0)
    maps = rng.random((6, 1, 12, 12)).astype(np.float32)
    masks = np.zeros((6, 1, 12, 12), np.float32)
    for i in range(6):
        top, left = rng.integers(0, 6, size=2)
        masks[i, 0, top : top + 5, left : left + 4] = 1
    ours = {
        "PointingGame": pointing_game,
        "RelevanceMassAccuracy": relevance_mass,
        "RelevanceRankAccuracy": relevance_rank,
    }[name](torch.from_numpy(maps[:, 0]), torch.from_numpy(masks))
    metric = getattr(quantus, name)(disable_warnings=True, normalise=False, abs=False)
    theirs = metric.evaluate_batch(a_batch=maps, s_batch=masks)
    assert ours.numpy() == pytest.approx(np.asarray(theirs, dtype=np.float64), abs=1e-6)


def _hand_wiou(p, a):
    """Eq. 1 written out: sum p a / sum max(p, a), p already in [0, 1]."""
    return sum(pj * aj for pj, aj in zip(p, a)) / sum(max(pj, aj) for pj, aj in zip(p, a))


def test_obey_is_the_best_wiou_over_the_object_masks():
    """Two 2 x 2 images, up to three masks each (the second image has two, plus a padding entry that is not valid and
    would score 1). Maps normalise to p0 = [0, 1, .25, .75], p1 = [1, .5, 0, 0]."""
    maps = torch.tensor([[[0.0, 4.0], [1.0, 3.0]], [[2.0, 1.0], [0.0, 0.0]]])
    sets = torch.tensor(
        [
            [[[0, 1], [0, 1]], [[1, 0], [1, 0]], [[0, 1], [0, 0]]],
            [[[0, 0], [1, 1]], [[0, 1], [0, 0]], [[1, 1], [0, 0]]],
        ],
        dtype=torch.float32,
    )
    valid = torch.tensor([[True, True, True], [True, True, False]])
    p0, p1 = [0, 1, 0.25, 0.75], [1, 0.5, 0, 0]
    by_hand0 = [_hand_wiou(p0, a) for a in ([0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 0])]  # 1.75/2.25, .25/3.75, 1/2
    by_hand1 = [_hand_wiou(p1, a) for a in ([0, 0, 1, 1], [0, 1, 0, 0])]  # 0, .5/2
    assert by_hand0 == pytest.approx([1.75 / 2.25, 0.25 / 3.75, 1 / 2]) and by_hand1 == pytest.approx([0, 0.25])
    assert obey(maps, sets, valid).tolist() == pytest.approx([max(by_hand0), max(by_hand1)])
    # the padding entry ([1, 1, 0, 0]: wIoU 1.5 / 2) would have won for image 1 if it counted
    assert obey(maps, sets).tolist() == pytest.approx([max(by_hand0), _hand_wiou(p1, [1, 1, 0, 0])])
    # unweighted (A.6): {p >= .5} = pixels {1, 3}: IoU 1 with mask 0 of image 0; {0, 1}: 1/2 with mask 1 of image 1
    assert obey_iou(maps, sets, valid).tolist() == [1.0, 0.5]
    # {p >= .9} = pixel {1} (image 0: IoU 1/2 with mask 0, 1 with mask 2) and pixel {0} (image 1: 0 with both masks)
    assert obey_iou(maps, sets, valid, threshold=0.9).tolist() == pytest.approx([1.0, 0.0])


def test_obey_of_one_mask_is_the_weighted_iou_and_more_masks_never_lower_it():
    rng = torch.Generator().manual_seed(0)
    maps = torch.rand(5, 6, 6, generator=rng)
    masks = (torch.rand(5, 4, 6, 6, generator=rng) > 0.6).float()
    assert obey(maps, masks[:, :1]) == pytest.approx(weighted_iou(maps, masks[:, 0]), abs=1e-6)
    assert obey_iou(maps, masks[:, :1], threshold=0.3) == pytest.approx(iou(maps, masks[:, 0], 0.3), abs=1e-6)
    assert (obey(maps, masks) >= weighted_iou(maps, masks[:, 0]) - 1e-6).all()
    per_mask = torch.stack([weighted_iou(maps, masks[:, k]) for k in range(4)], 1)
    assert obey(maps, masks) == pytest.approx(per_mask.amax(1), abs=1e-6)


def test_obey_is_undefined_for_a_constant_map_or_without_a_non_empty_mask():
    maps = torch.stack([torch.ones(3, 3), torch.arange(9.0).reshape(3, 3), torch.arange(9.0).reshape(3, 3)])
    masks = torch.zeros(3, 2, 3, 3)
    masks[:, 0, 2, 2] = 1
    valid = torch.tensor([[True, True], [True, True], [False, True]])  # image 2: its one non-empty mask is padding
    for metric in (obey, obey_iou):
        values = metric(maps, masks, valid)
        assert torch.isnan(values[0]) and torch.isnan(values[2]) and not torch.isnan(values[1])
    assert obey(maps, masks, valid)[1].item() == pytest.approx(1 / 4.5)  # p = k / 8: inter 1, union 1 + 4.5 - 1
    assert torch.isnan(obey(maps, torch.zeros(3, 0, 3, 3))).all()  # no masks at all


def test_stack_masks_pads_flags_and_resizes_like_the_loaders():
    a = np.zeros((2, 4, 4), bool)
    a[0, :2, :2], a[1, 2:, :] = True, True
    sets, valid = stack_masks([a, np.zeros((0, 4, 4), bool), a[:1]], (8, 8), "cpu")
    assert sets.shape == (3, 2, 8, 8) and valid.tolist() == [[True, True], [False, False], [True, False]]
    assert torch.equal(sets[0], torch.from_numpy(np.kron(a, np.ones((2, 2), bool))))
    assert not sets[1].any() and not sets[2, 1].any()
