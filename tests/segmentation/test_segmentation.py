"""Segmentation (thesis ch. 3): Table 1's metrics, Table 2's augmentations, the U-Net, ADA for segmentation, the
robustness set (Alg. 2), the SCGM loader, the protocol's run folder and resume, and the report's tables and figures;
each against values computed here by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from fixtures.runner import one_line_error, rrx
from fixtures.scgm import GM_MAJORITY, GM_MINORITY, WHITE, write_scgm
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from torch.utils.data import TensorDataset

from rrx.config import component
from rrx.errors import RRXError
from rrx.models.unet import ForegroundScore, Segmenter, UNet, create_unet
from rrx.runtime import Runtime
from rrx.segmentation import augment, metrics
from rrx.segmentation.ada import (
    ada_windows,
    check_window,
    foreground_attribution,
    robustness_batch,
    robustness_corners,
    with_ada_images,
)
from rrx.train import train

CPU = Runtime(torch.device("cpu"), amp=False, batch_size=4, num_workers=0, progress=False)
nan = math.nan


def _masks(*pixel_lists, size=(6, 6)) -> torch.Tensor:
    """(B, 1, H, W) boolean masks, each the given (row, col) pixels."""
    out = torch.zeros(len(pixel_lists), 1, *size, dtype=torch.bool)
    for b, pixels in enumerate(pixel_lists):
        for r, c in pixels:
            out[b, 0, r, c] = True
    return out


def _without_times(forks: dict) -> dict:
    """The forks' results without the seconds each epoch took."""
    return {
        name: {**f, "history": [{k: v for k, v in h.items() if k != "seconds"} for h in f["history"]]}
        for name, f in forks.items()
    }


def _close(values, expected):
    return all((math.isnan(e) and math.isnan(v)) or v == pytest.approx(e) for v, e in zip(values.tolist(), expected))


# --- Table 1's metrics -----------------------------------------------------------------------------------------


def test_metrics_by_hand_on_a_4x4_mask():
    """Ground truth the 2x2 square at the top left (4 px); the prediction 3 of them plus 1 outside:
    TP 3, FP 1, FN 1, TN 11 of 16."""
    g = _masks([(0, 0), (0, 1), (1, 0), (1, 1)], size=(4, 4))
    p = _masks([(0, 0), (0, 1), (1, 0), (3, 3)], size=(4, 4))
    v = metrics.per_image(p, g)
    assert v["DSC"].item() == pytest.approx(2 * 3 / (4 + 4) * 100)
    assert v["TPR"].item() == pytest.approx(75.0) and v["PPV"].item() == pytest.approx(75.0)
    assert v["TNR"].item() == pytest.approx(100 * 11 / 12)
    # surfaces: P = {(0,0), (0,1), (1,0), (3,3)} (every pixel touches the outside), G = its four pixels;
    # d(P -> G) = |(3,3) - (1,1)| = sqrt(8); d(G -> P) = |(1,1) - (0,1)| = 1
    assert v["HSD"].item() == pytest.approx(math.sqrt(8))


def test_empty_masks_give_the_documented_values():
    empty, one = _masks([]), _masks([(2, 2)])
    both = metrics.per_image(empty, empty)
    assert _close(torch.cat([both[k] for k in metrics.METRICS]), [100.0, 0.0, nan, 100.0, nan])
    missed = metrics.per_image(empty, one)  # nothing predicted, one object pixel
    assert _close(torch.cat([missed[k] for k in metrics.METRICS]), [0.0, nan, 0.0, 100.0, nan])


def test_hausdorff_surface_distance_of_two_known_point_sets():
    """A = {(1, 1), (1, 5)}, B = {(4, 1)} (isolated pixels are their own surface): d(A -> B) = max(3, 5) = 5,
    d(B -> A) = min(3, 5) = 3, so HSD = 5; with a pixel of 2 x 0.5 (rows x columns): d((1,5), (4,1)) =
    sqrt(6^2 + 2^2), d((1,1), (4,1)) = 6, so HSD = sqrt(40)."""
    a, b = _masks([(1, 1), (1, 5)])[0, 0].numpy(), _masks([(4, 1)])[0, 0].numpy()
    assert metrics.hausdorff_surface_distance(a, b) == pytest.approx(5.0)
    assert metrics.hausdorff_surface_distance(b, a) == pytest.approx(5.0)
    assert metrics.hausdorff_surface_distance(a, b, spacing=(2.0, 0.5)) == pytest.approx(math.sqrt(40))
    assert math.isnan(metrics.hausdorff_surface_distance(a, np.zeros_like(a)))


def test_surface_is_the_ring_of_a_square_and_counts_the_border():
    mask = np.zeros((5, 5), bool)
    mask[1:4, 1:4] = True
    ring = {(r, c) for r in range(1, 4) for c in range(1, 4)} - {(2, 2)}
    assert {tuple(p) for p in metrics.surface(mask)} == ring
    full = np.ones((3, 3), bool)  # touches the border everywhere but the centre
    assert {tuple(p) for p in metrics.surface(full)} == {(r, c) for r in range(3) for c in range(3)} - {(1, 1)}


def test_summary_averages_only_defined_values():
    values = {
        "DSC": torch.tensor([50.0, 100.0]),
        "HSD": torch.tensor([2.0, nan]),
        "TPR": torch.tensor([nan, nan]),
        "TNR": torch.tensor([90.0, 100.0]),
        "PPV": torch.tensor([25.0, 75.0]),
    }
    summary = metrics.summarise(values)
    assert summary["mean"] == {"DSC": 75.0, "HSD": 2.0, "TPR": None, "TNR": 95.0, "PPV": 50.0}
    assert summary["undefined"] == {"DSC": 0, "HSD": 1, "TPR": 2, "TNR": 0, "PPV": 0} and summary["images"] == 2


def test_soft_dice_loss_by_hand():
    """p = (0.5, 1, 0, 0), g = (1, 1, 0, 0): 1 - (2 * 1.5 + 1) / (1.5 + 2 + 1) = 1 - 4 / 4.5."""
    p, g = torch.tensor([0.5, 1.0, 0.0, 0.0]).view(1, 1, 2, 2), torch.tensor([1.0, 1.0, 0.0, 0.0]).view(1, 1, 2, 2)
    assert metrics.soft_dice_loss(p, g).item() == pytest.approx(1 - 4 / 4.5)


def test_window_iou_and_the_iou_matrix_by_hand():
    """z = 4: corners (0, 0) and (2, 2) overlap in 2 x 2 = 4 px of a 16 + 16 - 4 = 28 px union."""
    a = torch.tensor([[0, 0], [0, 0], [3, 3], [-1, -1]])
    b = torch.tensor([[2, 2], [0, 0], [9, 3], [1, 1]])
    assert _close(metrics.window_iou(a, b, 4), [1 / 7, 1.0, 0.0, nan])
    found = metrics.iou_matrix({"A": a, "B": b}, 4)
    assert found["methods"] == ["A", "B"] and found["images"] == [[3, 3], [3, 4]]
    assert found["matrix"][0] == [1.0, pytest.approx((1 / 7 + 1 + 0) / 3)] and found["matrix"][1][1] == 1.0


# --- Table 2's augmentations -----------------------------------------------------------------------------------


def _params(**kw):
    base = dict(angle=0.0, shift=(0.0, 0.0), scale=1.0, channel_shift=0.0, displacement=torch.zeros(2, 8, 8))
    return augment.AugmentParams(**(base | kw))


def _image_and_mask():
    x = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0))
    m = torch.zeros(1, 8, 8)
    m[0, 2:5, 1:4] = 1
    return x, m


def test_a_shift_moves_image_and_mask_by_whole_pixels():
    x, m = _image_and_mask()
    out_x, out_m = augment.apply(x, m, _params(shift=(2.0, 1.0)))  # 2 px right, 1 px down
    expected_x, expected_m = torch.zeros_like(x), torch.zeros_like(m)
    expected_x[:, 1:, 2:], expected_m[:, 1:, 2:] = x[:, :-1, :-2], m[:, :-1, :-2]
    assert torch.allclose(out_x, expected_x, atol=1e-5) and torch.equal(out_m, expected_m)


def test_rotation_turns_image_and_mask_together_and_the_mask_stays_binary():
    """torchvision's angle is clockwise: 90 degrees is torch.rot90 with k = -1 on a square image."""
    x, m = _image_and_mask()
    out_x, out_m = augment.apply(x, m, _params(angle=90.0))
    assert torch.allclose(out_x, torch.rot90(x, -1, (1, 2)), atol=1e-5) and torch.equal(
        out_m, torch.rot90(m, -1, (1, 2))
    )
    _, small = augment.apply(x, m, _params(angle=3.0, scale=1.02))
    assert set(small.unique().tolist()) <= {0.0, 1.0}


def test_scale_grows_a_square_about_the_centre():
    m = torch.zeros(1, 64, 64)
    m[0, 22:42, 22:42] = 1  # 20 x 20 about the centre
    _, out = augment.apply(torch.zeros(3, 64, 64), m, _params(scale=1.5, displacement=torch.zeros(2, 64, 64)))
    assert out.sum().item() == pytest.approx(30 * 30, rel=0.05)
    rows = out[0].any(1).nonzero().flatten()
    assert rows.min().item() == pytest.approx(17, abs=1) and rows.max().item() == pytest.approx(46, abs=1)


def test_an_elastic_field_of_one_pixel_samples_the_next_column():
    """Simard's deformation samples the input at x + d: a constant d = +1 px along x moves the picture left by 1."""
    x, m = _image_and_mask()
    field = torch.stack([torch.ones(8, 8), torch.zeros(8, 8)])
    out_x, out_m = augment.apply(x, m, _params(displacement=field))
    assert torch.allclose(out_x[:, :, :-1], x[:, :, 1:], atol=1e-5) and torch.equal(out_m[:, :, :-1], m[:, :, 1:])
    assert out_x[:, :, -1].abs().max() < 1e-6


def test_elastic_field_has_the_spread_alpha_and_sigma_give():
    """alpha x (uniform [-1, 1] noise blurred by a normalised Gaussian w): per pixel the standard deviation is
    alpha sqrt(1/3) sqrt(sum_ij (w_i w_j)^2) = alpha sqrt(1/3) sum_i w_i^2, away from the border."""
    sigma, alpha = augment.ELASTIC_SIGMA, augment.ELASTIC_ALPHA
    k = augment.gaussian_kernel_size(sigma)
    t = np.arange(k) - k // 2
    w = np.exp(-(t**2) / (2 * sigma**2))
    w /= w.sum()
    expected = alpha * math.sqrt(1 / 3) * (w**2).sum()
    g = torch.Generator().manual_seed(0)
    fields = torch.stack([augment.elastic_field((64, 64), alpha, sigma, g) for _ in range(60)])
    inner = fields[..., 20:44, 20:44]
    assert inner.std().item() == pytest.approx(expected, rel=0.08)
    assert expected == pytest.approx(1.22, abs=0.01)  # about 1.2 px at alpha = 30, sigma = 4


def test_channel_shift_adds_one_value_clipped_to_the_images_range():
    x = torch.tensor([0.2, 0.5, 0.9]).view(3, 1, 1)
    assert torch.allclose(augment.channel_shift(x, 0.17), torch.tensor([0.37, 0.67, 0.9]).view(3, 1, 1))
    assert torch.allclose(augment.channel_shift(x, -0.3), torch.tensor([0.2, 0.2, 0.6]).view(3, 1, 1))


def test_draws_cover_table2_ranges():
    g = torch.Generator().manual_seed(1)
    draws = [augment.draw((10, 20), g) for _ in range(400)]  # the shift is 3 % of 20 px along x, of 10 px along y
    for values, low, high in (
        ([d.angle for d in draws], -4.6, 4.6),
        ([d.shift[0] for d in draws], -0.6, 0.6),
        ([d.shift[1] for d in draws], -0.3, 0.3),
        ([d.scale for d in draws], 0.98, 1.02),
        ([d.channel_shift for d in draws], -0.17, 0.17),
    ):
        span = high - low
        assert low <= min(values) < low + 0.05 * span and high - 0.05 * span < max(values) <= high
    assert draws[0].displacement.shape == (2, 10, 20)  # a 10 px side takes at most a 19 px kernel


def test_augmented_copies_are_fixed_per_epoch_and_move_the_mask_with_the_image():
    m = torch.zeros(4, 1, 32, 32)
    m[:, :, 8:20, 10:24] = 1
    base = TensorDataset(m.repeat(1, 3, 1, 1), torch.zeros(4), m)  # the image is its mask
    data = augment.Augmented(base, seed=3)
    data.set_epoch(1)
    first, again = data[2], data[2]
    data.set_epoch(2)
    other = data[2]
    assert torch.equal(first[0], again[0]) and not torch.equal(first[0], other[0])
    for x, _, mask in (first, other):
        assert ((x[0] > 0.5) == (mask[0] > 0.5)).float().mean() > 0.97


# --- U-Net -----------------------------------------------------------------------------------------------------


def test_unet_blocks_and_output():
    net = UNet(3, width=4, dropout=0.3, bn_momentum=0.4)
    assert len(net.down) == 3 and len(net.up) == 3
    kinds = [type(layer).__name__ for layer in net.down[0]]
    assert kinds == ["Conv2d", "ReLU", "Dropout", "BatchNorm2d"] * 2  # dropout after each convolution, then batch norm
    assert net.down[0][2].p == 0.3 and net.down[0][3].momentum == 0.4
    assert [b[0].out_channels for b in (*net.down, net.bottleneck, *net.up)] == [4, 8, 16, 32, 16, 8, 4]
    out = net.eval()(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, 1, 32, 32) and 0 < out.min() and out.max() < 1


def test_unet_config_builds_and_refuses_a_side_it_cannot_pool():
    cfg = component("model", "unet")
    model = create_unet(cfg, 1, [0.5], [0.25], 64)
    assert isinstance(model, Segmenter) and model.net.down[0][0].in_channels == 1 and model.net.head.in_channels == 8
    with pytest.raises(RRXError, match=r"dataset.image_size=60: .* multiple of 8, e.g. dataset.image_size=56"):
        create_unet(cfg, 3, [0.5] * 3, [0.25] * 3, 60)


def test_unet_is_a_registered_model():
    from rrx.models import create_model, list_models

    cfg = component("model", "unet")
    assert "unet" in list_models()
    torch.manual_seed(0)
    registered = create_model(cfg, None, [0.5], [0.25], channels=1, image_size=64)
    torch.manual_seed(0)
    direct = create_unet(cfg, 1, [0.5], [0.25], 64)
    assert isinstance(registered, Segmenter)
    assert all(torch.equal(a, b) for a, b in zip(registered.state_dict().values(), direct.state_dict().values()))


# --- ADA for segmentation and the robustness set ------------------------------------------------------------------


class WeightedSum(torch.nn.Module):
    """A 'segmenter' whose output is ``weights`` x the first channel: the summed output's input gradient is
    ``weights`` on channel 0 and 0 elsewhere."""

    def __init__(self, weights: torch.Tensor):
        super().__init__()
        self.weights = weights

    def forward(self, x):
        return x[:, :1] * self.weights


def test_saliency_and_input_x_gradient_of_the_summed_foreground():
    weights = torch.rand(1, 1, 6, 6) - 0.5
    model, x = WeightedSum(weights), torch.rand(2, 3, 6, 6)
    assert torch.allclose(foreground_attribution(model, x, "saliency"), weights.abs()[:, 0].expand(2, 6, 6))
    assert torch.allclose(foreground_attribution(model, x, "input_x_gradient"), (x[:, 0] * weights[0, 0]).abs())


def test_grad_cam_of_the_summed_foreground_reads_the_bottleneck():
    """Grad-CAM by hand: the bottleneck's activations A and the gradient of sum(f(x)) with respect to them,
    channel weights = the gradient's spatial mean, ReLU of the weighted sum, bilinear upsampling."""
    torch.manual_seed(0)
    model = Segmenter(UNet(3, width=4, dropout=0.0), [0.5] * 3, [0.25] * 3).eval()
    x = torch.rand(2, 3, 32, 32)
    seen = []
    handle = model.net.bottleneck.register_forward_hook(lambda mod, args, out: seen.append(out))
    (grads,) = torch.autograd.grad(model(x).sum(), seen[0])
    handle.remove()
    cam = torch.relu((grads.mean((2, 3), keepdim=True) * seen[0]).sum(1, keepdim=True))
    cam = torch.nn.functional.interpolate(cam, size=(32, 32), mode="bilinear", align_corners=False)[:, 0]
    assert torch.allclose(foreground_attribution(model, x, "gradcam"), cam, atol=1e-6)
    assert ForegroundScore(model)(x).squeeze(1).tolist() == pytest.approx(model(x).sum((1, 2, 3)).tolist())


def test_ada_erases_the_most_important_window_outside_the_object():
    """Weight 5 on rows 0-2 x columns 0-2 (inside the object), 2 on rows 3-5 x columns 4-6 (context), 1 elsewhere:
    with z = 3 the window is the context block at (3, 4); an image whose object fills it gets none."""
    weights = torch.ones(1, 1, 8, 8)
    weights[..., 0:3, 0:3], weights[..., 3:6, 4:7] = 5, 2
    masks = torch.zeros(2, 1, 8, 8)
    masks[0, :, 0:3, 0:3] = 1
    masks[1] = 1
    data = TensorDataset(torch.rand(2, 3, 8, 8), torch.zeros(2), masks)
    corners = ada_windows(WeightedSum(weights), data, "saliency", 3, CPU)
    assert corners.tolist() == [[3, 4], [-1, -1]]
    ada = with_ada_images(data, data, corners, 3)
    assert len(ada) == 3  # the two originals and the one erased image
    x, _, m = ada[2]
    assert (x[:, 3:6, 4:7] == 0).all() and torch.equal(x[:, :3], data[0][0][:, :3]) and torch.equal(m, masks[0])


def test_the_robustness_set_erases_each_grid_position_once():
    """Alg. 2 with n = 6, z = 4: regions at (0, 0), (0, 4), (4, 0), (4, 4), the last three cut at the border."""
    assert robustness_corners(6, 6, 4).tolist() == [[0, 0], [0, 4], [4, 0], [4, 4]]
    x, m = torch.ones(2, 1, 6, 6), torch.rand(2, 1, 6, 6)
    erased, truth = robustness_batch(x, m, 4)
    assert erased.shape == (8, 1, 6, 6) and torch.equal(truth, m.repeat_interleave(4, 0))
    for k, (r, c) in enumerate([(0, 0), (0, 4), (4, 0), (4, 4)]):
        expected = torch.ones(1, 6, 6)
        expected[:, r : r + 4, c : c + 4] = 0
        assert torch.equal(erased[k], expected) and torch.equal(erased[4 + k], expected)


def test_a_window_larger_than_the_image_is_an_error():
    check_window("method.window", 64, 64)
    with pytest.raises(RRXError, match=r"method.window=65 is larger than the 64x64 images .*at most 64 pixels"):
        check_window("method.window", 65, 64)


# --- SCGM ------------------------------------------------------------------------------------------------------


def _scgm_cfg(root, **kw):
    return component("dataset", "scgm", **{"root": None if root is None else str(root), "image_size": 12, **kw})


def test_scgm_majority_vote_split_and_orientation(tmp_path):
    from rrx.segmentation.data import create_segmentation_data

    data = create_segmentation_data(_scgm_cfg(write_scgm(tmp_path)))  # through the dataset registry
    assert data.info["val_subjects"] == ["site2-sc01"] and len(data.info["train_subjects"]) == 4  # 20 % of 5 subjects
    assert (len(data.train), len(data.val), data.channels) == (12, 3, 1)
    expected = torch.zeros(12, 12)  # the 12 x 10 slice padded by one column each side
    expected[2:4, 4:6] = (
        1  # GM_MAJORITY: three of four raters; GM_MINORITY (two) and WHITE (label 2) are not grey matter
    )
    for x, _, m in (*[data.train[i] for i in range(12)], *[data.val[i] for i in range(3)]):
        assert torch.equal(m[0], expected)  # the flipped subject (site2-sc01) too: canonical axes
        assert x.min() == 0 and x.max() == 1 and torch.equal(x[0] == 1, expected.bool())  # image and mask line up
    assert torch.allclose(data.val_spacing, torch.tensor([[0.5, 0.5]] * 3, dtype=torch.float64))
    wider = create_segmentation_data(_scgm_cfg(tmp_path, image_size=24))
    assert wider.val_spacing[0].tolist() == [0.25, 0.25]


@pytest.mark.parametrize(
    "tissue, vote, regions",
    [("sc", 0.5, [GM_MAJORITY, WHITE]), ("wm", 0.5, [WHITE]), ("gm", 0.25, [GM_MAJORITY, GM_MINORITY])],
)
def test_scgm_tissues_and_vote(tmp_path, tissue, vote, regions):
    from rrx.data.scgm import load_scgm

    data = load_scgm(_scgm_cfg(write_scgm(tmp_path), tissue=tissue, vote=vote))
    expected = torch.zeros(12, 10)
    for rows, cols in regions:
        expected[rows, cols] = 1
    assert torch.equal(data.train[0][2][0, :, 1:11], expected)


def test_scgm_bad_roots_name_the_file(tmp_path):
    import nibabel as nib

    from rrx.data.scgm import load_scgm

    root = write_scgm(tmp_path / "a")
    (root / "site1-sc02-mask-r3.nii.gz").unlink()
    with pytest.raises(
        RRXError, match=r"missing mask .*site1-sc02-mask-r3.nii.gz of rater 3 for site1-sc02-image.nii.gz"
    ):
        load_scgm(_scgm_cfg(root))
    root = write_scgm(tmp_path / "b")
    nib.save(nib.Nifti1Image(np.zeros((12, 10, 2), np.uint8), np.eye(4)), str(root / "site4-sc01-mask-r2.nii.gz"))
    with pytest.raises(
        RRXError,
        match=r"mask .*site4-sc01-mask-r2.nii.gz has shape \(12, 10, 2\), its image "
        r"site4-sc01-image.nii.gz has shape \(12, 10, 3\)",
    ):
        load_scgm(_scgm_cfg(root))
    (tmp_path / "empty").mkdir()
    with pytest.raises(RRXError, match=r"holds no site<N>-sc<XX>-image.nii.gz"):
        load_scgm(_scgm_cfg(tmp_path / "empty"))
    (root / "site1-sc01-image.nii.gz").write_bytes(b"not a volume")
    with pytest.raises(RRXError, match=r"cannot read NIfTI file .*site1-sc01-image.nii.gz"):
        load_scgm(_scgm_cfg(root))
    with pytest.raises(RRXError, match="dataset=scgm needs dataset.root="):
        load_scgm(_scgm_cfg(None))


# --- configs, the task's errors, the protocol ----------------------------------------------------------------------


def _compose(*overrides):
    with initialize_config_module("rrx.conf", version_base="1.3"):
        return compose("train", overrides=list(overrides))


TINY = [
    "task=segmentation",
    "model.width=4",
    "dataset.image_size=32",
    "dataset.train_per_class=4",
    "dataset.val_per_class=2",
    "dataset.num_classes=3",
    "trainer.batch_size=4",
    "trainer.progress=false",
    "segmentation.robustness_window=16",
]
ADA = ["method=ada", "method.standard_epochs=1", "method.cycles=2", "method.ada_epochs=1", "method.window=8"]


def test_segmentation_configs_compose():
    cfg = _compose("task=segmentation")
    assert (cfg.task, cfg.model.name, cfg.optimizer._target_) == ("segmentation", "unet", "torch.optim.Adam")
    assert cfg.trainer.scheduler == "none" and cfg.segmentation.robustness_window == 8
    assert _compose().task == "classification" and "segmentation" not in _compose()
    cfg = _compose("experiment=thesis_ada_seg")
    assert (cfg.task, cfg.model.name, cfg.method.name, cfg.dataset.name, cfg.trainer.batch_size) == (
        "segmentation",
        "unet",
        "ada",
        "synthetic",
        16,
    )
    assert list(cfg.segmentation.attributions) == [
        "saliency",
        "input_x_gradient",
        "gradcam",
        "guided_backprop",
        "guided_gradcam",
    ]
    assert _compose("experiment=thesis_ada_seg", "dataset=scgm").dataset.tissue == "gm"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model=resnet18"], "task=segmentation needs a model that segments: model=resnet18 cannot; valid: model=unet"),
        (["method=rrr"], "task=segmentation trains with method=standard or method=ada; method=rrr cannot segment"),
        (
            ["dataset=cifar10"],
            "dataset=cifar10 has none to segment; valid: synthetic, in9, rival10, image_folder, scgm",
        ),
        (["method.rrda=true"], "method.rrda=true is for classification"),
        (["attack=fgsm"], "attack=fgsm is for classification"),
        ([*ADA, "method.window=40"], "method.window=40 is larger than the 32x32 images"),
        (["segmentation.robustness_window=33"], "segmentation.robustness_window=33 is larger than the 32x32 images"),
        (
            [*ADA, "segmentation.attributions=[gradcam,ipha]"],
            "segmentation.attributions=[gradcam,ipha]; known: saliency, input_x_gradient",
        ),
        (["segmentation.loss=l1"], "segmentation.loss=l1; known: dice, bce"),
        (["segmentation.threshold=1.0"], "segmentation.threshold=1: must be in (0, 1)"),
        (["challenge=mixed_rand"], "task=segmentation takes no challenge (a classifier's test)"),
        ([*ADA, "method.cycles=0"], "method.cycles=0: the segmentation protocol picks"),
        (["model.dropout=1.0"], r"model.dropout=1: must be in [0, 1)"),
        (["optimizer.lr=0.0"], "optimizer.lr=0: must be > 0"),
    ],
)
def test_what_cannot_segment_is_named(tmp_path, overrides, message):
    groups = [o.split("=")[0] for o in overrides if "." not in o.split("=")[0]]  # another model= or dataset=
    tiny = [o for o in TINY if o.split(".")[0] not in groups]
    with pytest.raises(RRXError) as err:
        train(_compose(*tiny, *overrides), tmp_path / "run")
    assert message in str(err.value)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_a_dataset_without_masks_is_named_for_segmentation(tmp_path):
    """The classification hint (a method and challenge without masks) does not apply to segmenting."""
    from fixtures.vision import write_image_folder

    write_image_folder(tmp_path / "data", masks=False)
    tiny = [o for o in TINY if not o.startswith(("dataset.train_per_class", "dataset.val_per_class"))]
    with pytest.raises(RRXError) as err:
        train(_compose(*tiny, "dataset=image_folder", f"dataset.root={tmp_path / 'data'}"), tmp_path / "run")
    assert "task=segmentation needs object masks and dataset image_folder has none" in str(err.value)
    assert "method=standard" not in str(err.value)


def test_ada_without_attributions_warns_that_only_the_plain_fork_trains(caplog):
    from rrx.tasks.segmentation import check_segmentation

    check_segmentation(_compose(*TINY, *ADA, "segmentation.attributions=[]"))
    assert "segmentation.attributions=[]: after the standard epochs only the plain fork" in caplog.text


def test_the_task_is_checked():
    from rrx.settings import check_globals

    cfg = _compose()
    cfg.task = "detection"
    with pytest.raises(RRXError, match="task=detection; known: classification, segmentation"):
        check_globals(cfg)


def test_the_segmentation_block_is_typed_and_takes_no_challenge():
    """segmentation.* is rrx.settings.SegmentationConfig: a key it lacks is one line; task=segmentation composes no
    challenge (its default is left out), so only a challenge=<name> given is refused."""
    from rrx.config import explain
    from rrx.settings import SegmentationConfig

    cfg = _compose("task=segmentation")
    assert OmegaConf.get_type(cfg.segmentation) is SegmentationConfig and "challenge" not in cfg
    assert "challenge" not in _compose("experiment=thesis_ada_seg")
    assert _compose("task=segmentation", "challenge=mixed_rand").challenge.variations == ["mixed_rand"]
    with pytest.raises(Exception) as err:
        _compose("task=segmentation", "segmentation.lam=1")
    assert explain(err.value).startswith("segmentation.lam: segmentation has no key 'lam'; its keys: loss, threshold")


def test_classification_refuses_segmentation_models_and_data(tmp_path):
    with pytest.raises(RRXError, match="model=unet segments images and cannot classify: use task=segmentation"):
        train(_compose("model=unet"), tmp_path / "a")
    with pytest.raises(RRXError, match="dataset=scgm is a segmentation dataset: use task=segmentation"):
        train(_compose("dataset=scgm"), tmp_path / "b")


@pytest.fixture(scope="module")
def ada_run(tmp_path_factory):
    """One tiny protocol: 1 standard epoch, then the plain fork and the five ADA forks, 2 cycles of 1 epoch."""
    folder = tmp_path_factory.mktemp("seg")
    cfg = _compose(*TINY, *ADA, f"dataset.cache_dir={folder / 'cache'}")
    return cfg, folder / "run", train(cfg, folder / "run")


def test_the_protocol_forks_once_and_records_each_fork(ada_run):
    cfg, folder, found = ada_run
    seg = found["segmentation"]
    assert found["run"]["task"] == "segmentation" and found["run"]["method"] == "ADA"
    assert list(seg["forks"]) == [
        "unet",
        "saliency",
        "input_x_gradient",
        "gradcam",
        "guided_backprop",
        "guided_gradcam",
    ]
    assert [h["epoch"] for h in seg["standard"]["history"]] == [1]
    for name, fork in seg["forks"].items():
        assert [h["epoch"] for h in fork["history"]] == [2, 3]  # its own epochs after the fork
        best = max(fork["history"], key=lambda h: h["validation"]["mean"]["DSC"])
        assert fork["best_epoch"] == best["epoch"] and fork["validation"] == best["validation"]
        assert fork["robustness"]["images"] == 6 * 4  # 6 validation images x (32 / 16)^2 positions
        sizes = [h["images"] for h in fork["history"]]
        if name == "unet":
            assert fork["ada_images"] is None and sizes == [24, 24]  # 12 originals + their augmented copies
        else:
            assert len(fork["ada_images"]) == 2 and sizes == [24 + n for n in fork["ada_images"]]
    iou = seg["iou"]
    assert iou["methods"] == ["Vanilla Gradient", "Input × Gradient", "Grad-CAM", "Guided Backprop", "Guided Grad-CAM"]
    matrix = np.array(iou["matrix"], dtype=float)
    assert np.allclose(np.diag(matrix), 1) and np.allclose(matrix, matrix.T) and ((0 <= matrix) & (matrix <= 1)).all()
    windows = {a: torch.tensor(w) for a, w in seg["first_cycle_windows"].items()}
    assert matrix[0, 2] == pytest.approx(
        np.nanmean(metrics.window_iou(windows["saliency"], windows["gradcam"], 8).numpy())
    )
    status = json.loads((folder / "status.json").read_text())
    assert (status["state"], status["epoch"], status["epochs"]) == ("finished", 13, 13)
    table = pd.read_csv(folder / "table3.csv")
    assert table["Model"].tolist()[:2] == ["U-Net", "U-Net + ADA (Vanilla Gradient)"]
    assert table["DSC"].tolist() == pytest.approx(
        [round(f["validation"]["mean"]["DSC"], 2) for f in seg["forks"].values()]
    )
    assert train(cfg, folder) == found  # a finished run is not trained again


def test_method_standard_trains_one_unet(tmp_path):
    found = train(
        _compose(*TINY, "trainer.epochs=2", "segmentation.augment=none", f"dataset.cache_dir={tmp_path / 'cache'}"),
        tmp_path / "run",
    )
    seg = found["segmentation"]
    assert found["run"]["method"] == "Standard" and list(seg["forks"]) == ["unet"] and seg["iou"] is None
    fork = seg["forks"]["unet"]
    assert [h["epoch"] for h in fork["history"]] == [1, 2] and [h["images"] for h in fork["history"]] == [12, 12]
    assert fork["label"] == "U-Net" and seg["standard"]["history"] == []


def test_forks_start_from_the_same_model(ada_run, tmp_path):
    """A fork's result does not depend on the others: the Grad-CAM fork alone gives the same numbers."""
    cfg, _, found = ada_run
    alone = train(
        _compose(
            *TINY,
            *ADA,
            f"dataset.cache_dir={Path(cfg.dataset.cache_dir)}",
            "segmentation.baseline=false",
            "segmentation.attributions=[gradcam]",
        ),
        tmp_path / "alone",
    )
    gradcam = _without_times(alone["segmentation"]["forks"])["gradcam"]
    assert gradcam == _without_times(found["segmentation"]["forks"])["gradcam"]
    assert alone["segmentation"]["iou"] is None


def test_report_writes_tables_3_and_4_and_figures_8_and_10(ada_run, tmp_path):
    from rrx.report.report import report

    _, folder, found = ada_run
    tables = report([str(folder)], tmp_path / "report")
    for name in ("table3_synthetic", "table4_synthetic", "iou_synthetic"):
        assert all((tmp_path / "report" / f"{name}.{ext}").is_file() for ext in ("csv", "md", "tex"))
    assert all((tmp_path / "report" / f"fig{name}_synthetic.png").is_file() for name in ("8_dice", "10_iou"))
    table4 = pd.read_csv(tmp_path / "report" / "table4_synthetic.csv")
    assert list(table4.columns) == ["Model", "DSC", "HSD", "TPR", "TNR", "PPV"]
    robust = found.sections["segmentation"]["forks"]["gradcam"]["robustness"]["mean"]
    row = table4.set_index("Model").loc["U-Net + ADA (Grad-CAM)"]
    expected = [nan if robust[k] is None else round(robust[k], 2) for k in metrics.METRICS]
    assert row.tolist() == pytest.approx(expected, nan_ok=True)
    text = (tmp_path / "report" / "report.md").read_text()
    assert "## Segmentation, dataset `synthetic` (1 runs)" in text and "fig10_iou_synthetic.png" in text
    assert any("Table 3" in title for title in tables)


def test_analyze_refuses_a_segmentation_checkpoint_and_it_holds_only_plain_values(ada_run):
    from rrx.checkpoint import load_checkpoint

    with pytest.raises(
        RRXError,
        match=r"is a task=segmentation run, and this command reads classifiers; score it again "
        r"with rrx evaluate",
    ):
        load_checkpoint(str(ada_run[1]))
    # its fork states are tensors and plain values too: it loads without unpickling code
    assert torch.load(ada_run[1] / "checkpoint.pt", weights_only=True)["task"] == "segmentation"


@pytest.mark.slow
def test_the_cli_names_what_cannot_segment(tmp_path):
    result = rrx("train", "task=segmentation", "model=resnet18", f"hydra.run.dir={tmp_path / 'run'}", check=False)
    one_line_error(result, "task=segmentation needs a model that segments", "valid: model=unet")
