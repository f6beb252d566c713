"""U Analysis (thesis Alg. 4): patch sums, orders and fills against hand-computed values, and a hand-built model
whose prediction depends on which quadrants remain, with its U's derived by hand."""

import pytest
import torch
import torch.nn.functional as F

from rrx.analyses.u_analysis import (
    ORDERS,
    U_FILLS,
    patch_grid,
    patch_order,
    patch_scores,
    removal_sequence,
    sequence_images,
    u_analysis,
    u_triples,
    window_pixels,
)
from rrx.errors import RRXError


def test_window_pixels():
    assert window_pixels(0.1, 32) == 3  # 3.2
    assert window_pixels(0.1, 96) == 10  # 9.6
    assert window_pixels(0.33, 32) == 11  # 10.56
    assert window_pixels(0.25, 10) == 3  # 2.5, halves up
    assert window_pixels(0.01, 32) == 1  # at least one pixel
    assert window_pixels(1.0, 7) == 7
    for bad, what in [(1.5, "larger than the image"), (0.0, "empty"), (-0.1, "empty")]:
        with pytest.raises(RRXError, match=what):
            window_pixels(bad, 32)


def test_patch_grid_and_scores_by_hand():
    assert patch_grid(3, 5, 2).tolist() == [[0, 0, 1, 1, 2], [0, 0, 1, 1, 2], [3, 3, 4, 4, 5]]
    maps = torch.arange(25.0).view(1, 5, 5)  # size 2 does not divide 5: the last patches are 2x1, 1x2, 1x1
    assert patch_scores(maps, 2).tolist() == [[12, 20, 13, 52, 60, 33, 41, 45, 24]]
    maps = torch.stack([torch.ones(4, 4), torch.zeros(4, 4)])
    maps[1, 3, 0] = 7.0
    assert patch_scores(maps, 2).tolist() == [[4, 4, 4, 4], [0, 0, 7, 0]]


def test_patch_order():
    scores = torch.tensor([[3.0, 1.0, 4.0, 2.0], [0.0, 5.0, 0.0, 1.0]])
    assert patch_order(scores, "increasing").tolist() == [[1, 3, 0, 2], [0, 2, 3, 1]]  # ties: row-major
    assert patch_order(scores, "decreasing").tolist() == [[2, 0, 3, 1], [1, 3, 0, 2]]
    scores = torch.zeros(3, 20)
    a = patch_order(scores, "random", torch.Generator().manual_seed(0))
    b = patch_order(scores, "random", torch.Generator().manual_seed(0))
    c = patch_order(scores, "random", torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert all(sorted(row) == list(range(20)) for row in a.tolist())
    assert not torch.equal(a[0], a[1])  # one permutation per image


X = (torch.arange(48.0) / 48).view(1, 3, 4, 4)  # channel c, pixel (i, j): (16 c + 4 i + j) / 48
ORDER = torch.tensor([[3, 0, 2, 1]])  # bottom-right, top-left, bottom-left, top-right (size 2)


def expected(values3, values0):
    """x_1 (patch 3 replaced) and x_2 (patches 3 and 0 replaced) with per-channel replacement values."""
    x1 = X[0].clone()
    for c in range(3):
        x1[c, 2:, 2:] = values3[c]
    x2 = x1.clone()
    for c in range(3):
        x2[c, :2, :2] = values0[c]
    return x1, x2


@pytest.mark.parametrize(
    "fill, values3, values0",
    [
        ("zeros", [0, 0, 0], [0, 0, 0]),
        ("ones", [1, 1, 1], [1, 1, 1]),
        ("image_mean", [7.5 / 48, 23.5 / 48, 39.5 / 48], [7.5 / 48, 23.5 / 48, 39.5 / 48]),  # mean of 0..15 = 7.5
        (
            "region_mean",
            [12.5 / 48, 28.5 / 48, 44.5 / 48],
            [2.5 / 48, 18.5 / 48, 34.5 / 48],
        ),  # {10,11,14,15}, {0,1,4,5}
        ("normalisation_mean", [0.1, 0.2, 0.3], [0.1, 0.2, 0.3]),
    ],
)
def test_removal_sequence_by_hand(fill, values3, values0):
    seq = removal_sequence(X, ORDER, 2, fill, norm_mean=(0.1, 0.2, 0.3))
    assert seq.shape == (1, 5, 3, 4, 4)
    x1, x2 = expected(values3, values0)
    assert torch.equal(seq[0, 0], X[0])  # x_0 is the original
    assert torch.allclose(seq[0, 1], x1) and torch.allclose(seq[0, 2], x2)
    if fill != "region_mean":  # x_4: nothing of the image left
        assert torch.allclose(seq[0, 4], torch.tensor(values3, dtype=torch.float32).view(3, 1, 1).expand(3, 4, 4))


def test_region_mean_of_a_cut_patch():
    x = torch.arange(9.0).view(1, 1, 3, 3)  # size 2: patches {0,1,3,4}, {2,5}, {6,7}, {8}
    seq = removal_sequence(x, torch.tensor([[1, 2, 3, 0]]), 2, "region_mean")
    assert seq[0, 1, 0].tolist() == [[0, 1, 3.5], [3, 4, 3.5], [6, 7, 8]]
    assert seq[0, 4, 0].tolist() == [[2, 2, 3.5], [2, 2, 3.5], [6.5, 6.5, 8]]


def test_gaussian_noise_is_fixed_and_seeded():
    seq = removal_sequence(X, ORDER, 2, "gaussian", torch.Generator().manual_seed(0))
    again = removal_sequence(X, ORDER, 2, "gaussian", torch.Generator().manual_seed(0))
    other = removal_sequence(X, ORDER, 2, "gaussian", torch.Generator().manual_seed(1))
    assert torch.equal(seq, again) and not torch.equal(seq, other)
    removed = torch.zeros(4, 4, dtype=torch.bool)
    removed[2:, 2:] = True
    assert (seq[0, 1][:, removed] != X[0][:, removed]).all()
    assert torch.equal(seq[0, 1][:, ~removed], X[0][:, ~removed])
    assert torch.equal(seq[0, 2][:, removed], seq[0, 1][:, removed])  # the same noise along the sequence
    noise = seq[0, 4].flatten()
    assert noise.min() < 0 and noise.std() > 0.3  # N(0, 1), not clamped
    by_hand = torch.randn(X.shape, generator=torch.Generator().manual_seed(0))
    assert torch.equal(seq[0, 4], by_hand[0])  # one draw of N(0, 1) per pixel and channel, nothing else


def test_u_fills_are_names_of_the_one_vocabulary():
    """U Analysis's fills are rrx.fills names; its gaussian (N(0, 1), not clamped) is not IPHA's grey_gaussian."""
    from rrx.attributions.ipha import IPHA_FILLS
    from rrx.fills import FILLS

    assert set(U_FILLS) <= set(FILLS) and set(IPHA_FILLS) <= set(FILLS) and set(U_FILLS) | set(IPHA_FILLS) == set(FILLS)
    assert "gaussian" in U_FILLS and "gaussian" not in IPHA_FILLS and "grey_gaussian" not in U_FILLS
    assert "N(0, 1)" in FILLS["gaussian"] and "not clamped" in FILLS["gaussian"]


def test_u_triples_by_hand():
    T, F_ = True, False
    correct = torch.tensor(
        [
            [T, F_, F_, T, T, F_, T],
            [T, T, T, T, T, T, T],
            [T, T, F_, F_, F_, F_, F_],
            [F_, F_, T, F_, F_, F_, F_],
            [F_, T, F_, F_, F_, F_, T],
        ]
    )
    assert u_triples(correct) == [[(0, 1, 3), (4, 5, 6)], [], [], [], [(1, 2, 6)]]
    middles = set()
    for seed in range(20):
        found = u_triples(correct, torch.Generator().manual_seed(seed))
        assert found == u_triples(correct, torch.Generator().manual_seed(seed))
        (left, middle, right), second = found[0]
        assert (left, right) == (0, 3) and second == (4, 5, 6) and found[1:4] == [[], [], []]
        middles.add(middle)
        assert 1 < found[4][0][1] < 6
    assert middles == {1, 2}


class Quadrants(torch.nn.Module):
    """Two classes on 8 x 8 images; q_k = mean of quadrant k (0 TL, 1 TR, 2 BL, 3 BR), 1 while intact on an
    all-ones image and 0 once replaced by zeros. Logits (0, s) with s = bias + weights . q."""

    def __init__(self, weights, bias):
        super().__init__()
        self.weights, self.bias = torch.tensor(weights), bias

    def forward(self, x):
        q = F.avg_pool2d(x.mean(1, keepdim=True), 4).flatten(1)  # (B, 4), row-major as the patches
        s = self.bias + q @ self.weights
        return torch.stack([torch.zeros_like(s), s], dim=1)


MAPS = torch.zeros(8, 8)
for k, value in enumerate([3.0, 1.0, 4.0, 2.0]):  # quadrant sums 48, 16, 64, 32
    MAPS[4 * (k // 2) : 4 * (k // 2) + 4, 4 * (k % 2) : 4 * (k % 2) + 4] = value


def run(model, y, order="increasing", batch_size=None):
    b = len(y)
    return u_analysis(
        model,
        torch.ones(b, 3, 8, 8),
        torch.tensor(y),
        MAPS.expand(b, 8, 8),
        window_fraction=0.5,
        order=order,
        fill="zeros",
        batch_size=batch_size,
    )


def test_hand_built_model_with_u():
    # increasing order removes Q1, Q3, Q0, Q2: intact sets (1,1,1,1), (1,0,1,1), (1,0,1,0), (0,0,1,0), (0,0,0,0);
    # s = 1 + 2 q0 + 2 q1 - 2 q2 - 2 q3 = 1, -1, 1, -1, 1: Q3 without Q1 pushes the model away from class 1.
    model = Quadrants([2.0, 2.0, -2.0, -2.0], 1.0)
    for batch_size in (None, 3):
        r = run(model, [1, 0], batch_size=batch_size)
        assert r.size == 4 and r.order.tolist() == [[1, 3, 0, 2]] * 2
        assert r.predictions.tolist() == [[1, 0, 1, 0, 1]] * 2
        assert r.has_u.tolist() == [True, True]
        assert r.triples == [[(0, 1, 2), (2, 3, 4)], [(1, 2, 3)]]  # target 0: correct at 1 and 3 only
    images = sequence_images(torch.ones(2, 3, 8, 8), r.fill, r.order, r.size, 0, (0, 1, 2))
    assert [int(m.sum()) for m in images] == [192, 144, 96]
    # decreasing order removes Q2, Q0, Q3, Q1: s = 1, 3, 1, 3, 1, all class 1, no U
    r = run(model, [1], order="decreasing")
    assert r.predictions.tolist() == [[1, 1, 1, 1, 1]] and r.has_u.tolist() == [False] and r.triples == [[]]


def test_hand_built_model_without_u():
    model = Quadrants([1.0, 1.0, 1.0, 1.0], -2.5)  # class 1 while at least three quadrants remain
    r = run(model, [1, 0])
    assert r.predictions.tolist() == [[1, 1, 0, 0, 0]] * 2
    assert r.has_u.tolist() == [False, False] and r.triples == [[], []]


def test_bad_input():
    model = Quadrants([1.0, 1.0, 1.0, 1.0], 0.0)
    x, y, maps = torch.ones(1, 3, 8, 8), torch.tensor([1]), MAPS[None]
    with pytest.raises(RRXError, match="larger than the image"):
        u_analysis(model, x, y, maps, 1.5, "increasing", "zeros")
    with pytest.raises(RRXError, match="empty"):
        u_analysis(model, x, y, maps, 0, "increasing", "zeros")
    with pytest.raises(RRXError, match="analysis.fill=blur; known: " + ", ".join(U_FILLS)):
        u_analysis(model, x, y, maps, 0.5, "increasing", "blur")
    with pytest.raises(RRXError, match="analysis.order=sideways; known: " + ", ".join(ORDERS)):
        u_analysis(model, x, y, maps, 0.5, "sideways", "zeros")
    with pytest.raises(RRXError, match="normalisation_mean needs"):
        u_analysis(model, x, y, maps, 0.5, "increasing", "normalisation_mean", norm_mean=(0.5, 0.5))


def test_the_u_table_reads_todays_and_an_older_rrxs_results(tmp_path):
    """A result names its fill ``fill`` and its window ``window_fraction``; an older rrx's ``noise`` and ``window``
    (the same values) land in the same columns."""
    from rrx.analyses.u_analysis import figure_u, table_u
    from rrx.record import Record

    result = {"attribution": "saliency", "order": "increasing", "u_share": 0.25, "images": 8}
    runs = [
        Record(
            command="analyze",
            run={"architecture": "SmallCNN", "method": method},
            analyses={"u_analysis": {"key": result | setting}},
        )
        for method, setting in (
            ("Standard", {"fill": "gaussian", "window_fraction": 0.1}),
            ("RRDA", {"noise": "gaussian", "window": 0.1}),
        )
    ]
    df = table_u(runs)
    assert list(df["Fill"]) == ["gaussian"] * 2 and list(df["Window fraction"]) == ["0.1"] * 2
    assert list(df["U share"]) == [25.0, 25.0]
    assert figure_u(runs, "synthetic", tmp_path / "u.png").is_file()
