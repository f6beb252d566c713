"""Model factories and the normalising wrapper."""

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn
from torchvision.models import ResNet18_Weights, resnet18

from rrx.errors import RRXError
from rrx.models import create_model, list_models
from rrx.models.classifier import Classifier

CONF = Path(__file__).resolve().parents[1] / "conf"


class FlatBackbone(nn.Module):
    """forward_features flattens; the head is the identity."""

    def forward_features(self, x):
        return x.flatten(1)

    def forward_head(self, features, pre_logits=False):
        return features


def test_classifier_normalises_inside():
    backbone = FlatBackbone()
    model = Classifier(backbone, mean=[0.5, 0.25, 0.0], std=[0.5, 0.25, 2.0])
    x = torch.tensor([1.0, 0.5, 0.2]).view(1, 3, 1, 1)
    assert torch.allclose(model(x), torch.tensor([[1.0, 1.0, 0.1]]))
    assert torch.allclose(model(x + 5), torch.tensor([[1.0, 3.0, 0.5]]))  # clamped to [0, 1] first


@pytest.mark.parametrize(
    "name, grid",
    [("resnet18", (512, 1, 1)), ("small_cnn", (64, 4, 4)), ("vit_test", (64, 2, 2)), ("mlp", None)],
)
def test_every_model_answers_the_adapter_questions(name, grid):
    cfg = OmegaConf.load(CONF / "model" / f"{name}.yaml")
    if "img_size" in cfg:
        cfg.img_size = 32
    model = create_model(cfg, num_classes=7, mean=[0.5] * 3, std=[0.25] * 3).eval()
    x = torch.rand(2, 3, 32, 32)
    logits = model(x)
    assert logits.shape == (2, 7) and cfg.name in list_models()
    pooled = model.pooled_features(x)
    head = model.backbone.get_classifier() if hasattr(model.backbone, "get_classifier") else model.backbone.fc
    assert pooled.ndim == 2 and torch.allclose(head(pooled), logits, atol=1e-5)  # the head reads the pooled features
    features = model.forward_features(x)
    if grid is None:
        with pytest.raises(ValueError, match="no spatial grid"):
            model.feature_grid(features)
    else:
        assert model.feature_grid(features).shape == (2, *grid)


def test_vit_grid_is_the_patch_tokens_in_row_major_order():
    cfg = OmegaConf.load(CONF / "model" / "vit_test.yaml")
    cfg.img_size = 32
    model = create_model(cfg, num_classes=3, mean=[0.5] * 3, std=[0.25] * 3)
    tokens = torch.arange(2 * 5 * 4, dtype=torch.float32).view(2, 5, 4)  # 1 class token + 2x2 patches, 4 channels
    grid = model.feature_grid(tokens)
    assert grid.shape == (2, 4, 2, 2)
    assert grid[1, :, 0, 1].tolist() == tokens[1, 2].tolist()  # patch (0, 1) is token 1 + 1
    assert grid[0, :, 1, 0].tolist() == tokens[0, 3].tolist()


def _resnet_cfg(**kw):
    return OmegaConf.create(
        {"name": "resnet18", "display_name": "ResNet-18", "pretrained": False, "weights_path": None, **kw}
    )


def test_pretrained_loads_torchvision_weights_from_the_torch_home_cache(tmp_path, monkeypatch):
    """The real pretrained path, fed a file placed where torchvision caches its download."""
    reference = resnet18(weights=None)
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(reference.state_dict(), cache / ResNet18_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[1])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    model = create_model(_resnet_cfg(pretrained=True), num_classes=9, mean=[0.5] * 3, std=[0.25] * 3)
    assert torch.equal(model.backbone.conv1.weight, reference.conv1.weight)
    assert model.backbone.fc.out_features == 9


def test_weights_path_loads_a_local_state_dict(tmp_path):
    reference = resnet18(weights=None)
    torch.save(reference.state_dict(), tmp_path / "w.pth")
    model = create_model(_resnet_cfg(weights_path=str(tmp_path / "w.pth")), 9, [0.5] * 3, [0.25] * 3)
    assert torch.equal(model.backbone.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)


def test_weights_that_do_not_fit_name_their_keys_and_shapes(tmp_path):
    """torch's message starts with "Error(s) in loading state_dict for ResNet:", which names nothing."""
    state = resnet18(weights=None).state_dict()
    state["extra.weight"] = state.pop("layer4.1.conv2.weight")
    state["fc.weight"] = torch.zeros(10, 512)
    torch.save(state, tmp_path / "w.pth")
    with pytest.raises(RRXError) as err:
        create_model(_resnet_cfg(weights_path=str(tmp_path / "w.pth")), 9, [0.5] * 3, [0.25] * 3)
    assert str(err.value) == (
        "the weights do not fit torchvision's ResNet-18 (model resnet18): missing keys: 1 "
        "(layer4.1.conv2.weight); unexpected keys: 1 (extra.weight); 1 shape mismatches "
        "(first: fc.weight is (10, 512), the model's (1000, 512))"
    )


def test_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(RRXError, match="model.weights_path=.*missing.pth"):
        create_model(_resnet_cfg(weights_path=str(tmp_path / "missing.pth")), 9, [0.5] * 3, [0.25] * 3)


def test_pretrained_weights_missing_from_the_cache_are_a_clear_error_without_a_download(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(ResNet18_Weights, "get_state_dict", offline)  # a download attempt would fail loudly
    with pytest.raises(RRXError, match=f"no pretrained weights in the local cache .*{tmp_path}.*model.weights_path"):
        create_model(_resnet_cfg(pretrained=True), 9, [0.5] * 3, [0.25] * 3)
    with pytest.raises(RRXError, match="cannot download .*network unreachable"):
        create_model(_resnet_cfg(pretrained=True, download=True), 9, [0.5] * 3, [0.25] * 3)
