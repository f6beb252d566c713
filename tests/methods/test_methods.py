"""Each penalty on a linear model, against a value computed by hand from its weights."""

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from rrx.methods import create_method
from rrx.methods.actdiff import remove_context
from rrx.models import model_config
from rrx.models.classifier import Classifier
from rrx.models.small_cnn import SmallCNN

K, C, H, W = 3, 2, 2, 2
D = C * H * W


class Linear(nn.Module):
    """logits = W x (flattened); the pooled features are x itself."""

    def __init__(self, weight):
        super().__init__()
        self.weight = nn.Parameter(weight.clone())

    def forward_features(self, x):
        return x.flatten(1)

    def forward_head(self, features, pre_logits=False):
        return features if pre_logits else features @ self.weight.T


@pytest.fixture
def setup():
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(K, D, generator=g)
    model = Classifier(Linear(weight), mean=[0.0] * 3, std=[1.0] * 3)  # identity normalisation
    model.mean, model.std = torch.zeros(1, C, 1, 1), torch.ones(1, C, 1, 1)
    x = 0.1 + 0.8 * torch.rand(4, C, H, W, generator=g)  # inside (0, 1): the clamp passes gradients
    y = torch.tensor([0, 1, 2, 1])
    mask = torch.tensor([[1, 0], [0, 0]], dtype=torch.float32).expand(4, 1, H, W).clone()
    mask[1] = torch.tensor([[0, 1], [1, 1]])
    return model, weight.numpy(), x, y, mask


def _method(name, lam, **extra):
    """The method with its penalty's weight lam (Standard has none: lam must be 0 for it)."""
    if name == "standard":
        assert lam == 0.0
        return create_method({"name": name, "rrda": False, **extra})
    return create_method(OmegaConf.create({"name": name, "lam": lam, "rrda": False, **extra}))


def _context(mask):
    return (1 - mask).expand(-1, C, -1, -1).reshape(mask.shape[0], D).numpy()


def _ce(weight, x, y):
    logits = x.reshape(len(y), D).numpy() @ weight.T
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    return -logp[np.arange(len(y)), y.numpy()].mean(), logits


def test_rrr_penalty_by_hand(setup):
    model, weight, x, y, mask = setup
    ce, logits = _ce(weight, x, y)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    grad = (1 - K * p) @ weight  # d/dx sum_k log p_k = W^T (1 - K p)
    penalty = ((_context(mask) * grad) ** 2).sum(1).mean()
    loss, logs = _method("rrr", 10.0).loss(model, x, y, mask)
    assert logs["penalty"].item() == pytest.approx(penalty, rel=1e-5)
    assert loss.item() == pytest.approx(ce + 10 * penalty, rel=1e-5)


def test_gradmask_penalty_by_hand(setup):
    model, weight, x, y, mask = setup
    _, logits = _ce(weight, x, y)
    penalty = 0.0
    for n in range(4):
        a = y[n].item()
        others = [k for k in range(K) if k != a]
        b = max(others, key=lambda k: logits[n, k])
        grad = np.sign(logits[n, a] - logits[n, b]) * (weight[a] - weight[b])
        penalty += np.abs(_context(mask)[n] * grad).sum() / 4
    _, logs = _method("gradmask", 1.0).loss(model, x, y, mask)
    assert logs["penalty"].item() == pytest.approx(penalty, rel=1e-5)


def test_actdiff_penalty_by_hand(setup):
    model, _, x, y, mask = setup
    # features are x itself: f(x * m) - f(x) = -x * (1 - m)
    expected = np.linalg.norm(x.reshape(4, D).numpy() * _context(mask), axis=1).mean()
    _, logs = _method("actdiff", 1.0, layer="pre_logits", masking="zero").loss(model, x, y, mask)
    assert logs["penalty"].item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    "name, extra", [("rrr", {}), ("gradmask", {}), ("actdiff", {"layer": "pre_logits", "masking": "zero"})]
)
def test_lam_zero_is_the_standard_loss_and_all_signal_gives_zero_penalty(setup, name, extra):
    model, weight, x, y, mask = setup
    ce, _ = _ce(weight, x, y)
    loss, _ = _method(name, 0.0, **extra).loss(model, x, y, mask)
    standard, _ = _method("standard", 0.0).loss(model, x, y, mask)
    assert loss.item() == standard.item() == pytest.approx(ce, rel=1e-6)
    _, logs = _method(name, 5.0, **extra).loss(model, x, y, torch.ones_like(mask))
    assert logs["penalty"].item() == 0.0


@pytest.mark.parametrize(
    "name, extra",
    [
        ("rrr", {}),
        ("gradmask", {}),
        ("actdiff", {"layer": "pre_logits", "masking": "shuffle"}),
        ("actdiff", {"layer": "feature_map", "masking": "zero"}),
    ],
)
def test_penalty_gradient_reaches_the_parameters(name, extra):
    """On a small CNN: the penalty alone (lam = 1 loss minus lam = 0 loss) moves the first conv weights."""
    torch.manual_seed(0)
    model = Classifier(SmallCNN(3, width=4), mean=[0.5] * 3, std=[0.25] * 3).eval()
    x, y = 0.1 + 0.8 * torch.rand(2, 3, 16, 16), torch.tensor([0, 2])
    mask = torch.zeros(2, 1, 16, 16)
    mask[:, :, 4:12, 4:12] = 1
    torch.manual_seed(1)
    with_penalty = _method(name, 1.0, **extra).loss(model, x, y, mask)[0]
    torch.manual_seed(1)
    without = _method(name, 0.0, **extra).loss(model, x, y, mask)[0]
    (grad,) = torch.autograd.grad(with_penalty - without, model.backbone.features[0][0].weight)
    assert grad.abs().sum() > 0


def test_shuffle_permutes_only_context_pixels():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)
    mask = torch.zeros(2, 1, 4, 4)
    mask[:, :, 1:3, 1:3] = 1
    out = remove_context(x, mask, "shuffle", torch.Generator().manual_seed(0))
    inside = mask.bool().expand_as(x)
    assert torch.equal(out[inside], x[inside])
    for b in range(2):
        for c in range(3):
            assert sorted(out[b, c][~mask[b, 0].bool()].tolist()) == sorted(x[b, c][~mask[b, 0].bool()].tolist())
    assert not torch.equal(out, x)
    assert torch.equal(remove_context(x, mask, "zero"), x * mask)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("input_space", ["pixels", "normalized"])
def test_penalty_conventions_by_hand(setup, reduction, input_space):
    """RRR and GradMask under each convention on logits = W z, z = (x - mean) / std the model's normalised input:
    gradients w.r.t. z come straight from W; w.r.t. the pixels x they are divided by std (dz/dx = 1 / std)."""
    model, weight, x, y, mask = setup
    std = np.array([0.5, 0.25])  # per channel
    model.mean, model.std = torch.full((1, C, 1, 1), 0.3), torch.tensor(std, dtype=torch.float32).view(1, C, 1, 1)
    z = ((x - 0.3) / model.std).reshape(4, D).numpy()
    logits = z @ weight.T
    factor = 1.0 if input_space == "normalized" else 1.0 / np.repeat(std, H * W)  # (D,), channel-major as flatten
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    rrr = ((_context(mask) * ((1 - K * p) @ weight) * factor) ** 2).sum(1)  # d/dz sum_k log p_k = W^T (1 - K p)
    gradmask = []
    for n in range(4):
        a = int(y[n])
        b = max((k for k in range(K) if k != a), key=lambda k: logits[n, k])
        grad = np.sign(logits[n, a] - logits[n, b]) * (weight[a] - weight[b])  # d/dz |z_a - z_b|
        gradmask.append(np.abs(_context(mask)[n] * grad * factor).sum())
    reduce = np.sum if reduction == "sum" else np.mean
    for name, expected in (("rrr", reduce(rrr)), ("gradmask", reduce(gradmask))):
        _, logs = _method(name, 1.0, reduction=reduction, input_space=input_space).loss(model, x, y, mask)
        assert logs["penalty"].item() == pytest.approx(expected, rel=1e-5), name


def test_unknown_reduction_and_input_space_list_the_choices():
    from rrx.errors import RRXError

    with pytest.raises(RRXError, match="method.reduction=max; known: mean, sum"):
        _method("rrr", 1.0, reduction="max")
    with pytest.raises(RRXError, match="method.input_space=logits; known: pixels, normalized"):
        _method("gradmask", 1.0, input_space="logits")


def test_actdiff_on_a_vit_compares_the_final_normed_class_token():
    """Issue 23: on timm's test ViT the pre_logits penalty is mean_b ||cls(x * m) - cls(x)||_2 over the class
    token after the final LayerNorm (norm ~ sqrt(D) whatever the input), the (B, 1, H, W) mask broadcast over the
    channels; a constant class token (the final norm's gain 0) satisfies it exactly: the collapse the showcase ViT
    finds at lam=1."""

    from rrx.models import create_model

    cfg = model_config("vit_test")
    cfg.img_size = 32
    torch.manual_seed(0)
    model = create_model(cfg, num_classes=3, mean=[0.5] * 3, std=[0.25] * 3).eval()
    x, y = 0.1 + 0.8 * torch.rand(2, 3, 32, 32), torch.tensor([0, 2])
    mask = torch.zeros(2, 1, 32, 32)
    mask[:, :, 8:24, 8:24] = 1
    with torch.no_grad():
        tokens, tokens_masked = model.forward_features(x), model.forward_features(x * mask.expand(-1, 3, -1, -1))
        expected = (tokens_masked[:, 0] - tokens[:, 0]).norm(dim=1).mean()
        _, logs = _method("actdiff", 1.0, layer="pre_logits", masking="zero").loss(model, x, y, mask)
        assert tokens.shape == (2, 5, 64)  # class token + 2x2 patches, D = 64
        assert tokens[:, 0].norm(dim=1) == pytest.approx([64**0.5] * 2, rel=1e-3)  # LayerNorm'd, gain 1 at init
        assert logs["penalty"].item() == pytest.approx(expected.item(), rel=1e-5)
        assert logs["penalty"].item() > 1.0
        model.backbone.norm.weight.zero_()  # every image's class token = the norm's bias: a constant feature
        _, logs = _method("actdiff", 1.0, layer="pre_logits", masking="zero").loss(model, x, y, mask)
        assert logs["penalty"].item() == 0.0
