"""rrx as a library: the API page's examples run as written, and the public functions on a user's own model give what
an independent computation gives (a hand-normalised forward, captum's LayerGradCam, a plain accuracy loop)."""

import importlib.util
import re
import subprocess
import sys

import pandas as pd
import pytest
import torch
import torchvision
from captum.attr import LayerAttribution, LayerGradCam
from fixtures.in9 import write_in9
from fixtures.runner import REPO

import rrx
from rrx.methods.rrr import rrr_penalty

PAGE = REPO / "docs" / "library.md"


@pytest.mark.slow  # trains a ResNet-18 for 2 epochs and evaluates it: about 20 s on 2 cores
def test_the_library_page_runs_as_written(cache_dir, monkeypatch, capsys):
    monkeypatch.setenv("RRX_CACHE", str(cache_dir))
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)
    assert len(blocks) == 3
    code = "\n".join(blocks)
    lines = [line for line in code.splitlines() if line.strip()]
    assert len(lines) < 30  # the bound: train, evaluate and read a model in under 30 lines of code
    exec(compile(code, str(PAGE), "exec"), {})
    out = capsys.readouterr().out
    assert re.search(r"last loss \d", out) and "Worst group mixed rand" in out and re.search(r"ObEy 0\.\d{3}", out)


def test_import_rrx_is_light_and_every_public_name_resolves():
    light = subprocess.run(
        [sys.executable, "-c", "import rrx, sys; print('torch' in sys.modules, len(rrx.__all__))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert light.stdout.split() == ["False", str(len(rrx.__all__))]
    for name in rrx.__all__:
        assert getattr(rrx, name) is not None, name
        # no submodule of that name: importing it (rrx.evaluate is the command's) would replace the attribute
        assert name.startswith("__") or importlib.util.find_spec(f"rrx.{name}") is None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        rrx.nope  # noqa: B018


def _net(seed=0):
    torch.manual_seed(seed)
    return torchvision.models.resnet18(num_classes=3).eval()


MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def test_model_normalises_as_said_and_gradcam_is_captums():
    net = _net()
    model = rrx.Model(net, mean=MEAN, std=STD, cam_layer="layer4").eval()
    x = torch.rand(2, 3, 64, 64)
    by_hand = net((x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1))
    assert torch.allclose(model(x), by_hand, atol=1e-5)
    y = torch.tensor([0, 2])
    ours = rrx.attribute(model, x, y, "gradcam")
    layer = LayerGradCam(model, net.layer4).attribute(x, target=y, relu_attributions=True)
    theirs = LayerAttribution.interpolate(layer, (64, 64), interpolate_mode="bilinear")[:, 0]
    assert ours.shape == (2, 64, 64) and torch.allclose(ours, theirs, atol=1e-6)
    with pytest.raises(rrx.RRXError, match="cam_layer=<name>"):
        rrx.attribute(rrx.Model(net), x, y, "gradcam")


def test_rrr_on_the_normalised_input_needs_the_normalisation():
    net = _net()
    x, y, mask = torch.rand(2, 3, 32, 32), torch.tensor([0, 1]), torch.zeros(2, 1, 32, 32)
    method = rrx.method("rrr", lam=2.0, input_space="normalized")
    with pytest.raises(rrx.RRXError, match=r"wrap it as rrx.Model\(model, mean=..., std=...\)"):
        method.loss(net, x, y, mask)
    model = rrx.Model(net, mean=MEAN, std=STD)
    loss, logs = method.loss(model, x, y, mask)
    # by hand: the gradient with respect to z = (x - mean) / std of the summed log-probabilities, squared off-object
    z = ((x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)).requires_grad_(True)
    (grad_z,) = torch.autograd.grad(torch.log_softmax(net(z), 1).sum(), z)
    expected = torch.nn.functional.cross_entropy(net(z), y) + 2.0 * grad_z.pow(2).sum((1, 2, 3)).mean()
    assert torch.allclose(loss, expected, rtol=1e-4)
    x_ = x.clone().requires_grad_(True)
    assert torch.allclose(rrr_penalty(model(x_), x_, mask, model.std).mean(), logs["penalty"], rtol=1e-4)


def test_score_predictions_of_a_hand_made_frame():
    frame = pd.DataFrame(
        {
            "variation": ["mixed_same"] * 4 + ["mixed_rand"] * 4,
            "label": [0, 0, 1, 1, 0, 0, 1, 1],
            "prediction": [0, 0, 1, 0, 0, 1, 0, 0],
            "background_class": ["a", "a", "b", "b", "a", "b", "a", "b"],
            "label_name": ["a", "a", "b", "b", "a", "a", "b", "b"],
        }
    )
    row = rrx.score_predictions(frame).iloc[0]
    assert row["Mixed same"] == 75.0 and row["Mixed rand"] == 25.0 and row["BG Gap"] == 50.0
    # mixed_rand's groups: (a, a) 1/1, (a, b) 0/1, (b, a) 0/1, (b, b) 0/1
    assert row["Worst group mixed rand"] == 0.0 and row["Worst group mixed same"] == 50.0
    with pytest.raises(rrx.RRXError, match="no column prediction"):
        rrx.score_predictions(frame.drop(columns="prediction"))


def test_evaluate_on_an_in9_folder_is_a_plain_accuracy_loop(tmp_path):
    root = write_in9(tmp_path / "bg", per_class=2, size=32)
    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=9).eval()
    model = rrx.Model(net, mean=MEAN, std=STD)
    data = rrx.dataset("in9", root=str(root), image_size=32, val_per_class=0)
    table = rrx.challenge(model, data)
    expected = {}
    for variation in ("original", "mixed_same", "mixed_rand", "mixed_next"):
        images = data.variation_set(variation)
        with torch.no_grad():
            correct = sum(int(model(x[None]).argmax(1).item() == y) for x, y in images)
        expected[variation] = 100 * correct / len(images)
    assert table["Original"].iloc[0] == pytest.approx(expected["original"], abs=1e-9)
    assert table["BG Gap"].iloc[0] == pytest.approx(expected["mixed_same"] - expected["mixed_rand"], abs=1e-9)
    predictions = table.attrs["predictions"]
    assert len(predictions) == 4 * 18 and table.attrs["results"]["accuracy"]["original"] * 100 == pytest.approx(
        expected["original"]
    )
