"""ADA's window search against brute force, its erasing, and Grad-CAM against captum on a CNN."""

import pytest
import torch
from captum.attr import LayerGradCam
from omegaconf import OmegaConf

from rrx.attributions import attribution_map, grad_cam
from rrx.methods import create_method
from rrx.methods.ada import best_context_window, erase_windows, window_sums
from rrx.models import model_config
from rrx.models.classifier import Classifier
from rrx.models.small_cnn import SmallCNN


def _brute_force(attribution, mask, z):
    """The best z x z window without object pixels, by trying every position in Python loops."""
    corners = []
    for a, m in zip(attribution, mask[:, 0]):
        best, corner = None, (-1, -1)
        for r in range(a.shape[0] - z + 1):
            for c in range(a.shape[1] - z + 1):
                if m[r : r + z, c : c + z].any():
                    continue
                value = a[r : r + z, c : c + z].sum().item()
                if best is None or value > best + 1e-9:
                    best, corner = value, (r, c)
        corners.append(corner)
    return corners


def test_window_sums_match_brute_force():
    values = torch.rand(2, 7, 9, dtype=torch.float64)
    sums = window_sums(values, 3)
    assert sums.shape == (2, 5, 7)
    assert sums[1, 2, 4].item() == pytest.approx(values[1, 2:5, 4:7].sum().item())


@pytest.mark.parametrize("seed", range(5))
def test_best_context_window_matches_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    attribution = torch.rand(6, 12, 14, generator=g, dtype=torch.float64)
    mask = (torch.rand(6, 1, 12, 14, generator=g) < 0.08).double()
    mask[5] = 1  # no window in the context
    corners = best_context_window(attribution, mask, 3)
    assert corners.tolist() == [list(c) for c in _brute_force(attribution, mask, 3)]
    assert corners[5].tolist() == [-1, -1]


def test_erase_windows_zeroes_exactly_the_window():
    x = torch.ones(2, 3, 8, 8)
    out = erase_windows(x, torch.tensor([[1, 2], [-1, -1]]), 3)
    assert (out[0, :, 1:4, 2:5] == 0).all() and out[0].sum().item() == 3 * (64 - 9)
    assert torch.equal(out[1], x[1])


def test_grad_cam_equals_captum_on_a_cnn():
    torch.manual_seed(0)
    model = Classifier(SmallCNN(4, width=4), mean=[0.5] * 3, std=[0.25] * 3).eval()
    x, y = torch.rand(3, 3, 32, 32), torch.tensor([0, 3, 1])
    ours = grad_cam(model, x, y)
    reference = LayerGradCam(model, model.backbone.features).attribute(x, target=y, relu_attributions=True)
    reference = torch.nn.functional.interpolate(reference, size=(32, 32), mode="bilinear", align_corners=False)[:, 0]
    assert torch.allclose(ours, reference, atol=1e-6)


def test_grad_cam_on_a_vit_reads_the_last_blocks_tokens_and_is_not_zero():
    """A class-token ViT gives its final patch tokens no gradient, so Grad-CAM there is zero everywhere (rrx's before
    this test). The map at the last block's norm1: captum's layer gradients and activations, Grad-CAM's formula by
    hand (channel weights = gradient averaged over the patch tokens, ReLU of the weighted sum, bilinear upsampling)."""
    from captum._utils.gradient import compute_layer_gradients_and_eval

    from rrx.models import create_model

    torch.manual_seed(0)
    cfg = model_config("vit_test", img_size=32)
    model = create_model(cfg, 4, [0.5] * 3, [0.25] * 3).eval()
    x, y = torch.rand(3, 3, 32, 32), torch.tensor([0, 3, 1])
    (grads,), (acts,) = compute_layer_gradients_and_eval(model, model.backbone.blocks[-1].norm1, x, target_ind=y)
    grads, acts = grads[:, 1:], acts[:, 1:]  # (B, 4, C): the 2 x 2 patch tokens, the class token dropped
    cam = torch.relu((grads.mean(1, keepdim=True) * acts).sum(2)).reshape(3, 1, 2, 2)
    reference = torch.nn.functional.interpolate(cam, size=(32, 32), mode="bilinear", align_corners=False)[:, 0]
    ours = grad_cam(model, x, y)
    assert ours.abs().max() > 0
    assert torch.allclose(ours, reference, atol=1e-6)


@pytest.mark.parametrize("method", ["saliency", "input_x_gradient", "guided_backprop", "gradcam", "guided_gradcam"])
def test_every_attribution_gives_a_non_negative_map(method):
    torch.manual_seed(0)
    model = Classifier(SmallCNN(4, width=4), mean=[0.5] * 3, std=[0.25] * 3).eval()
    maps = attribution_map(model, torch.rand(2, 3, 16, 16), torch.tensor([1, 2]), method)
    assert maps.shape == (2, 16, 16) and (maps >= 0).all() and maps.sum() > 0


def test_saliency_is_the_absolute_input_gradient():
    model = Classifier(SmallCNN(4, width=4), mean=[0.5] * 3, std=[0.25] * 3).eval()
    x, y = 0.1 + 0.8 * torch.rand(2, 3, 16, 16), torch.tensor([1, 2])
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(xg).gather(1, y[:, None]).sum(), xg)
    assert torch.allclose(attribution_map(model, x, y, "saliency"), grad.abs().sum(1), atol=1e-6)


def test_ada_schedule():
    ada = create_method(
        OmegaConf.create(
            {
                "name": "ada",
                "rrda": False,
                "standard_epochs": 2,
                "cycles": 2,
                "ada_epochs": 3,
                "window": 4,
                "attribution": "gradcam",
                "augment": "none",  # the originals only (the default, classic, doubles them)
            }
        )
    )
    assert ada.total_epochs(99) == 8
    assert [ada.data_factor(e) for e in range(1, 9)] == [1, 1, 2, 2, 2, 2, 2, 2]


def test_classic_augment_flips_and_shifts_image_and_mask_together():
    from rrx.methods.ada import classic_augment

    x = torch.rand(1, 3, 16, 16)
    m = (torch.rand(1, 1, 16, 16) > 0.5).float()
    flip = torch.tensor([[1.0, 0.0, 0.0, 0.0, 1.0]])
    fx, fm = classic_augment(x, m, flip)
    assert torch.allclose(fx, x.flip(-1), atol=1e-6) and torch.equal(fm, m.flip(-1))
    shift = torch.tensor([[0.0, 0.0, 2 / 16, 1 / 16, 1.0]])  # 2 px right, 1 px down: fractions of the 16 px side
    sx, sm = classic_augment(x, m, shift)
    assert torch.allclose(sx[..., 1:, 2:], x[..., :-1, :-2], atol=1e-6) and torch.equal(
        sm[..., 1:, 2:], m[..., :-1, :-2]
    )
    assert (sx[..., :, :2] == 0).all() and (sx[..., :1, :] == 0).all() and (sm[..., :, :2] == 0).all()


def test_affine_params_stay_in_the_thesis_ranges():
    from rrx.methods.ada import affine_params

    p = affine_params(1000, torch.Generator().manual_seed(0))
    assert set(p[:, 0].tolist()) == {0.0, 1.0}
    assert p[:, 1].abs().max() <= 4.6 and p[:, 2:4].abs().max() <= 0.03
    assert p[:, 4].min() >= 0.98 and p[:, 4].max() <= 1.02


def test_conventional_data_and_images_without_a_window_left_out():
    from torch.utils.data import TensorDataset

    base = TensorDataset(torch.rand(3, 3, 8, 8), torch.tensor([0, 1, 2]), torch.zeros(3, 1, 8, 8))
    cfg = OmegaConf.create(
        {
            "name": "ada",
            "rrda": False,
            "standard_epochs": 1,
            "cycles": 1,
            "ada_epochs": 1,
            "window": 2,
            "attribution": "saliency",
            "augment": "classic",
        }
    )
    ada = create_method(cfg)
    assert len(ada.current_set(base)) == 6  # Alg. 1 line 1: data + classic_augmentations(data)
    ada.corners = torch.tensor([[0, 0], [-1, -1], [2, 2]])  # image 1 had no window in its context
    data = ada.current_set(base)
    assert len(data) == 6 + 2
    assert torch.equal(data[6][0][:, :2, :2], torch.zeros(3, 2, 2)) and torch.equal(
        data[7][0][:, 2:4, 2:4], torch.zeros(3, 2, 2)
    )
    assert ada.data_factor(1) == 2 and ada.data_factor(2) == 3
    none = create_method(OmegaConf.merge(cfg, {"augment": "none"}))
    assert none.current_set(base) is base and none.data_factor(2) == 2
