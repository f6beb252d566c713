"""Signal-to-noise ratio of attributions: against ratios computed by hand from a linear model's weights."""

import math

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from rrx.challenges.snr import SNRChallenge, SNRConfig, signal_to_noise
from rrx.errors import RRXError
from rrx.runtime import Runtime
from rrx.train import train

C, H, W, K = 3, 6, 6, 4


def _linear_model(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(C * H * W, K))
    return model.double()


def _batch(seed=1):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (5, C, H, W))
    y = rng.integers(0, K, 5)
    mask = np.zeros((5, 1, H, W))
    for i in range(5):  # a different rectangle per image
        mask[i, 0, i % 3 : i % 3 + 2 + i % 2, 1:4] = 1
    return x, y, mask


def _expected_ratio(a: np.ndarray, m: np.ndarray) -> float:
    """a: (C, H, W) attribution, m: (H, W) mask -> mean over object / mean over context of sum_c |a|."""
    per_pixel = np.abs(a).sum(0)
    return per_pixel[m == 1].mean() / per_pixel[m == 0].mean()


class FakeDataset:
    mean = [0.0, 0.0, 0.0]

    def __init__(self, x, y, mask):
        self.data = TensorDataset(torch.tensor(x), torch.tensor(y), torch.tensor(mask))

    def variation_set(self, variation, masks=False):
        assert variation == "original" and masks
        return self.data


def _challenge(attribution, **kw):
    return SNRChallenge(SNRConfig(**(dict(attribution=attribution, ig_steps=8) | kw)))


RUNTIME = Runtime(torch.device("cpu"), amp=False, batch_size=2, num_workers=0, progress=False)


def test_saliency_ratio_of_a_linear_model_equals_the_weight_ratio():
    model = _linear_model()
    x, y, mask = _batch()
    weights = model[1].weight.detach().numpy().reshape(K, C, H, W)
    expected = [_expected_ratio(weights[y[i]], mask[i, 0]) for i in range(len(y))]  # d logit_y / dx = w_y
    result = _challenge("saliency").evaluate(model, FakeDataset(x, y, mask), RUNTIME)["snr"]["saliency"]
    np.testing.assert_allclose(result["per_image"], expected, rtol=1e-6)  # the ratio is taken in float32
    assert result["median"] == pytest.approx(np.median(expected))
    assert result["undefined"] == 0


def test_integrated_gradients_of_a_linear_model_is_input_times_weight():
    model = _linear_model()
    x, y, mask = _batch()
    weights = model[1].weight.detach().numpy().reshape(K, C, H, W)
    expected = [
        _expected_ratio(x[i] * weights[y[i]], mask[i, 0]) for i in range(len(y))
    ]  # black baseline: (x - 0) * w_y
    result = _challenge(["integrated_gradients"]).evaluate(model, FakeDataset(x, y, mask), RUNTIME)["snr"]
    np.testing.assert_allclose(result["integrated_gradients"]["per_image"], expected, rtol=1e-6)


def test_mean_baseline_integrates_from_the_mean_colour():
    model = _linear_model()
    x, y, mask = _batch()
    weights = model[1].weight.detach().numpy().reshape(K, C, H, W)
    mean = np.array([0.2, 0.5, 0.7])[:, None, None]
    expected = [_expected_ratio((x[i] - mean) * weights[y[i]], mask[i, 0]) for i in range(len(y))]
    data = FakeDataset(x, y, mask)
    data.mean = [0.2, 0.5, 0.7]
    result = _challenge("integrated_gradients", ig_baseline="mean").evaluate(model, data, RUNTIME)["snr"]
    np.testing.assert_allclose(result["integrated_gradients"]["per_image"], expected, rtol=1e-6)


def test_undefined_ratios_are_nan():
    maps = torch.ones(3, 4, 4)
    mask = torch.zeros(3, 1, 4, 4)
    mask[1] = 1  # all object: no context
    mask[2, :, :2] = 1
    maps[2, 2:] = 0  # context attribution 0
    snr = signal_to_noise(maps, mask)
    assert math.isnan(snr[0]) and math.isnan(snr[1]) and math.isnan(snr[2])
    mask[2, :, 2:] = 0
    maps[2, 2:] = 0.5
    assert signal_to_noise(maps, mask)[2] == pytest.approx(2.0)


def test_unknown_attribution_is_named():
    with pytest.raises(RRXError, match="challenge.attribution=gradcam.*saliency"):
        _challenge("gradcam")


@pytest.mark.parametrize("model", ["small_cnn", "vit_test"])
def test_snr_challenge_runs_on_a_cnn_and_a_vit(compose_train, tmp_path, model):
    overrides = ["model=vit_test", "dataset.image_size=32"] if model == "vit_test" else []
    cfg = compose_train(*overrides, "challenge=snr", "challenge.ig_steps=4", "challenge.snr_max_images=10")
    snr = train(cfg, tmp_path)["challenges"]["snr"]
    for name in ("saliency", "integrated_gradients"):
        assert len(snr[name]["per_image"]) + snr[name]["undefined"] == 10
        assert snr[name]["median"] > 0
