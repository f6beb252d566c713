"""A test per registered component, generated from the registries (as timm's per-model tests): every option of the
method, model and attack groups composes into the real train config from its typed config and takes one tiny step.
A new registered method, model or attack is tested here without a line added. (Datasets, challenges and analyses
each build from every option in tests/test_configs.py and run in their own tests, on fixtures they need.)"""

from __future__ import annotations

import pytest
import torch

from rrx.attacks import ATTACKS, create_attack
from rrx.config import options
from rrx.methods import METHODS, create_method
from rrx.models import MODELS, create_model
from rrx.models.classifier import Classifier

# models not built to classify from scratch here: zero-shot VLMs come with their weights
# (tests/challenges/test_zero_shot.py), the U-Net segments (tests/segmentation/test_segmentation.py)
NOT_CLASSIFIERS = {"clip", "align", "unet"}
SMALL = {"vit_b16": ["model.pretrained=false"], "timm": ["model.arch=resnet10t"]}  # ViT-B/16 at the tiny 32 px


def _batch(size: int = 32, n: int = 4):
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, size, size, generator=generator)
    mask = torch.zeros(n, 1, size, size)
    mask[..., size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 1
    return x, torch.arange(n) % 3, mask


@pytest.mark.parametrize("choice", list(options(METHODS)))
def test_every_method_takes_a_training_step(choice, compose_train):
    """The method's loss on a batch of the tiny SmallCNN: finite, and its gradient reaches every parameter that the
    forward pass used."""
    cfg = compose_train(f"method={choice}")
    model = create_model(cfg.model, 3, [0.5] * 3, [0.25] * 3)
    method = create_method(cfg.method)
    method.check_model(model)
    x, y, mask = _batch()
    groups = {}
    if method.groups_in_batch:  # group DRO: each image's group, here its label's
        method.set_groups(y.tolist(), [[str(k), str(k)] for k in range(3)])
        groups = {"groups": y}
    loss, logs = method.loss(model, x, y, mask, **groups)
    loss.backward()
    assert torch.isfinite(loss) and logs["logits"].shape == (4, 3)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("choice", [c for c in options(MODELS) if c not in NOT_CLASSIFIERS])
def test_every_model_classifies_a_batch(choice, compose_train):
    cfg = compose_train(f"model={choice}", *SMALL.get(choice, []))
    model = create_model(cfg.model, 3, [0.5] * 3, [0.25] * 3)
    x, _, _ = _batch(cfg.dataset.image_size, 2)
    assert isinstance(model, Classifier) and model.eval()(x).shape == (2, 3)


@pytest.mark.parametrize("choice", list(options(ATTACKS)))
def test_every_attack_stays_in_its_ball(choice, compose_train):
    """The perturbed batch is an image ([0, 1]) within eps of the original in the L-inf norm."""
    cfg = compose_train(f"attack={choice}")
    model = create_model(compose_train().model, 3, [0.5] * 3, [0.25] * 3)
    attack = create_attack(cfg.attack)
    x, y, _ = _batch()
    adversarial = attack.perturb(model, x, y)
    eps = float(cfg.attack.get("eps", 0.0))
    assert adversarial.shape == x.shape and 0 <= adversarial.min() and adversarial.max() <= 1
    assert (adversarial - x).abs().max() <= eps + 1e-6
