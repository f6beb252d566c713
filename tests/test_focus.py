"""Focus on mosaics (seed 004): the mosaics, hand-made maps, and Quantus's Focus on the same arrays."""

import numpy as np
import pytest
import torch

from rrx.analyses.focus import build_mosaics, focus, mosaic_plan
from rrx.errors import RRXError


def test_mosaic_plan_and_mosaics():
    labels = np.array([0, 0, 0, 1, 1, 2, 2])
    members, targets, flags = mosaic_plan(labels, per_class=3, rng=np.random.default_rng(0))
    assert members.shape == (9, 4) and list(targets) == [0] * 3 + [1] * 3 + [2] * 3
    for row, target, flag in zip(members, targets, flags):
        assert len(set(row)) == 4 and flag.sum() == 2
        assert all((labels[i] == target) == f for i, f in zip(row, flag))
    images = torch.arange(7, dtype=torch.float32).view(7, 1, 1, 1).expand(7, 1, 2, 3)
    mosaics = build_mosaics(images, torch.from_numpy(members))
    assert mosaics.shape == (9, 1, 4, 6)
    m = mosaics[0, 0]
    assert [m[0, 0], m[0, 3], m[2, 0], m[2, 3]] == [float(i) for i in members[0]]  # TL, TR, BL, BR
    with pytest.raises(RRXError, match="at least two classes"):
        mosaic_plan(np.zeros(4, int), 1, np.random.default_rng(0))


def test_focus_on_hand_made_maps():
    maps = torch.zeros(3, 4, 4)
    maps[0, :2, :2] = 1.0                      # all relevance top-left
    maps[1] = 1.0                              # uniform
    maps[2, 2:, 2:] = 3.0
    maps[2, :2, :2] = -5.0                     # negative relevance does not count
    flags = torch.tensor([[True, False, True, False], [True, True, False, False], [False, False, False, True]])
    assert focus(maps, flags).tolist() == pytest.approx([1.0, 0.5, 1.0])
    assert torch.isnan(focus(torch.zeros(1, 4, 4), flags[:1])).all()


def test_against_quantus_focus():
    quantus = pytest.importorskip("quantus")
    rng = np.random.default_rng(1)
    maps = rng.normal(size=(8, 1, 10, 12)).astype(np.float32)
    flags = np.stack([rng.permutation([True, True, False, False]) for _ in range(8)])
    theirs = quantus.Focus(disable_warnings=True, normalise=False, abs=False).evaluate_batch(a_batch=maps, c_batch=flags.astype(int))
    ours = focus(torch.from_numpy(maps), torch.from_numpy(flags))
    assert ours.numpy() == pytest.approx(np.asarray(theirs, dtype=np.float64), abs=1e-6)
