"""The attribution registry (rrx.attributions): one class per method, maps equal to captum's own output on a tiny
hand-built model, display names and needs from the registry, consumers' subsets derived from the needs, no import
cycle."""

import subprocess
import sys

import pytest
import torch
from captum.attr import Deconvolution, GuidedBackprop, InputXGradient, IntegratedGradients, Saliency
from omegaconf import OmegaConf

from rrx.attributions import (
    ATTRIBUTIONS,
    Attribution,
    attribution_map,
    attribution_names,
    check_attribution,
    create_attribution,
    display_name,
    grad_cam,
)
from rrx.errors import RRXError
from rrx.models.classifier import Classifier
from rrx.models.small_cnn import SmallCNN

REGISTERED = [
    "saliency",
    "input_x_gradient",
    "integrated_gradients",
    "guided_backprop",
    "gradcam",
    "guided_gradcam",
    "ipha",
]


def tiny_cnn():
    """conv (3 -> 2, 3 x 3), ReLU, flatten, linear to 3 classes; fixed weights, no training."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 2, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(2 * 6 * 5, 3)
    )
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.linspace(-0.5, 0.7, p.numel()).reshape(p.shape))
    return model.eval()


def batch():
    torch.manual_seed(1)
    return torch.rand(2, 3, 6, 5), torch.tensor([2, 0])


def test_the_registry_lists_every_method_in_order_with_its_display_name():
    assert attribution_names() == REGISTERED
    assert [display_name(n) for n in REGISTERED] == [
        "Vanilla Gradient",
        "Input × Gradient",
        "Integrated Gradients",
        "Guided Backprop",
        "Grad-CAM",
        "Guided Grad-CAM",
        "IPHA",
    ]
    for name in REGISTERED:
        cls = ATTRIBUTIONS.get(name)
        assert issubclass(cls, Attribution) and cls.name == name and create_attribution(name).name == name
    assert display_name("captum:Deconvolution") == "Deconvolution"


def test_an_unknown_name_lists_the_registered_names():
    with pytest.raises(
        RRXError, match="^attribution=lime; known: " + ", ".join(REGISTERED) + ", or captum:<ClassName>"
    ):
        create_attribution("lime")
    with pytest.raises(RRXError, match="^analysis.attribution=lime; known: " + ", ".join(REGISTERED)):
        check_attribution("analysis.attribution", "lime")
    with pytest.raises(RRXError, match="captum:LayerGradCam: captum.attr has no attribution of the input"):
        check_attribution("method.attribution", "captum:LayerGradCam")  # needs a layer
    with pytest.raises(RRXError, match="captum:Occlusion"):
        create_attribution("captum:Occlusion")  # needs sliding_window_shapes


def test_the_declared_needs():
    needs = {
        n: (c.needs_gradients, c.needs_feature_grid, c.needs_classes, c.per_channel)
        for n in REGISTERED
        for c in [ATTRIBUTIONS.get(n)]
    }
    assert needs == {
        "saliency": (True, False, False, True),
        "input_x_gradient": (True, False, False, True),
        "integrated_gradients": (True, False, False, True),
        "guided_backprop": (True, False, False, True),
        "gradcam": (True, True, False, False),
        "guided_gradcam": (True, True, False, False),
        "ipha": (False, False, True, False),
    }
    assert create_attribution("captum:Deconvolution").needs_gradients
    assert not create_attribution("captum:FeatureAblation").needs_gradients


def test_the_consumers_take_the_methods_their_needs_allow():
    from rrx.analyses import create_analysis
    from rrx.challenges.snr import SNRChallenge, SNRConfig
    from rrx.methods import create_method
    from rrx.methods.ada import ADAConfig
    from rrx.segmentation.ada import ATTRIBUTIONS as SEGMENTATION

    assert SEGMENTATION == {n: display_name(n) for n in REGISTERED if n != "ipha"}  # IPHA scores among classes
    snr = OmegaConf.merge(OmegaConf.structured(SNRConfig), {"ig_steps": 2})
    snr_cfg = OmegaConf.merge(snr, {"attribution": ["input_x_gradient", "guided_backprop", "captum:Deconvolution"]})
    assert SNRChallenge(snr_cfg).attributions == ["input_x_gradient", "guided_backprop", "captum:Deconvolution"]
    with pytest.raises(
        RRXError,
        match="^challenge.attribution=guided_gradcam; known: saliency, input_x_gradient, "
        "integrated_gradients, guided_backprop, or captum",
    ):
        SNRChallenge(OmegaConf.merge(snr, {"attribution": "guided_gradcam"}))
    ada = OmegaConf.merge(OmegaConf.structured(ADAConfig), {"attribution": "integrated_gradients"})
    assert create_method(ada).attribution == "integrated_gradients"
    with pytest.raises(RRXError, match="^method.attribution=lime; known: " + ", ".join(REGISTERED)):
        create_method(OmegaConf.merge(ada, {"attribution": "lime"}))
    ipha = {"name": "ipha", "compare": ["gradcam", "captum:Deconvolution"]}
    assert create_analysis(ipha).compare == ["gradcam", "captum:Deconvolution"]
    with pytest.raises(RRXError, match="^analysis.compare=ipha; known: " + ", ".join(REGISTERED[:-1]) + ", or"):
        create_analysis(ipha | {"compare": ["ipha"]})  # its own search is the ipha row


@pytest.mark.parametrize("signed", [False, True])
def test_the_gradient_methods_equal_captum_on_a_tiny_model(signed):
    model, (x, y) = tiny_cnn(), batch()
    baseline = torch.full_like(x, 0.3)

    def summed(maps):  # (B, C, H, W) -> (B, H, W)
        return (maps if signed else maps.abs()).sum(1)

    xg = x.clone().requires_grad_(True)
    expected = {
        "saliency": summed(Saliency(model).attribute(xg, target=y, abs=True)),
        "input_x_gradient": summed(InputXGradient(model).attribute(xg, target=y)),
        "integrated_gradients": summed(
            IntegratedGradients(model).attribute(xg, baselines=baseline, target=y, n_steps=7, internal_batch_size=2)
        ),
        "guided_backprop": summed(GuidedBackprop(model).attribute(xg, target=y)),
    }
    for name, reference in expected.items():
        maps = attribution_map(model, x, y, name, baseline=baseline, steps=7, signed=signed)
        assert maps.shape == (2, 6, 5) and not maps.requires_grad
        assert torch.equal(maps, reference.detach()), name
    deconvolution = attribution_map(model, x, y, "captum:Deconvolution", signed=signed)
    assert torch.equal(deconvolution, summed(Deconvolution(model).attribute(xg, target=y)).detach())


def test_saliency_equals_the_hand_computed_gradient_of_a_linear_model():
    torch.manual_seed(2)
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 6 * 5, 3)).eval()
    x, y = batch()
    w = linear[1].weight.detach().reshape(3, 3, 6, 5)
    assert torch.allclose(attribution_map(linear, x, y, "saliency"), w[y].abs().sum(1))
    assert torch.allclose(attribution_map(linear, x, y, "input_x_gradient", signed=True), (x * w[y]).sum(1))


def test_every_method_gives_a_map_of_the_image_size():
    torch.manual_seed(0)
    model = Classifier(SmallCNN(4, width=4), mean=[0.5] * 3, std=[0.25] * 3).eval()
    x, y = torch.rand(2, 3, 16, 16), torch.tensor([1, 2])
    for name in [*REGISTERED, "captum:Deconvolution"]:
        options = {"ipha_iterations": 2, "ipha_neighbours": 2, "generator": torch.Generator().manual_seed(0)}
        for signed in (False, True):
            maps = attribution_map(model, x, y, name, steps=4, signed=signed, **options)
            assert maps.shape == (2, 16, 16), name
    assert torch.equal(create_attribution("gradcam").attribute(model, x, y), grad_cam(model, x, y))


def test_a_feature_grid_method_names_a_model_without_one():
    model, (x, y) = tiny_cnn(), batch()
    with pytest.raises(RRXError, match="attribution gradcam needs a model with a feature grid.*Sequential has none"):
        attribution_map(model, x, y, "gradcam")


def test_importing_the_attributions_imports_no_analysis_and_no_plotting():
    code = (
        "import sys, rrx.attributions, rrx.methods.ada; "
        "print(sorted(m for m in sys.modules if m.startswith(('rrx.analyses', 'rrx.report', 'matplotlib', 'captum'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
