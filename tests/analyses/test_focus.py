"""Focus on mosaics (seed 004): the mosaics, hand-made signed maps against Eq. 1, Quantus's Focus on the same arrays,
the signed attributions of closed-form models, and the cascading randomisation."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from fixtures.runner import one_line_error, rrx
from torch.utils.data import TensorDataset

from rrx.analyses import create_analysis
from rrx.analyses.focus import (
    build_mosaics,
    cascading_copies,
    focus,
    mosaic_plan,
    randomise_choice,
    randomised_copy,
    reinitialisable_layers,
    table_focus,
)
from rrx.attributions import attribution_map
from rrx.errors import RRXError
from rrx.record import Record
from rrx.runtime import Runtime

CPU = Runtime(torch.device("cpu"), amp=False, batch_size=3, num_workers=0, progress=False)


def focus_analysis(**settings):
    return create_analysis({"name": "focus", **settings})


class ChannelReader(torch.nn.Module):
    """Logit k = sum over pixels of sum_c W[k, c] x_c^power: a linear model (power 1) or a quadratic one (power 2)."""

    def __init__(self, weights, power=1):
        super().__init__()
        self.power = power
        self.conv = torch.nn.Conv2d(3, len(weights), 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.as_tensor(weights, dtype=torch.float32)[:, :, None, None])

    def forward(self, x):
        return self.conv(x**self.power).sum((2, 3))


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
    maps[0, :2, :2] = 1.0  # all relevance top-left
    maps[1] = 1.0  # uniform
    maps[2, 2:, 2:] = 3.0
    maps[2, :2, :2] = -5.0  # negative relevance does not count
    flags = torch.tensor([[True, False, True, False], [True, True, False, False], [False, False, False, True]])
    assert focus(maps, flags).tolist() == pytest.approx([1.0, 0.5, 1.0])
    assert torch.isnan(focus(torch.zeros(1, 4, 4), flags[:1])).all()


def eq_1_focus(relevance: list[list[float]], target_quadrants: set[int]) -> float:
    """Eq. 2 with Eq. 1, written out: relevance[q] is the list of pixel relevances of quadrant q (0 TL, 1 TR, 2 BL,
    3 BR); R^+(img) = sum of g(r) = r if r > 0 else 0 over its pixels."""
    r_plus = [sum(r if r > 0 else 0.0 for r in pixels) for pixels in relevance]
    return sum(r_plus[q] for q in target_quadrants) / sum(r_plus)


def test_focus_of_a_hand_made_signed_map_is_eq_1():
    # a 4 x 4 map, quadrants 2 x 2, positive and negative relevance in every quadrant
    m = torch.tensor([[3.0, -1.0, 0.5, -4.0], [-2.0, 1.0, 0.0, 2.5], [-6.0, 0.25, 1.0, 1.0], [0.75, -0.5, -3.0, 2.0]])
    relevance = [[3.0, -1.0, -2.0, 1.0], [0.5, -4.0, 0.0, 2.5], [-6.0, 0.25, 0.75, -0.5], [1.0, 1.0, -3.0, 2.0]]
    flags = torch.tensor([[True, False, False, True], [False, True, True, False]])
    expected = [eq_1_focus(relevance, {0, 3}), eq_1_focus(relevance, {1, 2})]
    assert expected == pytest.approx([8 / 12, 4 / 12])  # R^+ by quadrant: 4, 3, 1, 4
    assert focus(torch.stack([m, m]), flags).tolist() == pytest.approx(expected)
    assert focus(torch.stack([m, m]).abs(), flags).tolist() != pytest.approx(expected)  # |r| is not Eq. 1


def test_focus_runner_reads_the_positive_part_of_the_signed_attribution(tmp_path):
    """Class 0 images are (1, 0.5, 0), class 1 (0.25, 1, 0); a linear model W. Input x Gradient and Integrated
    Gradients (zero baseline) of class t at a pixel of colour x are sum_c W[t, c] x_c: for t = 0, 2 - 0.5 = 1.5 on its
    own images and 0.5 - 1 = -0.5 on the others; for t = 1, 0.25 + 2 = 2.25 and 1 + 1 = 2. Eq. 1 counts only the
    positive part: Focus 1 for class 0, 2.25 / (2.25 + 2) for class 1. Absolute values summed over channels (the
    old maps) would give (2 + 0.5) / (2.5 + 1.5) for class 0 instead."""
    colours = [(1.0, 0.5, 0.0)] * 3 + [(0.25, 1.0, 0.0)] * 3
    x = torch.stack([torch.tensor(c)[:, None, None].expand(3, 4, 4) for c in colours]).clone()
    data = TensorDataset(x, torch.tensor([0] * 3 + [1] * 3))
    dataset = SimpleNamespace(mean=(0.5,) * 3, classes=["a", "b"])
    model = ChannelReader([[2.0, -1.0, 0.0], [1.0, 2.0, 0.0]])
    # Eq. 1 by hand: two target quadrants and two others of 16 pixels each, per mosaic
    pixels = 16
    class_0 = eq_1_focus([[1.5] * pixels, [1.5] * pixels, [-0.5] * pixels, [-0.5] * pixels], {0, 1})
    class_1 = eq_1_focus([[2.25] * pixels, [2.25] * pixels, [2.0] * pixels, [2.0] * pixels], {0, 1})
    assert (class_0, class_1) == pytest.approx((1.0, 2.25 / 4.25))
    result = focus_analysis(
        attribution=["input_x_gradient", "integrated_gradients"], per_class=2, randomise="none", ig_steps=4
    ).run(model, data, dataset, CPU, tmp_path)
    for name in ("input_x_gradient", "integrated_gradients"):
        assert set(result[name]) == {"mosaics", "model"} and result[name]["model"]["n"] == 4
        assert result[name]["model"]["mean"] == pytest.approx((2 * class_0 + 2 * class_1) / 4)
    assert result["input_x_gradient"]["model"]["mean"] != pytest.approx((2 * 2.5 / 4 + 2 * class_1) / 4)


def test_signed_attributions_of_closed_form_models():
    """Linear model f_k = sum W[k, c] x_c: input x gradient = W[y, c] x_c, IG from baseline b = W[y, c] (x_c - b_c),
    guided backprop (no ReLU) = W[y, c]; quadratic f_k = sum W[k, c] x_c^2: input x gradient = 2 W[y, c] x_c^2, IG =
    W[y, c] (x_c^2 - b_c^2). The signed maps are their sums over c; the default maps sum their absolute values;
    saliency and Grad-CAM have one form."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(3, 3, generator=g)  # (K, C)
    x, b = torch.randn(2, 3, 5, 4, generator=g), torch.randn(2, 3, 5, 4, generator=g)
    y = torch.tensor([2, 0])
    wy = w[y][:, :, None, None]  # (B, C, 1, 1)
    linear, quadratic = ChannelReader(w), ChannelReader(w, power=2)
    cases = [
        (linear, "input_x_gradient", None, wy * x),
        (linear, "integrated_gradients", b, wy * (x - b)),
        (linear, "guided_backprop", None, wy.expand_as(x)),
        (quadratic, "input_x_gradient", None, 2 * wy * x**2),
        (quadratic, "integrated_gradients", b, wy * (x**2 - b**2)),
    ]
    for model, method, baseline, per_channel in cases:
        signed = attribution_map(model, x, y, method, baseline=baseline, steps=8, signed=True)
        assert signed.shape == (2, 5, 4)
        assert torch.allclose(signed, per_channel.sum(1), atol=1e-5), (method, model.power)
        assert torch.allclose(
            attribution_map(model, x, y, method, baseline=baseline, steps=8), per_channel.abs().sum(1), atol=1e-5
        ), (method, model.power)
        assert (signed < 0).any()
    assert torch.allclose(attribution_map(linear, x, y, "saliency", signed=True), wy.abs().sum(1).expand(2, 5, 4))
    assert torch.equal(
        attribution_map(linear, x, y, "saliency", signed=True), attribution_map(linear, x, y, "saliency")
    )


def fixed_model():
    """conv, BN, ReLU, flatten, linear; every parameter 0.123 and BN's running mean 0.5 (no reset gives those)."""
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3),
        torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 3 * 3, 2),
    )
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.123)
        model[1].running_mean.fill_(0.5)
    return model


def changed_layers(model, copy) -> set[str]:
    """The layers (module names) of ``copy`` whose parameters or buffers differ from ``model``'s."""
    before = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    return {
        name.rsplit(".", 1)[0]
        for name, t in [*copy.named_parameters(), *copy.named_buffers()]
        if not torch.equal(t, before[name])
    }


def test_cascading_randomisation_reinitialises_the_layers_from_the_output_down():
    model = fixed_model()
    assert reinitialisable_layers(model) == ["4", "1", "0"]  # linear, BN, conv; ReLU and Flatten have nothing
    steps = list(cascading_copies(model, seed=3))
    assert [layer for layer, _ in steps] == ["4", "1", "0"]
    assert [changed_layers(model, copy) for _, copy in steps] == [{"4"}, {"4", "1"}, {"4", "1", "0"}]
    # each step adds one layer: what earlier steps drew is kept, and the last step is the full re-initialisation
    (_, top), (_, two), (_, full) = steps
    assert torch.equal(top[4].weight, two[4].weight) and torch.equal(two[4].weight, full[4].weight)
    assert torch.equal(two[1].weight, full[1].weight)
    full_copy = randomised_copy(model, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(full.state_dict().values(), full_copy.state_dict().values()))
    assert not torch.equal(randomised_copy(model, seed=4)[4].weight, full_copy[4].weight)
    # the model itself is untouched
    assert all(torch.all(p == 0.123) for p in model.parameters()) and torch.all(model[1].running_mean == 0.5)


def test_focus_runner_with_cascading_randomisation_and_its_table(tmp_path):
    """The linear model of the runner test above has one layer: the cascade is one step, and it is the full copy."""
    colours = [(1.0, 0.0, 0.0)] * 2 + [(0.0, 1.0, 0.0)] * 2
    x = torch.stack([torch.tensor(c)[:, None, None].expand(3, 4, 4) for c in colours]).clone()
    data = TensorDataset(x, torch.tensor([0, 0, 1, 1]))
    dataset = SimpleNamespace(mean=(0.5,) * 3, classes=["red", "green"])
    model = ChannelReader([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    cascading = focus_analysis(attribution=["input_x_gradient"], per_class=2, randomise="cascading").run(
        model, data, dataset, CPU, tmp_path
    )["input_x_gradient"]
    full = focus_analysis(attribution=["input_x_gradient"], per_class=2, randomise="full").run(
        model, data, dataset, CPU, tmp_path
    )["input_x_gradient"]
    assert [(s["layers"], s["layer"]) for s in cascading["cascading"]] == [(1, "conv")]
    step = {k: v for k, v in cascading["cascading"][0].items() if k not in ("layers", "layer")}
    assert cascading["randomised"] == step == full["randomised"] and "cascading" not in full
    assert cascading["model"]["mean"] == pytest.approx(1.0)
    run = Record(
        command="analyze",
        run={"architecture": "reader", "method": "standard"},
        analyses={"focus": {"input_x_gradient": cascading}},
    )
    table = table_focus([run])
    assert list(table.columns) == [
        "Architecture",
        "Method",
        "Attribution",
        "Focus",
        "Focus std",
        "Randomised",
        "Cascade to conv",
        "Mosaics",
    ]
    assert table["Focus"].tolist() == pytest.approx([100.0])
    assert table["Cascade to conv"].tolist() == pytest.approx([100 * cascading["randomised"]["mean"]], nan_ok=True)


def test_randomise_values():
    """A config takes today's names; the library's randomise_choice still reads an older rrx's true / false."""
    assert [randomise_choice(v) for v in (True, False, None)] == ["full", "none", "none"]
    with pytest.raises(RRXError, match="^analysis.randomise=True; known: none, full, cascading$"):
        focus_analysis(randomise=True)
    assert [focus_analysis(randomise=v).randomise for v in ("none", "full", "cascading")] == [
        "none",
        "full",
        "cascading",
    ]
    with pytest.raises(RRXError, match="^analysis.randomise=sometimes; known: none, full, cascading$"):
        focus_analysis(randomise="sometimes")


def test_cli_bad_randomise_is_one_line(tmp_path):
    result = rrx(
        "analyze",
        "analysis=focus",
        "analysis.randomise=sometimes",
        "model=small_cnn",
        "trainer.device=cpu",
        f"hydra.run.dir={tmp_path}",
        check=False,
    )
    one_line_error(result, "analysis.randomise=sometimes", "none, full, cascading")


def test_against_quantus_focus():
    quantus = pytest.importorskip("quantus")
    rng = np.random.default_rng(1)
    maps = rng.normal(size=(8, 1, 10, 12)).astype(np.float32)
    flags = np.stack([rng.permutation([True, True, False, False]) for _ in range(8)])
    theirs = quantus.Focus(disable_warnings=True, normalise=False, abs=False).evaluate_batch(
        a_batch=maps, c_batch=flags.astype(int)
    )
    ours = focus(torch.from_numpy(maps), torch.from_numpy(flags))
    assert ours.numpy() == pytest.approx(np.asarray(theirs, dtype=np.float64), abs=1e-6)
