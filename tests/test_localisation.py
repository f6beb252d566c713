"""Localisation metrics and ObEy's weighted IoU, against hand-computed values and Quantus on the same arrays."""

import numpy as np
import pytest
import torch

from rrx.analyses.localisation import iou, normalise_map, pointing_game, relevance_mass, relevance_rank, weighted_iou


def _hand_made():
    maps = torch.tensor([[[0.0, 4.0], [1.0, 3.0]],     # max at (0, 1), on the object
                         [[5.0, 1.0], [1.0, 0.0]],     # max at (0, 0), off the object
                         [[2.0, 2.0], [0.0, 0.0]]])    # tied maxima, one on the object
    masks = torch.tensor([[[0, 1], [0, 1]],
                          [[0, 1], [1, 0]],
                          [[0, 1], [0, 0]]], dtype=torch.float32)
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
    ours = {"PointingGame": pointing_game, "RelevanceMassAccuracy": relevance_mass,
            "RelevanceRankAccuracy": relevance_rank}[name](torch.from_numpy(maps[:, 0]), torch.from_numpy(masks))
    metric = getattr(quantus, name)(disable_warnings=True, normalise=False, abs=False)
    theirs = metric.evaluate_batch(a_batch=maps, s_batch=masks)
    assert ours.numpy() == pytest.approx(np.asarray(theirs, dtype=np.float64), abs=1e-6)
