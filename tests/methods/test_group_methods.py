"""Group-robustness methods (groups = (object class, background class) of the training images): group DRO's weight
update and loss on hand-made losses, balanced ERM's draws, and the groups the generated benchmark knows."""

import math

import numpy as np
import pytest
import torch
from torch import nn

import rrx
from rrx.api import _runtime
from rrx.data.synthetic import SyntheticSpec, training_backgrounds
from rrx.errors import RRXError
from rrx.methods.balanced import balanced_indices
from rrx.methods.dfr import balanced_subset, fit_last_layer, unstandardised, worst_group_accuracy
from rrx.methods.groupdro import group_mean_losses, updated_weights
from rrx.methods.groups import training_groups
from rrx.methods.jtt import upsampled
from rrx.train import train


def test_group_mean_losses_and_the_weight_update_by_hand():
    losses, groups = torch.tensor([1.0, 2.0, 3.0, 0.5]), torch.tensor([0, 0, 1, 2])
    means = group_mean_losses(losses, groups, 4)
    assert means.tolist() == [1.5, 3.0, 0.5, 0.0]  # group 3 has no image in the batch: 0, as the reference
    q = updated_weights(torch.full((4,), 0.25), means, step_size=0.1)
    raw = [0.25 * math.exp(0.1 * v) for v in (1.5, 3.0, 0.5, 0.0)]
    assert q.tolist() == pytest.approx([r / sum(raw) for r in raw])


class FixedLogits(nn.Module):
    def __init__(self, logits):
        super().__init__()
        self.logits = nn.Parameter(logits)

    def forward(self, x):
        return self.logits


def test_groupdro_loss_is_the_q_weighted_group_losses_after_the_update():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    y, groups = torch.tensor([0, 0, 1]), torch.tensor([0, 1, 1])
    method = rrx.method("groupdro", step_size=0.5)
    method.set_groups([0, 1, 1], [["a", "a"], ["a", "b"]])
    ce = [math.log(1 + math.exp(-2.0)), math.log(1 + math.exp(1.0)), math.log(2.0)]  # -log softmax by hand
    l0, l1 = ce[0], (ce[1] + ce[2]) / 2
    w0, w1 = 0.5 * math.exp(0.5 * l0), 0.5 * math.exp(0.5 * l1)
    loss, _ = method.loss(FixedLogits(logits), torch.zeros(3, 1), y, None, groups=groups)
    assert float(loss.detach()) == pytest.approx((w0 * l0 + w1 * l1) / (w0 + w1))
    assert method.q.tolist() == pytest.approx([w0 / (w0 + w1), w1 / (w0 + w1)])
    assert method.state_dict()["groupdro_q"] == pytest.approx(method.q.tolist())


def test_balanced_draws_give_each_group_an_equal_share():
    groups = [0] * 90 + [1] * 9 + [2] * 1
    drawn = balanced_indices(groups, 30_000, torch.Generator().manual_seed(0))
    shares = torch.bincount(torch.tensor(groups)[drawn], minlength=3).float() / len(drawn)
    assert shares.tolist() == pytest.approx([1 / 3] * 3, abs=0.01)  # not 0.9 / 0.09 / 0.01
    assert torch.bincount(drawn[torch.tensor(groups)[drawn] == 2]).nonzero().flatten().tolist() == [99]


@pytest.mark.parametrize("correlation, aligned", [(1.0, 1.0), (0.0, 0.0)])
def test_the_generators_training_backgrounds_follow_its_correlation(correlation, aligned):
    spec = SyntheticSpec(num_classes=3, image_size=16, train_per_class=20, val_per_class=2, bg_correlation=correlation)
    found = training_backgrounds(spec)
    same = [stem[3:5] == background[:2] for stem, background in found.items()]  # syn<kk>_... vs <kk>_<shape>
    assert len(found) == 60 and sum(same) / len(same) == aligned


def test_a_dataset_that_does_not_know_its_backgrounds_is_one_error():
    class NoBackgrounds:
        name = "in9"

        def training_background_classes(self, train_set):
            return None

    with pytest.raises(RRXError, match="method=groupdro needs the background class of each training image"):
        training_groups(NoBackgrounds(), [], ["a"], "groupdro")


def test_the_coarser_groups_are_object_and_whether_the_background_agrees():
    class Known:
        name = "synthetic"

        def __init__(self, backgrounds):
            self.backgrounds = backgrounds

        def training_background_classes(self, train_set):
            return self.backgrounds

    data = torch.utils.data.TensorDataset(torch.zeros(5, 1), torch.tensor([0, 0, 1, 1, 0]))
    backgrounds = ["a", "b", "b", "c", "c"]  # object a on a, a on b, b on b, b on c, a on c
    assert training_groups(Known(backgrounds), data, ["a", "b", "c"], "dfr") == (
        [0, 1, 3, 4, 2],
        [["a", "a"], ["a", "b"], ["a", "c"], ["b", "b"], ["b", "c"]],
    )
    ids, names = training_groups(Known(backgrounds), data, ["a", "b", "c"], "dfr", "agree")
    assert names == [["a", "other class"], ["a", "own class"], ["b", "other class"], ["b", "own class"]]
    assert ids == [1, 0, 3, 2, 0]
    with pytest.raises(RRXError, match=r"method.groups=agree .* dataset=synthetic names its backgrounds otherwise"):
        training_groups(Known(["land", "water", "land", "land", "water"]), data, ["a", "b", "c"], "dfr", "agree")
    assert rrx.method("dfr", groups="agree").label == "DFR (object x own background)"
    assert rrx.method("groupdro").label == "GroupDRO"
    with pytest.raises(RRXError, match="method.groups=agree changes nothing with method.by=class"):
        rrx.method("balanced", by="class", groups="agree")


@pytest.mark.parametrize("method", ["groupdro", "balanced"])
def test_a_group_method_records_its_groups(compose_train, tmp_path, method):
    metrics = train(compose_train(f"method={method}"), tmp_path)
    recorded = metrics["train"]["groups"]
    assert sum(n for *_, n in recorded["per_group"]) == 72 and recorded["groups"] == len(recorded["per_group"])
    aligned = sum(n for obj, bg, n in recorded["per_group"] if obj == bg)
    assert aligned >= 72 * 0.7  # bg_correlation 0.9 of 72 images


def test_jtt_upsamples_its_error_set_by_hand():
    base = torch.utils.data.TensorDataset(torch.arange(5.0)[:, None], torch.zeros(5, dtype=torch.long))
    data = upsampled(base, [1, 3], upweight=3)
    seen = sorted(int(data[i][0]) for i in range(len(data)))
    assert seen == [0, 1, 1, 1, 2, 3, 3, 3, 4]  # each error 3 times in all, the rest once
    assert upsampled(base, [], 3) is base


class Answers(nn.Module):
    """Predicts class 0 for every image."""

    def forward(self, x):
        return torch.stack([torch.ones(len(x)), torch.zeros(len(x))], 1)


def test_jtts_error_set_is_what_its_identification_model_gets_wrong():
    base = torch.utils.data.TensorDataset(torch.zeros(4, 1), torch.tensor([0, 1, 0, 1]))
    method = rrx.method("jtt", upweight=2)
    method.end_phase("identify", Answers(), base, _runtime("cpu", 2, False))
    assert method.errors == [1, 3] and len(method.training_set(1, base, None, None)) == 6
    assert method.training_set(2, base, None, None) is None  # given once, kept after
    assert [p.name for p in method.phases(4)] == ["init", "identify", "train"] and method.phases(4)[2].fork_of == "init"


def test_jtt_with_a_cosine_schedule_is_one_error(compose_train, tmp_path):
    with pytest.raises(RRXError, match="give trainer.scheduler=none"):
        train(compose_train("method=jtt"), tmp_path)


def test_jtt_trains_its_second_model_from_the_first_ones_start(compose_train, tmp_path):
    metrics = train(compose_train("method=jtt", "trainer.scheduler=none", "trainer.epochs=2"), tmp_path)
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert metrics["train"]["jtt"]["errors"] == len(ckpt["method"]["jtt_errors"]) > 0
    assert [e["epoch"] for e in metrics["train"]["epochs"]] == [1, 2]
    assert len(ckpt["loop"]["history"]["identify"]) == 1


def test_dfr_pieces_by_hand():
    groups = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    keep = balanced_subset(groups, np.random.default_rng(0))
    assert np.bincount(groups[keep]).tolist() == [2, 2, 2] and (np.diff(keep) > 0).all()
    pred, y = np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0])
    assert worst_group_accuracy(pred, y, np.array([0, 0, 1, 1])) == 0.5
    rng = np.random.default_rng(1)
    coef, intercept, mu, sigma, z = (
        rng.normal(size=(3, 4)),
        rng.normal(size=3),
        rng.normal(size=4),
        rng.uniform(1, 2, 4),
        rng.normal(size=(5, 4)),
    )
    w, b = unstandardised(coef, intercept, mu, sigma)
    assert z @ w.T + b == pytest.approx(((z - mu) / sigma) @ coef.T + intercept)


def test_dfr_fits_a_separable_last_layer():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 20)
    z = rng.normal(size=(60, 3)) + 4 * np.eye(3)[y]  # each class along its own axis
    coef, intercept = fit_last_layer(z, y, y, 1.0, 3, rng, num_classes=3)
    assert ((z @ coef.T + intercept).argmax(1) == y).all()


def test_dfr_needs_held_out_images(compose_train, tmp_path):
    with pytest.raises(RRXError, match="method=dfr needs held-out training images with their groups: give "):
        train(compose_train("method=dfr"), tmp_path)


def test_dfr_replaces_the_last_layer(compose_train, tmp_path):
    metrics = train(compose_train("method=dfr", "trainer.val_fraction=0.25"), tmp_path)
    found = metrics["train"]["dfr"]
    assert found["held_out"] == 18 and found["c"] in [1.0, 0.7, 0.3, 0.1, 0.07, 0.03, 0.01]
    assert found["val_accuracy_is_held_out"] is False
