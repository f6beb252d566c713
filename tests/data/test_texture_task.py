"""The texture task (Table 11): the embedded stand-in, CDEP's ISIC layout, the patch challenge's AUC and F1
against values counted by hand; the Table 9 eps curve and the gradient map (Fig. 21) against hand-made models."""

import json

import numpy as np
import pytest
import torch
from fixtures.isic import write_isic
from fixtures.runner import one_line_error, rrx
from omegaconf import OmegaConf
from test_attacks import TwoClassLinear
from torch import nn

from rrx.attacks import create_attack
from rrx.challenges import create_challenge
from rrx.challenges.adversarial import evaluate_with_attack, table9
from rrx.challenges.patches import table11
from rrx.config import typed
from rrx.data import create_dataset
from rrx.errors import RRXError
from rrx.record import Record
from rrx.report.report import report
from rrx.runtime import Runtime

RUNTIME = Runtime(torch.device("cpu"), amp=False, batch_size=16, num_workers=0, progress=False)


def _textures(**kw):
    return create_dataset(typed("dataset", {"name": "textures", "train_size": 200, "test_size": 100, **kw}))


def test_textures_patch_only_class_0_and_masks_mark_the_patch_exactly():
    data = _textures()
    x, y, m = (torch.stack([s[i] for s in data.train_set(masks=True)]) for i in range(3))
    patched = (m == 0).flatten(1).any(1)
    assert patched.sum() > 0 and (y[patched] == 0).all()
    assert (m == 0).flatten(1).sum(1)[patched].eq(8 * 8).all()  # one 8x8 square each
    for i in torch.nonzero(patched).flatten()[:5]:
        colours = x[i][:, m[i, 0] == 0].T.unique(dim=0)
        assert len(colours) == 1 and colours.max() >= 0.8  # one saturated colour from the palette
    no_patch = data.variation_set("no_patch", masks=True)
    assert len(no_patch) == int((~data.test_has_patch).sum())
    assert all(mask.min() == 1 for _, _, mask in no_patch)
    with pytest.raises(RRXError, match="original, no_patch"):
        data.variation_set("mixed_rand")


@pytest.mark.parametrize("folders", [("benign", "malignant"), ("no_cancer", "cancer")])
def test_isic_reads_cdeps_layout(tmp_path, folders):
    root = write_isic(tmp_path / "ISIC", folders=folders)
    cfg = {"name": "isic", "root": str(root), "image_size": 30, "test_fraction": 0.5, "dilation": 0, "num_workers": 0}
    data = create_dataset(typed("dataset", cfg))
    train, test = data.train_set(masks=True), data.variation_set("original", masks=True)
    assert len(train) + len(test) == 10
    labels = [int(y) for _, y, _ in test] + [int(y) for _, y, _ in train]
    assert sorted(labels) == [0] * 6 + [1] * 4
    for split in (train, test):
        for i in range(len(split)):
            x, y, m = split[i]
            assert x.shape == (3, 30, 30) and m.shape == (1, 30, 30)
            if split.has_patch(i):
                assert m[0, :10, :10].max() == 0 and m[0, 12:, 12:].min() == 1  # 100/299 of 30 px = 10 px
            else:
                assert m.min() == 1
    assert len(data.variation_set("no_patch")) == len(test) - int(data.test_has_patch.sum())
    assert len(test[0]) == 3  # asking for a set without masks later leaves this one as it was


def test_isic_without_the_layout_names_it(tmp_path):
    write_isic(tmp_path / "ISIC")
    (tmp_path / "ISIC" / "processed" / "malignant").rename(tmp_path / "ISIC" / "processed" / "malign")
    result = rrx(
        "train",
        "dataset=isic",
        f"dataset.root={tmp_path / 'ISIC'}",
        "model=small_cnn",
        "challenge=patches",
        f"hydra.run.dir={tmp_path / 'run'}",
        check=False,
    )
    one_line_error(result, "processed/malignant or processed/cancer")


class FixedScores(nn.Module):
    """Class-1 logit = the image's first pixel, class-0 logit = 0.5: scores and predictions chosen by the test."""

    def forward(self, x):
        s = x[:, 0, 0, 0]
        return torch.stack([torch.full_like(s, 0.5), s], dim=1)


class ListTask:
    def __init__(self, scores, labels, has_patch):
        self.x = torch.zeros(len(scores), 3, 2, 2)
        self.x[:, 0, 0, 0] = torch.tensor(scores)
        self.y, self.has_patch = torch.tensor(labels), torch.tensor(has_patch)

    def variation_set(self, variation, masks=False):
        keep = torch.ones(len(self.y), dtype=torch.bool) if variation == "original" else ~self.has_patch
        return torch.utils.data.TensorDataset(self.x[keep], self.y[keep])


def test_patch_challenge_auc_and_f1_by_hand():
    scores = [0.9, 0.8, 0.3, 0.6, 0.2, 0.1]  # predicted class 1 where the score > 0.5
    labels = [1, 1, 1, 0, 0, 0]
    has_patch = [False, False, False, True, False, True]
    results = create_challenge(OmegaConf.create({"name": "patches"})).evaluate(
        FixedScores(), ListTask(scores, labels, has_patch), RUNTIME
    )
    # all: positive-negative pairs ranked right: (0.9, 0.8 above all three) 6, 0.3 above 0.2 and 0.1: 2 -> 8 of 9
    assert results["patches"]["original"]["auc"] == pytest.approx(8 / 9)
    # predictions 1,1,0,1,0,0: TP 2, FP 1, FN 1 -> F1 = 2 TP / (2 TP + FP + FN) = 4 / 6
    assert results["patches"]["original"]["f1"] == pytest.approx(4 / 6)
    # no patch: scores 0.9, 0.8, 0.3 (positive) against 0.2 (negative): 3 of 3; TP 2, FP 0, FN 1 -> 4 / 5
    assert results["patches"]["no_patch"]["auc"] == pytest.approx(1.0)
    assert results["patches"]["no_patch"]["f1"] == pytest.approx(4 / 5)
    assert results["accuracy"] == {"original": pytest.approx(4 / 6), "no_patch": pytest.approx(3 / 4)}


class OneTask:
    def __init__(self, x, y, m):
        self.x, self.y, self.m = x, y, m

    def variation_set(self, variation, masks=False):
        return (
            torch.utils.data.TensorDataset(self.x, self.y, self.m)
            if masks
            else torch.utils.data.TensorDataset(self.x, self.y)
        )


def test_gradient_map_by_hand():
    """logits [s, -s], s = w.x: sum_k log p_k = -2 log(e^s + e^-s), its gradient -2 tanh(s) w."""
    torch.manual_seed(0)
    w = torch.randn(3 * 2 * 2)
    x, y = torch.rand(5, 3, 2, 2), torch.tensor([0, 1, 0, 1, 1])
    m = torch.zeros(5, 1, 2, 2)
    m[:, :, 0, 0] = 1
    results = create_challenge(OmegaConf.create({"name": "gradient_map"})).evaluate(
        TwoClassLinear(w), OneTask(x, y, m), RUNTIME
    )
    s = x.flatten(1) @ w
    grads = (-2 * torch.tanh(s))[:, None] * w[None]
    expected = grads.abs().view(5, 3, 2, 2).sum(1).mean(0)
    np.testing.assert_allclose(results["gradient_map"]["map"], expected.numpy(), rtol=1e-5)
    assert results["gradient_map"]["signal"] == [[1.0, 0.0], [0.0, 0.0]]


def test_eps_curve_attacks_at_each_eps():
    """On a linear model FGSM at eps moves the score by eps * ||w||_1 against the label: the accuracy at each eps
    is the share of images whose margin |s| exceeds it, counted by hand."""
    torch.manual_seed(1)
    w = torch.randn(12)
    x = 0.3 + 0.4 * torch.rand(40, 3, 2, 2)  # far enough from 0 and 1 that clipping does not act
    s = x.flatten(1) @ w
    y = (s < 0).long()  # every image right: label 0 where s > 0
    attack = create_attack(OmegaConf.create({"name": "fgsm", "eps": 0.01, "mix": None}))
    challenge = create_challenge(OmegaConf.create({"name": "background", "variations": ["original"]}))
    eps_list = [0.01, 0.05, 0.2]
    results, predictions = evaluate_with_attack(
        challenge, "fgsm", attack, TwoClassLinear(w), OneTask(x, y, None), RUNTIME, eval_eps=eps_list
    )
    for eps in eps_list:
        expected = (s.abs() > eps * w.abs().sum()).float().mean().item()
        assert results["adversarial_curve"][f"{eps:g}"] == pytest.approx(expected)
        rows = predictions[predictions["condition"] == f"attack eps={eps:g}"]  # one per image, right where expected
        assert rows["correct"].tolist() == (s.abs() > eps * w.abs().sum()).tolist()
    assert results["adversarial_accuracy"]["original"] == results["adversarial_curve"]["0.01"]
    pgd = create_attack(
        OmegaConf.create(
            {"name": "pgd", "eps": 0.02, "step_size": 0.005, "steps": 3, "random_start": False, "mix": None}
        )
    )
    wider = pgd.at_eps(0.1)
    assert (wider.eps, wider.step_size, wider.steps) == (0.1, pytest.approx(0.025), 3)


def _metrics(method, seed=0, dataset="toy_rules", **challenges):
    return {
        "run": {"architecture": "MLP", "method": method, "dataset": dataset, "lam": 0.0, "rrda": False, "seed": seed},
        "train": {"device": "cpu"},
        "challenges": challenges,
    }


def test_tables_9_and_11_and_fig21_in_the_report(tmp_path):
    curve = {"0.02": 0.97, "0.1": 0.4}
    grad_map = {"map": [[1.0, 0.0], [0.5, 0.2]], "signal": [[1.0, 0.0], [0.0, 0.0]]}
    runs = [
        _metrics(
            "Standard",
            seed=s,
            accuracy={"original": 0.99},
            adversarial_accuracy={"original": 0.4},
            adversarial_curve=curve,
            gradient_map=grad_map,
        )
        for s in (0, 1)
    ]
    runs.append(
        _metrics(
            "Standard",
            dataset="textures",
            accuracy={"original": 0.9, "no_patch": 0.8},
            patches={"original": {"auc": 0.95, "f1": 0.9}, "no_patch": {"auc": 0.85, "f1": 0.7}},
        )
    )
    t9 = table9([Record.from_dict(r) for r in runs[:1]])
    assert list(t9.columns) == ["Model", "Test Accuracy", "Adversarial Accuracy", "eps=0.02", "eps=0.1"]
    assert t9.iloc[0].tolist()[1:] == [99.0, 40.0, 97.0, 40.0]
    t11 = table11([Record.from_dict(r) for r in runs[2:]])
    assert t11.iloc[0].tolist() == ["MLP Standard", 0.85, 0.7, 0.95, 0.9]
    for i, metrics in enumerate(runs):
        (tmp_path / "runs" / str(i)).mkdir(parents=True)
        (tmp_path / "runs" / str(i) / "metrics.json").write_text(json.dumps(metrics))
    report([str(tmp_path / "runs")], tmp_path / "out")
    assert (tmp_path / "out" / "fig21_gradients_toy_rules.png").read_bytes()[:4] == b"\x89PNG"
    text = (tmp_path / "out" / "report.md").read_text()
    assert "Table 11 shape" in text and "eps=0.1" in text
