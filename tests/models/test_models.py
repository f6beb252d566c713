"""Model factories, their typed configs and the normalising wrapper."""

import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from torch import nn
from torchvision.models import ResNet18_Weights, resnet18

from rrx.config import check, explain, options
from rrx.errors import RRXError
from rrx.models import MODELS, create_model, list_models, model_config
from rrx.models.classifier import Classifier


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
    cfg = model_config(name, **({"img_size": 32} if name == "vit_test" else {}))
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
    model = create_model(model_config("vit_test", img_size=32), num_classes=3, mean=[0.5] * 3, std=[0.25] * 3)
    tokens = torch.arange(2 * 5 * 4, dtype=torch.float32).view(2, 5, 4)  # 1 class token + 2x2 patches, 4 channels
    grid = model.feature_grid(tokens)
    assert grid.shape == (2, 4, 2, 2)
    assert grid[1, :, 0, 1].tolist() == tokens[1, 2].tolist()  # patch (0, 1) is token 1 + 1
    assert grid[0, :, 1, 0].tolist() == tokens[0, 3].tolist()


def _resnet_cfg(**kw):
    return model_config("resnet18", **kw)


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


def _compose(*overrides):
    with initialize_config_module("rrx.conf", version_base="1.3"):
        return compose("train", overrides=list(overrides))


def _error(*overrides) -> str:
    """The one line a composed config with ``overrides`` stops at: Hydra's (``explain``) or ``check``'s."""
    try:
        check(_compose(*overrides))
    except RRXError as err:
        return str(err)
    except Exception as err:  # Hydra's composition error
        line = explain(err)
        assert line is not None, err
        return line
    raise AssertionError(f"{overrides} composed")


# today's options and their defaults, exactly as the YAML files conf/model/*.yaml had them
DEFAULTS = {
    "align": {"display_name": "ALIGN", "hf_name": "kakaobrain/align-base", "image_size": 289, "mean": [0.5] * 3},
    "clip": {"hf_name": "openai/clip-vit-base-patch32", "image_size": 224, "prompts": ["a photo of a {}."]},
    "lenet": {"display_name": "LeNet", "channels": [20, 50], "fc_width": 256},
    "mlp": {"display_name": "MLP", "hidden": [50, 30]},
    "resnet18": {"display_name": "ResNet-18", "pretrained": False, "weights_path": None, "download": False},
    "small_cnn": {"display_name": "SmallCNN", "width": 16},
    "timm": {"name": "timm", "arch": "resnet50", "img_size": None, "pretrained": False},
    "torchvision": {"name": "torchvision", "arch": "resnet50", "pretrained": False},
    "unet": {"display_name": "U-Net", "width": 8, "dropout": 0.5, "bn_momentum": 0.4},
    "vit_b16": {"name": "timm", "display_name": "ViT", "arch": "vit_base_patch16_224.augreg_in21k", "img_size": 64},
    "vit_test": {"name": "timm", "display_name": "ViT (test)", "arch": "test_vit", "img_size": 64},
}


def test_every_model_option_composes_from_its_typed_config_with_todays_defaults():
    assert sorted(options(MODELS)) == sorted(DEFAULTS)
    for option, expected in DEFAULTS.items():
        cfg = _compose(f"model={option}").model
        assert {k: cfg[k] for k in expected} == expected, option
        assert cfg.name in list_models() and (cfg.name == option or cfg.name == "timm")
    assert _compose("model=timm", "model.arch=convnext_tiny").model.display_name == "convnext_tiny"


def test_a_key_only_other_models_have_is_one_line():
    assert _error("model=small_cnn", "model.pretrained=true") == (
        "model.pretrained: model=small_cnn has no key 'pretrained'; its keys: name, display_name, width"
    )
    assert _error("model=unet", "model.arch=resnet50").startswith("model.arch: model=unet has no key 'arch'")
    assert _error("model=small_cnn", "model.width=wide") == "model.width=wide: must be an integer"
    assert _error("model=nope").startswith("unknown model 'nope'; known: align, clip, lenet")


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model=unet", "model.dropout=1.0"], "model.dropout=1: must be in [0, 1)"),
        (["model=unet", "model.bn_momentum=-0.1"], "model.bn_momentum=-0.1: must be in [0, 1]"),
        (["model=small_cnn", "model.width=0"], "model.width=0: must be >= 1"),
        (["model=mlp", "model.hidden=[50,0]"], "model.hidden=[50,0]: must be >= 1"),
        (["model=clip", "model.pretrained=false"], "model.pretrained=false; known: true"),
    ],
)
def test_a_value_out_of_range_fails_the_check(overrides, message):
    assert _error(*overrides) == message


def test_model_config_from_python_is_the_composed_option():
    cfg = model_config("vit_test", img_size=32)
    assert (cfg.name, cfg.arch, cfg.img_size, cfg.pretrained) == ("timm", "test_vit", 32, False)
    with pytest.raises(RRXError, match="model.pretrained: model=small_cnn has no key 'pretrained'"):
        model_config("small_cnn", pretrained=True)
    with pytest.raises(RRXError, match=r"model.dropout=1.5: must be in \[0, 1\)"):
        model_config("unet", dropout=1.5)
    with pytest.raises(RRXError, match="model.channels=\\[20\\]: give the channels of the two conv stages"):
        create_model(model_config("lenet", channels=[20]), 9, [0.5] * 3, [0.25] * 3)


def test_a_plain_config_of_a_model_without_weights_refuses_pretrained():
    """An API caller's (or an old checkpoint's) plain config: create_model still says what is wrong."""
    cfg = OmegaConf.create({"name": "small_cnn", "display_name": "SmallCNN", "width": 4, "pretrained": True})
    with pytest.raises(RRXError, match="model.pretrained: model=small_cnn has no key 'pretrained'; its keys: name,"):
        create_model(cfg, 9, [0.5] * 3, [0.25] * 3)
