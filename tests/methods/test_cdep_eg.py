"""Contextual decomposition, CDEP and Expected Gradients, against values computed independently of rrx:
NumPy from the weights, hand-made tensors, the network's own forward pass, and captum's Integrated Gradients."""

import numpy as np
import pytest
import torch
from fixtures.runner import one_line_error, rrx
from omegaconf import OmegaConf
from torch import nn

from rrx.errors import RRXError
from rrx.methods import create_method
from rrx.methods.cdep import cd_chain, cd_layer, cdep_penalty, contextual_decomposition, penalty_regions
from rrx.methods.eg import expected_gradients
from rrx.models import model_config
from rrx.models.classifier import Classifier


class Chain(nn.Module):
    """A backbone that is a plain chain of layers."""

    def __init__(self, *layers):
        super().__init__()
        self.layers = nn.Sequential(*layers)

    def forward_features(self, x):
        return self.layers(x)

    def forward_head(self, features, pre_logits=False):
        return features

    def cd_layers(self):
        return list(self.layers)


def _classifier(*layers, mean=(0.2, 0.3, 0.4), std=(0.5, 0.6, 0.7)):
    return Classifier(Chain(*layers), mean, std).eval()


def test_linear_layer_decomposition_by_hand():
    """One linear layer: rel = W (m z) + b |W m z| / (|W m z| + |W (1 - m) z|), irrel likewise, z normalised."""
    torch.manual_seed(0)
    model = _classifier(nn.Flatten(), nn.Linear(3 * 2 * 2, 4))
    x = torch.rand(2, 3, 2, 2)
    region = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).expand(2, 1, 2, 2)
    rel, irrel = contextual_decomposition(model, x, region)

    w, b = model.backbone.layers[1].weight.detach().numpy(), model.backbone.layers[1].bias.detach().numpy()
    z = (x.numpy() - np.array([0.2, 0.3, 0.4])[:, None, None]) / np.array([0.5, 0.6, 0.7])[:, None, None]
    m = np.broadcast_to(region.numpy(), z.shape)
    r, i = (m * z).reshape(2, -1) @ w.T, ((1 - m) * z).reshape(2, -1) @ w.T
    share = np.abs(r) / (np.abs(r) + np.abs(i))
    np.testing.assert_allclose(rel.detach().numpy(), r + share * b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(irrel.detach().numpy(), i + (1 - share) * b, rtol=1e-5, atol=1e-6)


def test_relu_and_max_pool_by_hand():
    rel = torch.tensor([[[[1.0, -2.0], [3.0, 0.0]]]])
    irrel = torch.tensor([[[[-1.0, 6.0], [0.0, 1.0]]]])
    # the sum is [[0, 4], [3, 1]]: max pooling picks the top right cell from both parts
    pooled = cd_layer(nn.MaxPool2d(2), rel, irrel)
    assert [p.item() for p in pooled] == [-2.0, 6.0]
    # ReLU: rel' = relu(rel) = 0, irrel' = relu(rel + irrel) - relu(rel) = 4
    assert [p.item() for p in cd_layer(nn.ReLU(), *pooled)] == [0.0, 4.0]


def test_parts_sum_to_the_logits_of_a_conv_net():
    """CD's defining property on conv, batch norm (eval form), ReLU, max/avg pooling, flatten and linear layers."""
    torch.manual_seed(1)
    bn = nn.BatchNorm2d(4)
    bn.running_mean.uniform_(-0.5, 0.5)
    bn.running_var.uniform_(0.5, 2.0)
    nn.init.uniform_(bn.weight, 0.5, 1.5)
    nn.init.uniform_(bn.bias, -0.3, 0.3)
    model = _classifier(
        nn.Conv2d(3, 4, 3, padding=1),
        bn,
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(24, 8),
        nn.ReLU(),
        nn.Linear(8, 5),
    )
    x = torch.rand(3, 3, 12, 12)
    region = (torch.rand(3, 1, 12, 12) > 0.5).float()
    rel, irrel = contextual_decomposition(model, x, region)
    logits = model(x)
    torch.testing.assert_close(rel + irrel, logits, rtol=1e-4, atol=1e-5)
    # the whole image as the region: everything is relevant
    rel_all, irrel_all = contextual_decomposition(model, x, torch.ones_like(region))
    torch.testing.assert_close(rel_all, logits, rtol=1e-4, atol=1e-5)
    assert irrel_all.abs().max() < 1e-5


@pytest.mark.parametrize("name", ["lenet", "small_cnn", "mlp"])
def test_parts_sum_to_the_logits_of_rrx_models(name):
    from rrx.models import create_model

    cfg = model_config(name)
    model = create_model(cfg, 10, [0.1] * 3, [0.3] * 3)
    x = torch.rand(4, 3, 28, 28)
    model(x)  # materialise lazy layers
    model.eval()
    region = torch.zeros(4, 1, 28, 28)
    region[:, :, :5, :5] = 1
    rel, irrel = contextual_decomposition(model, x, region)
    torch.testing.assert_close(rel + irrel, model(x), rtol=1e-4, atol=1e-4)


def test_cdep_penalty_by_hand():
    """Per image: mean over classes of softmax([rel, irrel])[0] = 1 / (1 + exp(irrel - rel)), from NumPy CD."""
    torch.manual_seed(2)
    model = _classifier(nn.Flatten(), nn.Linear(12, 3), mean=(0, 0, 0), std=(1, 1, 1))
    x = torch.rand(2, 3, 2, 2)
    mask = torch.tensor([[1.0, 1.0], [0.0, 1.0]]).expand(2, 1, 2, 2)  # the object; the context is one pixel
    penalty = cdep_penalty(model, x, penalty_regions(mask, "context"))

    w, b = model.backbone.layers[1].weight.detach().numpy(), model.backbone.layers[1].bias.detach().numpy()
    context = np.broadcast_to(1 - mask.numpy(), x.shape)
    r, i = (context * x.numpy()).reshape(2, -1) @ w.T, ((1 - context) * x.numpy()).reshape(2, -1) @ w.T
    share = np.abs(r) / (np.abs(r) + np.abs(i))
    rel, irrel = r + share * b, i + (1 - share) * b
    expected = (1 / (1 + np.exp(irrel - rel))).mean(axis=1)
    np.testing.assert_allclose(penalty.detach().numpy(), expected, rtol=1e-5)


def test_pixel_regions_are_single_object_pixels():
    mask = torch.zeros(3, 1, 6, 6)
    mask[:, :, 2:4, 1:3] = 1  # the objects cover 4 pixels
    torch.manual_seed(0)
    regions = penalty_regions(mask, "pixels", num_pixels=20)
    assert regions.shape == (20, 3, 1, 6, 6)
    assert (regions.sum(dim=(2, 3, 4)) == 1).all()  # one pixel per region and image
    assert (regions * (1 - mask)).sum() == 0  # drawn where objects are
    assert torch.equal(regions[:, 0], regions[:, 2])  # shared by the batch, as CDEP's blobs
    with pytest.raises(RRXError, match="method.regions=blobs; known: context, pixels"):
        penalty_regions(mask, "blobs")


def test_cdep_on_a_model_it_does_not_cover_names_the_layer():
    gelu = _classifier(nn.Flatten(), nn.Linear(12, 3), nn.GELU())
    with pytest.raises(RRXError, match=r"layer 2 \(GELU\)"):
        cd_chain(gelu)
    from rrx.models import create_model

    resnet = create_model(model_config("resnet18"), 9, [0.5] * 3, [0.2] * 3)
    method = create_method(OmegaConf.create({"name": "cdep", "lam": 1.0, "rrda": False}))
    with pytest.raises(RRXError, match=r"layer layer1\.0 \(BasicBlock\)"):
        method.check_model(resnet)


def test_expected_gradients_against_captum_integrated_gradients():
    """With a batch of two images, the references of image 0 are x0 (contributing 0) or x1, each half the time,
    so EG(x0) = IG(x0, baseline x1) / 2 on the target's probability (captum computes IG independently)."""
    from captum.attr import IntegratedGradients

    torch.manual_seed(3)
    model = _classifier(nn.Flatten(), nn.Linear(12, 8), nn.Tanh(), nn.Linear(8, 3))
    x = 0.1 + 0.8 * torch.rand(2, 3, 2, 2)
    y = torch.tensor([1, 2])
    eg = expected_gradients(model, x, y, samples=20000)

    def prob(inputs):
        return torch.softmax(model(inputs), dim=1)

    ig = IntegratedGradients(prob).attribute(x[:1], baselines=x[1:], target=1, n_steps=200)
    torch.testing.assert_close(eg[:1], ig / 2, rtol=0.05, atol=0.03 * ig.abs().max().item())


def test_eg_penalty_is_zero_without_context_and_trains():
    torch.manual_seed(4)
    model = _classifier(nn.Flatten(), nn.Linear(12, 3))
    method = create_method(OmegaConf.create({"name": "eg", "lam": 5.0, "rrda": False, "samples": 2}))
    x, y = torch.rand(4, 3, 2, 2), torch.tensor([0, 1, 2, 0])
    _, logs = method.loss(model, x, y, torch.ones(4, 1, 2, 2))
    assert logs["penalty"] == 0
    loss, logs = method.loss(model, x, y, torch.zeros(4, 1, 2, 2))
    assert logs["penalty"] > 0
    loss.backward()
    assert model.backbone.layers[1].weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "args",
    [
        ["method=cdep", "model=mlp", "attack=fgsm"],
        ["method=eg", "model=mlp", "method.rrda=true", "method.pairing=alg3"],
    ],
)
def test_cdep_and_eg_compose_with_attack_and_rrda(tmp_path, args):
    out = tmp_path / "run"
    rrx(
        "train",
        "dataset=decoy_mnist",
        "dataset.variant=cdep",
        "dataset.decoy_mask=corners",
        "challenge=original",
        "trainer.epochs=1",
        "trainer.batch_size=256",
        "trainer.progress=false",
        *args,
        f"hydra.run.dir={out}",
    )
    assert (out / "metrics.json").is_file()


def test_cdep_on_resnet_stops_before_training(tmp_path):
    result = rrx(
        "train",
        "method=cdep",
        "model=resnet18",
        "dataset=toy_rules",
        "challenge=original",
        f"hydra.run.dir={tmp_path / 'run'}",
        check=False,
    )
    one_line_error(result, "method=cdep", "layer1.0 (BasicBlock)")
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
