"""FGSM and PGD on models whose input gradient is known; ARRR in the training step."""

import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from torch import nn

from rrx.attacks import ATTACKS, create_attack, list_attacks
from rrx.config import check, explain, options, typed
from rrx.errors import RRXError
from rrx.methods import create_method
from rrx.runtime import Runtime
from rrx.tasks.classification import training_step


class TwoClassLinear(nn.Module):
    """logits = [w.x, -w.x]: for label 1 the CE gradient w.r.t. x is 2 p_0 w, a positive multiple of w."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        score = x.flatten(1) @ self.w
        return torch.stack([score, -score], dim=1)


def _attack(name, **kw):
    base = {"fgsm": {"eps": 0.05}, "pgd": {"eps": 0.05, "step_size": 0.02, "steps": 5, "random_start": True}}[name]
    return create_attack(OmegaConf.create({"name": name, "display_name": name.upper(), "mix": None, **base, **kw}))


def test_fgsm_moves_by_eps_sign_w_and_leaks_no_gradient():
    w = torch.tensor([0.5, -2.0, 0.0, 1.0, -0.1, 3.0])
    model = TwoClassLinear(w).train()
    x = torch.full((3, 6), 0.5)
    y = torch.ones(3, dtype=torch.long)
    x_adv = _attack("fgsm").perturb(model, x, y)
    assert torch.allclose(x_adv - x, (0.05 * torch.sign(w)).expand(3, 6), atol=1e-7)
    assert model.w.grad is None and model.training  # no parameter gradient, mode restored


def test_fgsm_clips_to_the_image_range():
    model = TwoClassLinear(torch.ones(4))
    x_adv = _attack("fgsm", eps=0.3).perturb(model, torch.full((1, 4), 0.9), torch.ones(1, dtype=torch.long))
    assert torch.equal(x_adv, torch.ones(1, 4))


def test_pgd_stays_in_the_eps_ball_and_goes_along_sign_w():
    torch.manual_seed(0)
    w = torch.tensor([1.0, -1.0, 2.0, -0.5])
    model = TwoClassLinear(w)
    x = torch.full((8, 4), 0.5)
    x_adv = _attack("pgd").perturb(model, x, torch.ones(8, dtype=torch.long))
    delta = x_adv - x
    assert (delta.abs() <= 0.05 + 1e-7).all()
    # 5 steps of 0.02 from any start in the ball reach its edge along sign(w)
    assert torch.allclose(delta, (0.05 * torch.sign(w)).expand(8, 4), atol=1e-6)
    assert model.w.grad is None


def test_pgd_without_random_start_and_one_step_is_fgsm_with_step_size():
    w = torch.tensor([1.0, -3.0])
    x = torch.full((2, 2), 0.5)
    y = torch.ones(2, dtype=torch.long)
    one = _attack("pgd", steps=1, step_size=0.01, random_start=False).perturb(TwoClassLinear(w), x, y)
    assert torch.allclose(one, _attack("fgsm", eps=0.01).perturb(TwoClassLinear(w), x, y))


def test_unknown_attack_lists_the_known_ones():
    with pytest.raises(RRXError, match="unknown attack 'cw'; known: fgsm, none, pgd"):
        create_attack(OmegaConf.create({"name": "cw"}))
    assert list_attacks() == ["fgsm", "none", "pgd"]


class Recorder(nn.Module):
    """A linear model that records the inputs of its training forward passes."""

    def __init__(self):
        super().__init__()
        self.net = nn.Linear(4, 2)
        self.seen = []

    def forward(self, x):
        if self.training:
            self.seen.append(x.detach().clone())
        return self.net(x.flatten(1))


@pytest.mark.parametrize("mix", [None, 0.25])
def test_arrr_trains_the_method_on_the_attacked_batch(mix):
    torch.manual_seed(0)
    model = Recorder().train()
    method = create_method(typed("method", {"name": "standard"}))
    runtime = Runtime(torch.device("cpu"), amp=False, batch_size=2, num_workers=0, progress=False)
    x, y = torch.full((2, 4), 0.5), torch.tensor([0, 1])
    attack = _attack("fgsm")
    loss, _, _ = training_step(model, method, attack, mix, (x, y), runtime, torch.Generator())
    x_adv = attack.perturb(model, x, y)
    assert torch.allclose(model.seen[0], x_adv)  # the method's loss saw the adversarial batch
    ce = nn.functional.cross_entropy
    expected = (
        ce(model.net(x_adv), y) if mix is None else mix * ce(model.net(x), y) + (1 - mix) * ce(model.net(x_adv), y)
    )
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


# ---- input gradients at black and white pixels (the model wrappers' clamp) -------------------------------------


class LinearBackbone(nn.Module):
    """A backbone answering timm's two questions: flatten and one linear layer (no bias)."""

    def __init__(self, weight):
        super().__init__()
        self.linear = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
        self.linear.weight.data = weight

    def forward_features(self, x):
        return self.linear(x.flatten(1))

    def forward_head(self, features, pre_logits=False):
        return features

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


def _gradient(f, x):
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(f(x).sum(), x)
    return grad


def test_the_model_clamp_lets_the_input_gradient_through_at_0_and_1():
    """An rrx model clamps its input to [0, 1] but its input gradient at pixels of exactly 0 and 1 is that of the
    same network without the clamp (``torch.clamp``'s own gradient is 0 there: [0, 1, 1, 1, 0] at these values)."""
    from rrx.models.classifier import Classifier
    from rrx.models.unet import Segmenter, UNet

    torch.manual_seed(0)
    values = torch.tensor([0.0, 1e-7, 0.5, 1 - 1e-7, 1.0])
    x = values[torch.arange(3 * 8 * 8) % 5].view(1, 3, 8, 8)  # every value in every channel
    backbone = LinearBackbone(torch.randn(4, 3 * 8 * 8))
    mean, std = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
    model = Classifier(backbone, mean, std)
    plain = lambda z: backbone((z - model.mean) / model.std)  # noqa: E731 - the network without the clamp
    expected = _gradient(plain, x)
    assert (expected != 0).all()
    assert torch.equal(_gradient(model, x), expected)
    assert torch.equal(model(x), plain(x.clamp(0, 1)))  # the forward value is still the clamped one
    net = UNet(in_channels=3, width=4).eval()
    segmenter = Segmenter(net, mean, std).eval()
    expected = _gradient(lambda z: net((z - segmenter.mean) / segmenter.std), x)
    assert torch.allclose(_gradient(segmenter, x), expected) and (expected[x == 0] != 0).any()


def test_fgsm_moves_every_pixel_of_a_black_image_by_eps():
    """A model whose loss grows with every pixel: FGSM brightens an all-black image by exactly eps everywhere (before
    the fix the clamp's zero gradient at 0 left every pixel where it was)."""
    from rrx.models.classifier import Classifier

    torch.manual_seed(0)
    w0 = 0.01 * torch.randn(48)
    w = torch.stack([w0, w0 + 0.01 * (0.1 + torch.rand(48))])  # w_1 > w_0 in every pixel; small: p_1 is not 0
    model = Classifier(LinearBackbone(w), [0.5] * 3, [0.25] * 3)
    x, y = torch.zeros(1, 3, 4, 4), torch.tensor([0])
    # d CE / dx for label 0 is p_1 (w_1 - w_0) / std > 0 in every pixel
    x_adv = _attack("fgsm", eps=0.1).perturb(model, x, y)
    assert torch.allclose(x_adv, torch.full_like(x, 0.1))


# ---- the typed configs of the attack group ---------------------------------------------------------------------


def _compose(*overrides):
    with initialize_config_module("rrx.conf", version_base="1.3"):
        return compose("train", overrides=list(overrides))


def test_every_attack_option_composes_with_todays_defaults():
    expected = {
        "none": {"name": "none", "display_name": None, "mix": None},
        "fgsm": {"name": "fgsm", "display_name": "FGSM", "mix": None, "eps": 0.03137, "eval_eps": None},
        "pgd": {
            "name": "pgd",
            "display_name": "PGD",
            "mix": None,
            "eps": 0.03137,
            "eval_eps": None,
            "step_size": 0.00784,
            "steps": 10,
            "random_start": True,
        },
    }
    assert sorted(options(ATTACKS)) == sorted(expected)
    for name, values in expected.items():
        cfg = _compose(f"attack={name}").attack
        assert OmegaConf.to_container(cfg) == values
        assert create_attack(cfg) is not None
    assert _compose().attack.name == "none"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["attack=none", "attack.eps=0.1"],
            "attack.eps: attack=none has no key 'eps'; its keys: name, display_name, mix",
        ),
        (["attack=fgsm", "attack.steps=3"], "attack.steps: attack=fgsm has no key 'steps'"),
        (["attack=pgd", "attack.steps=many"], "attack.steps=many: must be an integer"),
    ],
)
def test_a_key_the_attack_does_not_have_is_one_line(overrides, message):
    with pytest.raises(Exception) as err:
        _compose(*overrides)
    assert (explain(err.value) or "").startswith(message)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["attack=fgsm", "attack.eps=-0.1"], "attack.eps=-0.1: must be >= 0"),
        (["attack=pgd", "attack.mix=1.5"], "attack.mix=1.5: must be in [0, 1]"),
        (["attack=pgd", "attack.step_size=0"], "attack.step_size=0: must be > 0"),
        (["attack=pgd", "attack.steps=0"], "attack.steps=0: must be >= 1"),
        (["attack=fgsm", "attack.eval_eps=[0.01,-0.1]"], "attack.eval_eps=[0.01,-0.1]: must be >= 0"),
    ],
)
def test_an_attack_value_out_of_range_fails_the_check(overrides, message):
    with pytest.raises(RRXError) as err:
        check(_compose(*overrides))
    assert str(err.value) == message
