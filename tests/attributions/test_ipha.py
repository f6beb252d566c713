"""IPHA (thesis Eq. 7.1, Algs. 5-6) on hand-built models whose important pixels are known, the Feature Impact Index
(Eq. 7.2) against a softmax computed by hand, top-k masks, and IPHA as ADA's attribution."""

import math
from dataclasses import fields
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn
from torch.utils.data import TensorDataset

from rrx.analyses import create_analysis
from rrx.analyses.ipha import feature_impact_index
from rrx.attributions import attribution_map
from rrx.attributions.ipha import (
    IPHA_FILLS,
    apply_mask,
    constant_image,
    greedy_top_k,
    hill_climb,
    ipha,
    search_mask,
    top_k_mask,
)
from rrx.config import typed
from rrx.errors import RRXError
from rrx.fills import FILLS, OLD_SPELLINGS
from rrx.methods import create_method
from rrx.methods.ada import ADAConfig, best_context_window
from rrx.models.classifier import Classifier
from rrx.models.small_cnn import SmallCNN
from rrx.runtime import Runtime

REGION = (slice(2, 6), slice(2, 6))  # a 2 x 2-aligned 4 x 4 square of the 8 x 8 images


class ReadsRegion(nn.Module):
    """Two classes: logit 0 = 0.5 * the channel-mean pixels summed over REGION, logit 1 = 0.1 * those outside it.

    On an all-ones image with C = 0, removing a pixel outside REGION raises p_0, removing one inside lowers it, and a
    2 x 2 block straddling the border removes at most 3 outside pixels (+0.3) for at least 1 inside (-0.5).
    """

    def forward(self, x):
        pixels = x.mean(1)  # (B, H, W)
        inside = pixels[:, REGION[0], REGION[1]].sum((1, 2))
        return torch.stack([0.5 * inside, 0.1 * (pixels.sum((1, 2)) - inside)], dim=1)


def _start(shape, seed):
    """Alg. 6 line 1 as documented: the generator's first draw, Bernoulli(0.5) per pixel."""
    return torch.bernoulli(torch.full(shape, 0.5), generator=torch.Generator().manual_seed(seed))


def _p0(x):
    """p_0 of ReadsRegion by the two-class softmax formula, 1 / (1 + exp(l1 - l0))."""
    logits = ReadsRegion()(x)
    return 1 / (1 + torch.exp(logits[:, 1] - logits[:, 0]))


def test_hill_climbing_removes_every_pixel_the_model_reads_against_the_class_and_keeps_the_region():
    x, y = torch.ones(4, 3, 8, 8), torch.zeros(4, dtype=torch.long)
    x[1] = 0  # an all-black image equals C whatever the mask: nothing to gain, it keeps its start
    c = torch.zeros_like(x)
    mask = hill_climb(
        ReadsRegion(), x, y, c, iterations=150, neighbours=16, generator=torch.Generator().manual_seed(3)
    ).mask
    start = _start((4, 1, 8, 8), 3)
    region = torch.zeros(1, 1, 8, 8)
    region[..., REGION[0], REGION[1]] = 1
    # neighbours only zero pixels: what the start had in the region stays, everything outside is gone
    expected = start * region
    expected[1] = start[1]
    assert torch.equal(mask, expected)
    assert (start * (1 - region)).sum() > 0  # there was something to remove
    climbed = [0, 2, 3]
    assert (_p0(mask * x)[climbed] > _p0(start * x)[climbed]).all()
    again = hill_climb(
        ReadsRegion(), x, y, c, iterations=150, neighbours=16, generator=torch.Generator().manual_seed(3)
    )
    assert torch.equal(mask, again.mask) and again.converged.all()


def test_hill_climbing_moves_only_on_a_strict_improvement():
    """Alg. 6 lines 10-11: a model blind to its input never leaves the random start."""
    blind = nn.Sequential(nn.Flatten(), nn.Linear(3 * 6 * 6, 2))
    nn.init.zeros_(blind[1].weight)
    x = torch.rand(3, 3, 6, 6)
    found = hill_climb(
        blind, x, torch.tensor([0, 1, 0]), torch.zeros_like(x), 5, 4, generator=torch.Generator().manual_seed(1)
    )
    assert torch.equal(found.mask, _start((3, 1, 6, 6), 1))
    assert found.iterations.tolist() == [5, 5, 5] and not found.converged.any()  # 5 x 4 of the 25 positions scored


def test_one_step_zeroes_one_block_and_chunking_changes_nothing():
    """logit 0 = -(sum of pixels): every block of ones improves; one step removes ones inside a single 2 x 2 square."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(6 * 6, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.stack([-torch.ones(36), torch.zeros(36)]))
        model[1].bias.zero_()
    x, y = torch.ones(5, 1, 6, 6), torch.zeros(5, dtype=torch.long)
    mask = hill_climb(model, x, y, torch.zeros_like(x), 1, 16, generator=torch.Generator().manual_seed(0)).mask
    removed = _start((5, 1, 6, 6), 0) - mask
    assert (removed >= 0).all()
    for r in removed[:, 0]:
        rows, cols = torch.nonzero(r, as_tuple=True)
        assert len(rows) > 0 and rows.max() - rows.min() <= 1 and cols.max() - cols.min() <= 1
    chunked = hill_climb(
        model, x, y, torch.zeros_like(x), 1, 16, generator=torch.Generator().manual_seed(0), batch_size=7
    )
    assert torch.equal(mask, chunked.mask)


class ChannelDifference(nn.Module):
    """Logit 0 = the sum over pixels of channel 0 minus channel 1, logit 1 = 0. With C = 0 and a mask m, p_0 =
    sigmoid(sum m w) for the per-pixel weights w = x_0 - x_1: a block move scores strictly higher exactly when the
    weights of the kept pixels it zeroes sum below 0. Weights in sixteenths keep every logit exact in float32."""

    def forward(self, x):
        z = (x[:, 0] - x[:, 1]).sum((1, 2))
        return torch.stack([z, torch.zeros_like(z)], dim=1)


def _weighted(w):
    """(B, 3, H, W) images in [0, 1] whose ChannelDifference weights x_0 - x_1 are w (B, H, W), |w| <= 1."""
    return torch.stack([w.clamp(min=0), (-w).clamp(min=0), torch.zeros_like(w)], dim=1)


def _squares(h, w, block=2):
    """Every block x block square wholly inside an h x w image, as a list of (rows, cols) slices."""
    return [(slice(r, r + block), slice(c, c + block)) for r in range(h - block + 1) for c in range(w - block + 1)]


def test_alg6_runs_to_the_best_mask_a_brute_force_over_every_set_of_block_moves_finds():
    """4 x 4 images, 9 squares: the masks Alg. 6 can reach from its start are the start minus a union of squares;
    all 2^9 unions are scored by the weights. Negative weights (at most 4/16) lie in squares of their own, positive
    ones are 1: the best reachable mask is unique, and a climb that stopped short of it would not be converged."""
    g = torch.Generator().manual_seed(4)
    weights = []
    for _ in range(3):
        negative = torch.zeros(4, 4, dtype=torch.bool)
        for r, c in torch.randint(3, (3, 2), generator=g).tolist():
            negative[r : r + 2, c : c + 2] = True
        weights.append(torch.where(negative, -torch.randint(1, 5, (4, 4), generator=g) / 16, torch.ones(4, 4)))
    w = torch.stack(weights)  # (3, 4, 4)
    x, y = _weighted(w), torch.zeros(3, dtype=torch.long)
    found = hill_climb(
        ChannelDifference(),
        x,
        y,
        torch.zeros_like(x),
        iterations=1000,
        neighbours=2,
        generator=torch.Generator().manual_seed(8),
    )
    start = _start((3, 1, 4, 4), 8)[:, 0]
    squares = _squares(4, 4)
    for b in range(3):
        reachable = {}
        for subset in range(2 ** len(squares)):
            mask = start[b].clone()
            for i, (rows, cols) in enumerate(squares):
                if subset >> i & 1:
                    mask[rows, cols] = 0
            reachable[tuple(mask.flatten().tolist())] = float((mask * w[b]).sum())
        top = max(reachable.values())
        (best,) = [m for m, score in reachable.items() if score == top]  # one best mask
        assert found.mask[b, 0].flatten().tolist() == list(best)
    assert found.converged.all() and (found.iterations < 1000).all()
    assert not torch.equal(found.mask[:, 0], start)  # the climb had somewhere to go


def test_a_converged_alg6_mask_has_no_strictly_better_block_move_in_a_full_scan():
    """Random weights: wherever the climb reports converged, zeroing any square of the returned mask removes kept
    weights summing to 0 or more (no strictly better neighbour), checked square by square here."""
    w = torch.randint(-8, 9, (4, 6, 6), generator=torch.Generator().manual_seed(5)) / 16
    x, y = _weighted(w), torch.zeros(4, dtype=torch.long)
    found = hill_climb(
        ChannelDifference(),
        x,
        y,
        torch.zeros_like(x),
        iterations=2000,
        neighbours=3,
        generator=torch.Generator().manual_seed(6),
        batch_size=5,
    )
    start = _start((4, 1, 6, 6), 6)[:, 0]
    assert found.converged.all() and (found.iterations < 2000).all()
    mask = found.mask[:, 0]
    assert (mask <= start).all()  # only ever zeroed
    for b in range(4):
        removed = [float((mask[b] * w[b])[rows, cols].sum()) for rows, cols in _squares(6, 6)]
        assert min(removed) >= 0, f"image {b}: a square of kept weights {min(removed)} would still improve"
        assert min(float((start[b] * w[b])[rows, cols].sum()) for rows, cols in _squares(6, 6)) < 0  # not already there
    again = hill_climb(
        ChannelDifference(),
        x,
        y,
        torch.zeros_like(x),
        iterations=2000,
        neighbours=3,
        generator=torch.Generator().manual_seed(6),
    )
    assert torch.equal(found.mask, again.mask) and torch.equal(found.iterations, again.iterations)


def test_alg6_stops_once_every_movable_square_was_scored_on_the_current_mask():
    """A model blind to its input never moves, so the climb converges after scoring each square that holds a kept
    pixel of the start once: ceil(those squares / neighbours) steps."""
    blind = nn.Sequential(nn.Flatten(), nn.Linear(3 * 6 * 6, 2))
    nn.init.zeros_(blind[1].weight)
    x = torch.rand(3, 3, 6, 6)
    found = hill_climb(
        blind, x, torch.tensor([0, 1, 0]), torch.zeros_like(x), 100, 4, generator=torch.Generator().manual_seed(2)
    )
    start = _start((3, 1, 6, 6), 2)[:, 0]
    movable = [sum(int(start[b][rows, cols].any()) for rows, cols in _squares(6, 6)) for b in range(3)]
    assert found.iterations.tolist() == [math.ceil(m / 4) for m in movable]
    assert found.converged.all() and torch.equal(found.mask[:, 0], start)


def test_greedy_top_k_deletes_down_to_exactly_the_top_k_share_keeping_the_positive_weights():
    """5 x 5 images, k = 12: weight 1 on the first 12 pixels (row-major), at most -4/16 on the other 13, each of which
    lies in a square of negatives. A full scan (neighbours >= the 16 squares) always finds a square of kept negatives
    worth more than any square with a positive pixel, so the deletion ends at exactly the 12 positive pixels."""
    g = torch.Generator().manual_seed(7)
    positive = (torch.arange(25) < 12).reshape(5, 5)
    w = torch.where(positive, torch.ones(2, 5, 5), -torch.randint(1, 5, (2, 5, 5), generator=g) / 16)
    x, y = _weighted(w), torch.zeros(2, dtype=torch.long)
    found = search_mask("greedy_top_k", ChannelDifference(), x, y, torch.zeros_like(x), 100, 16, generator=g)
    assert torch.equal(found.mask[:, 0], positive.float().expand(2, 5, 5))
    assert found.converged.all() and (found.iterations <= 13).all()


@pytest.mark.parametrize("height, width", [(5, 5), (7, 6), (8, 8)])
def test_greedy_top_k_ends_at_exactly_half_the_pixels_even_when_the_last_square_overshoots(height, width):
    """A blind model takes the first drawn square each step, so squares often remove more pixels than are left to
    remove; the mask still keeps exactly H * W // 2 pixels, as the top-k masks do. A short budget is not converged."""
    blind = nn.Sequential(nn.Flatten(), nn.Linear(3 * height * width, 2))
    nn.init.zeros_(blind[1].weight)
    x, y = torch.rand(6, 3, height, width), torch.zeros(6, dtype=torch.long)
    k = height * width // 2
    found = greedy_top_k(blind, x, y, torch.zeros_like(x), 1000, 3, generator=torch.Generator().manual_seed(0))
    assert found.mask.sum((1, 2, 3)).tolist() == [k] * 6 and found.converged.all()
    assert (found.iterations <= height * width - k).all()
    assert set(found.mask.unique().tolist()) == {0.0, 1.0}
    short = greedy_top_k(blind, x, y, torch.zeros_like(x), 2, 3, generator=torch.Generator().manual_seed(0))
    assert not short.converged.any() and (short.mask.sum((1, 2, 3)) > k).all() and short.iterations.tolist() == [2] * 6


def test_a_bad_search_is_one_error_naming_the_value_and_the_choices():
    x, y = torch.ones(1, 3, 8, 8), torch.zeros(1, dtype=torch.long)
    with pytest.raises(RRXError, match="^search=annealing; known: alg6, greedy_top_k$"):
        ipha(ReadsRegion(), x, y, "zeros", 1, 1, None, None, search="annealing")
    with pytest.raises(RRXError, match="^search=annealing; known: alg6, greedy_top_k$"):
        search_mask("annealing", ReadsRegion(), x, y, torch.zeros_like(x), 1, 1)
    with pytest.raises(RRXError, match="^analysis.search=annealing; known: alg6, greedy_top_k$"):
        create_analysis({"name": "ipha", "search": "annealing"})


@pytest.mark.parametrize("search", ["alg6", "greedy_top_k"])
def test_the_analysis_records_each_images_search(tmp_path, search):
    """metrics.json's ``search`` of a fill: the name, the budget, and per image the steps, kept share and
    convergence of the very search the analysis ran (the same seeded call made here)."""
    w = torch.randint(-8, 9, (4, 8, 8), generator=torch.Generator().manual_seed(1)) / 16
    x, y = _weighted(w), torch.zeros(4, dtype=torch.long)
    cfg = {
        "name": "ipha",
        "fill": "zeros",
        "search": search,
        "compare": [],
        "iterations": 3000,
        "neighbours": 8,
        "examples": 0,
        "seed": 2,
    }
    runtime = Runtime(torch.device("cpu"), False, 4, 0, False)
    result = create_analysis(cfg).run(
        ChannelDifference(), TensorDataset(x, y), SimpleNamespace(mean=(0.5,) * 3), runtime, tmp_path
    )["zeros"]
    g = torch.Generator().manual_seed(2 * 4 + 0)  # the zeros fill's generator (seed * 4 + its index)
    found = search_mask(search, ChannelDifference(), x, y, torch.zeros_like(x), 3000, 8, 2, g, 4)
    record = result["search"]
    assert record["name"] == search and record["budget"] == 3000 and record["converged_share"] == 1.0
    assert record["iterations"] == found.iterations.tolist() and record["converged"] == [True] * 4
    assert record["kept"] == pytest.approx(found.mask.mean((1, 2, 3)).tolist())
    assert result["kept"]["ipha"] == pytest.approx(sum(record["kept"]) / 4)
    if search == "greedy_top_k":
        assert record["kept"] == [0.5] * 4


def test_the_fii_tables_and_figures_name_the_search_of_each_row(tmp_path):
    from rrx.analyses.ipha import figure_ipha, table_ipha
    from rrx.record import Record

    stats = {"mean": 0.5, "std": 0.1, "n": 4, "undefined": 0}
    entry = {
        "important": {"ipha": stats, "saliency": stats},
        "non_important": {"ipha": stats, "saliency": stats},
        "kept": {"ipha": 0.5, "saliency": 0.5},
        "key": "zero",
    }
    run = Record(
        command="analyze",
        run={"architecture": "SmallCNN", "method": "Standard"},
        analyses={
            "ipha": {
                "zero [search=alg6]": entry | {"settings": {"search": "alg6"}, "search": {"name": "alg6"}},
                "zero [search=greedy_top_k]": entry
                | {"settings": {"search": "greedy_top_k"}, "search": {"name": "greedy_top_k"}},
            }
        },
    )
    before = Record(
        command="analyze", run={"architecture": "SmallCNN", "method": "RRDA"}, analyses={"ipha": {"zero []": entry}}
    )  # no search
    df = table_ipha([run, before], "important")
    assert list(df["Search"]) == ["alg6", "greedy_top_k", "alg6"] and list(df["ipha"]) == [50.0] * 3
    assert list(df["Fill"]) == ["zeros"] * 3  # an older rrx's key "zero", shown as today's name
    assert figure_ipha([run, before], "synthetic", "important", tmp_path / "fii.png").is_file()


def test_apply_mask_and_the_fills_exactly():
    x = torch.tensor([[[[0.2, 0.4], [0.6, 0.8]], [[1.0, 0.0], [0.5, 0.25]]]])  # (1, 2, 2, 2)
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])  # shared by both channels
    c = torch.full_like(x, 0.7)
    assert torch.equal(apply_mask(x, mask, c), torch.tensor([[[[0.2, 0.7], [0.7, 0.8]], [[1.0, 0.7], [0.7, 0.25]]]]))
    assert torch.equal(constant_image(x, "zeros"), torch.zeros(1, 2, 2, 2))
    assert torch.equal(constant_image(x, "ones"), torch.ones(1, 2, 2, 2))
    mean = constant_image(torch.rand(2, 3, 2, 2), "normalisation_mean", norm_mean=[0.485, 0.456, 0.406])
    assert mean.shape == (2, 3, 2, 2) and mean[1, :, 1, 0].tolist() == pytest.approx([0.485, 0.456, 0.406])
    noise = constant_image(torch.rand(2, 3, 4, 4), "grey_gaussian", torch.Generator().manual_seed(5))
    by_hand = (torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(5)) * 0.25 + 0.5).clamp(0, 1)
    assert torch.equal(noise, by_hand) and not torch.equal(noise[0], noise[1])


def test_ipha_fills_are_names_of_the_one_vocabulary_and_an_older_spelling_gives_the_same_c():
    """IPHA's C is named by rrx.fills (IPHA_FILLS, in the order that seeds each fill's generator); an older rrx's
    zero, one, gaussian, mean are read by the library as today's names, with the very same numbers."""
    assert set(IPHA_FILLS) <= set(FILLS) and len(IPHA_FILLS) == 4
    assert list(OLD_SPELLINGS) == ["zero", "one", "gaussian", "mean"] and tuple(OLD_SPELLINGS.values()) == IPHA_FILLS
    x = torch.rand(2, 3, 4, 4)
    for old, today in OLD_SPELLINGS.items():
        a = constant_image(x, old, torch.Generator().manual_seed(3), [0.1, 0.2, 0.3])
        b = constant_image(x, today, torch.Generator().manual_seed(3), [0.1, 0.2, 0.3])
        assert torch.equal(a, b)
    assert "clamped to [0, 1]" in FILLS["grey_gaussian"] and "N(0.5, 0.25^2)" in FILLS["grey_gaussian"]


def test_ada_takes_the_ipha_fills():
    """ADA's method.ipha_fill offers exactly the fills IPHA's C can be."""
    (spec,) = [f for f in fields(ADAConfig) if f.name == "ipha_fill"]
    assert spec.metadata["choices"] == IPHA_FILLS


def test_ipha_returns_the_important_and_the_non_important_images():
    x, y = torch.ones(2, 3, 8, 8), torch.zeros(2, dtype=torch.long)
    mask, important, non_important = ipha(
        ReadsRegion(), x, y, "grey_gaussian", 20, 8, torch.Generator().manual_seed(2), None
    )
    c = constant_image(x, "grey_gaussian", torch.Generator().manual_seed(2))  # drawn first, as documented
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(important, mask * x + (1 - mask) * c)
    assert torch.equal(non_important, (1 - mask) * x + mask * c)


def test_top_k_mask_on_a_hand_made_map():
    maps = torch.tensor([[[0.1, 0.9, 0.3], [0.9, 0.2, 0.0]], [[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]])
    assert top_k_mask(maps).tolist() == [[[[0, 1, 1], [1, 0, 0]]], [[[1, 1, 1], [0, 0, 0]]]]  # k = 6 // 2; ties: first
    assert top_k_mask(maps, 1)[0, 0].tolist() == [[0, 1, 0], [0, 0, 0]]
    with pytest.raises(RRXError, match="k=7"):
        top_k_mask(maps, 7)


def test_feature_impact_index_against_a_softmax_by_hand():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    w = [[1.0, -1.0, 0.5, 0.0], [0.0, 2.0, 0.0, -1.0], [0.5, 0.5, 0.5, 0.5]]
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor(w))
        model[1].bias.copy_(torch.tensor([0.1, 0.0, -0.2]))
    b = [0.1, 0.0, -0.2]
    x = torch.tensor([[0.2, 0.4, 0.6, 0.8], [1.0, 0.0, 0.5, 0.5]])
    kept = x * torch.tensor([0.0, 1.0, 1.0, 0.0])  # C = 0 where removed

    def p(v, cls):
        logits = [sum(wi * vi for wi, vi in zip(row, v)) + bi for row, bi in zip(w, b)]
        return math.exp(logits[cls]) / sum(math.exp(z) for z in logits)

    y = torch.tensor([1, 0])
    expected = [abs(p(x[i].tolist(), int(y[i])) - p(kept[i].tolist(), int(y[i]))) for i in range(2)]
    fii = feature_impact_index(model, x.view(2, 1, 2, 2), kept.view(2, 1, 2, 2), y)
    assert fii.tolist() == pytest.approx(expected, abs=1e-6)
    assert min(expected) > 0.1  # a real difference to get right


def test_bad_input_is_one_clear_error():
    x, y = torch.ones(1, 3, 8, 8), torch.zeros(1, dtype=torch.long)
    c = torch.zeros_like(x)
    with pytest.raises(RRXError, match="iterations=0"):
        hill_climb(ReadsRegion(), x, y, c, iterations=0, neighbours=4)
    with pytest.raises(RRXError, match="neighbours=0"):
        hill_climb(ReadsRegion(), x, y, c, iterations=1, neighbours=0)
    with pytest.raises(RRXError, match="block=9"):
        hill_climb(ReadsRegion(), x, y, c, iterations=1, neighbours=1, block=9)
    with pytest.raises(RRXError, match="^fill=black; known: zeros, ones, grey_gaussian, normalisation_mean$"):
        ipha(ReadsRegion(), x, y, "black", 1, 1, None, None)
    with pytest.raises(RRXError, match="^ipha_fill=black; known: zeros, ones"):
        attribution_map(ReadsRegion(), x, y, "ipha", ipha_fill="black")
    for fill in ("normalisation_mean", "mean"):
        with pytest.raises(RRXError, match="fill=normalisation_mean needs the normalisation mean"):
            constant_image(x, fill)


def _cnn():
    torch.manual_seed(0)
    return Classifier(SmallCNN(4, width=4), mean=[0.5] * 3, std=[0.25] * 3).eval()


def test_ipha_as_an_attribution_map_is_a_repeatable_binary_map():
    model, x, y = _cnn(), torch.rand(2, 3, 16, 16), torch.tensor([1, 2])
    maps = attribution_map(
        model,
        x,
        y,
        "ipha",
        ipha_iterations=3,
        ipha_neighbours=4,
        ipha_fill="normalisation_mean",
        generator=torch.Generator().manual_seed(0),
    )
    assert maps.shape == (2, 16, 16) and set(maps.unique().tolist()) == {0.0, 1.0}
    for fill in ("normalisation_mean", "mean"):  # and an older rrx's spelling: the same map
        again = attribution_map(
            model,
            x,
            y,
            "ipha",
            ipha_iterations=3,
            ipha_neighbours=4,
            ipha_fill=fill,
            generator=torch.Generator().manual_seed(0),
        )
        assert torch.equal(maps, again)


def test_ada_takes_ipha_and_passes_its_settings_through():
    cfg = OmegaConf.merge(
        OmegaConf.structured(ADAConfig),
        {
            "standard_epochs": 0,
            "ada_epochs": 1,
            "window": 4,
            "augment": "none",
            "attribution": "ipha",
            "ipha_iterations": 2,
            "ipha_neighbours": 3,
            "ipha_fill": "ones",
            "ipha_seed": 7,
        },
    )
    ada = create_method(cfg)
    model, base = (
        _cnn(),
        TensorDataset(torch.rand(5, 3, 16, 16), torch.tensor([0, 1, 2, 3, 0]), torch.zeros(5, 1, 16, 16)),
    )
    runtime = Runtime(torch.device("cpu"), False, 5, 0, False)
    ada.training_set(1, base, model, runtime)
    x, y, m = base.tensors
    model.eval()  # as ADA scores it (it hands the model back in train mode)
    maps = attribution_map(
        model,
        x,
        y,
        "ipha",
        ipha_iterations=2,
        ipha_neighbours=3,
        ipha_fill="ones",
        generator=torch.Generator().manual_seed(7),
    )
    assert torch.equal(ada.corners, best_context_window(maps, m, 4))
    with pytest.raises(RRXError, match="^method.ipha_fill=grey; known: zeros, ones, "):
        typed("method", OmegaConf.merge(cfg, {"ipha_fill": "grey"}))
    with pytest.raises(RRXError, match="^method.ipha_iterations=0: must be >= 1"):
        typed("method", OmegaConf.merge(cfg, {"ipha_iterations": 0}))
