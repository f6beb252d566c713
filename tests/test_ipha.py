"""IPHA (thesis Eq. 7.1, Algs. 5-6) on hand-built models whose important pixels are known, the Feature Impact Index
(Eq. 7.2) against a softmax computed by hand, top-k masks, and IPHA as ADA's attribution."""

import math
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn
from torch.utils.data import TensorDataset

from rrx.analyses.ipha import (apply_mask, constant_image, feature_impact_index, hill_climb, ipha, top_k_mask)
from rrx.attributions import attribution_map
from rrx.errors import RRXError
from rrx.methods import create_method
from rrx.methods.ada import best_context_window
from rrx.models.classifier import Classifier
from rrx.models.small_cnn import SmallCNN
from rrx.runtime import Runtime

ADA_YAML = Path(__file__).resolve().parents[1] / "conf" / "method" / "ada.yaml"
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
    mask = hill_climb(ReadsRegion(), x, y, c, iterations=150, neighbours=16, generator=torch.Generator().manual_seed(3))
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
    again = hill_climb(ReadsRegion(), x, y, c, iterations=150, neighbours=16, generator=torch.Generator().manual_seed(3))
    assert torch.equal(mask, again)


def test_hill_climbing_moves_only_on_a_strict_improvement():
    """Alg. 6 lines 10-11: a model blind to its input never leaves the random start."""
    blind = nn.Sequential(nn.Flatten(), nn.Linear(3 * 6 * 6, 2))
    nn.init.zeros_(blind[1].weight)
    x = torch.rand(3, 3, 6, 6)
    mask = hill_climb(blind, x, torch.tensor([0, 1, 0]), torch.zeros_like(x), 5, 4,
                      generator=torch.Generator().manual_seed(1))
    assert torch.equal(mask, _start((3, 1, 6, 6), 1))


def test_one_step_zeroes_one_block_and_chunking_changes_nothing():
    """logit 0 = -(sum of pixels): every block of ones improves; one step removes ones inside a single 2 x 2 square."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(6 * 6, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.stack([-torch.ones(36), torch.zeros(36)]))
        model[1].bias.zero_()
    x, y = torch.ones(5, 1, 6, 6), torch.zeros(5, dtype=torch.long)
    mask = hill_climb(model, x, y, torch.zeros_like(x), 1, 16, generator=torch.Generator().manual_seed(0))
    removed = _start((5, 1, 6, 6), 0) - mask
    assert (removed >= 0).all()
    for r in removed[:, 0]:
        rows, cols = torch.nonzero(r, as_tuple=True)
        assert len(rows) > 0 and rows.max() - rows.min() <= 1 and cols.max() - cols.min() <= 1
    chunked = hill_climb(model, x, y, torch.zeros_like(x), 1, 16, generator=torch.Generator().manual_seed(0), batch_size=7)
    assert torch.equal(mask, chunked)


def test_apply_mask_and_the_constants_exactly():
    x = torch.tensor([[[[0.2, 0.4], [0.6, 0.8]], [[1.0, 0.0], [0.5, 0.25]]]])  # (1, 2, 2, 2)
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])  # shared by both channels
    c = torch.full_like(x, 0.7)
    assert torch.equal(apply_mask(x, mask, c), torch.tensor([[[[0.2, 0.7], [0.7, 0.8]], [[1.0, 0.7], [0.7, 0.25]]]]))
    assert torch.equal(constant_image(x, "zero"), torch.zeros(1, 2, 2, 2))
    assert torch.equal(constant_image(x, "one"), torch.ones(1, 2, 2, 2))
    mean = constant_image(torch.rand(2, 3, 2, 2), "mean", norm_mean=[0.485, 0.456, 0.406])
    assert mean.shape == (2, 3, 2, 2) and mean[1, :, 1, 0].tolist() == pytest.approx([0.485, 0.456, 0.406])
    noise = constant_image(torch.rand(2, 3, 4, 4), "gaussian", torch.Generator().manual_seed(5))
    by_hand = (torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(5)) * 0.25 + 0.5).clamp(0, 1)
    assert torch.equal(noise, by_hand) and not torch.equal(noise[0], noise[1])


def test_ipha_returns_the_important_and_the_non_important_images():
    x, y = torch.ones(2, 3, 8, 8), torch.zeros(2, dtype=torch.long)
    mask, important, non_important = ipha(ReadsRegion(), x, y, "gaussian", 20, 8, torch.Generator().manual_seed(2), None)
    c = constant_image(x, "gaussian", torch.Generator().manual_seed(2))  # drawn first, as documented
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
    with pytest.raises(RRXError, match="constant=black; known: zero, one, gaussian, mean"):
        ipha(ReadsRegion(), x, y, "black", 1, 1, None, None)
    with pytest.raises(RRXError, match="normalisation mean"):
        constant_image(x, "mean")


def _cnn():
    torch.manual_seed(0)
    return Classifier(SmallCNN(4, width=4), mean=[0.5] * 3, std=[0.25] * 3).eval()


def test_ipha_as_an_attribution_map_is_a_repeatable_binary_map():
    model, x, y = _cnn(), torch.rand(2, 3, 16, 16), torch.tensor([1, 2])
    maps = attribution_map(model, x, y, "ipha", ipha_iterations=3, ipha_neighbours=4, ipha_constant="mean",
                           generator=torch.Generator().manual_seed(0))
    assert maps.shape == (2, 16, 16) and set(maps.unique().tolist()) == {0.0, 1.0}
    again = attribution_map(model, x, y, "ipha", ipha_iterations=3, ipha_neighbours=4, ipha_constant="mean",
                            generator=torch.Generator().manual_seed(0))
    assert torch.equal(maps, again)


def test_ada_takes_ipha_and_passes_its_settings_through():
    cfg = OmegaConf.merge(OmegaConf.load(ADA_YAML), {"standard_epochs": 0, "ada_epochs": 1, "window": 4, "augment": "none",
                                                     "attribution": "ipha", "ipha_iterations": 2, "ipha_neighbours": 3,
                                                     "ipha_constant": "one", "ipha_seed": 7})
    ada = create_method(cfg)
    model, base = _cnn(), TensorDataset(torch.rand(5, 3, 16, 16), torch.tensor([0, 1, 2, 3, 0]), torch.zeros(5, 1, 16, 16))
    runtime = Runtime(torch.device("cpu"), False, 5, 0, False)
    ada.training_set(1, base, model, runtime)
    x, y, m = base.tensors
    model.eval()  # as ADA scores it (it hands the model back in train mode)
    maps = attribution_map(model, x, y, "ipha", ipha_iterations=2, ipha_neighbours=3, ipha_constant="one",
                           generator=torch.Generator().manual_seed(7))
    assert torch.equal(ada.corners, best_context_window(maps, m, 4))
    with pytest.raises(RRXError, match="method.ipha_constant=grey; known: zero, one, gaussian, mean"):
        create_method(OmegaConf.merge(cfg, {"ipha_constant": "grey"}))
    with pytest.raises(RRXError, match="ipha_iterations"):
        create_method(OmegaConf.merge(cfg, {"ipha_iterations": 0}))
