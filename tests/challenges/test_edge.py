"""Edge removal (thesis 4.2.5) on a hand-made square mask."""

from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf
from torch.utils.data import TensorDataset

from rrx.challenges.edge import EdgeChallenge, edge_band, remove_edge
from rrx.runtime import Runtime


def _square(size=32, top=10, side=10):
    mask = torch.zeros(1, 1, size, size)
    mask[..., top : top + side, top : top + side] = 1
    return mask


@pytest.mark.parametrize(
    "width, outside, inside",
    [(2, 1, 1), (4, 2, 2), (5, 3, 2), (8, 4, 4), (1, 1, 0)],
)
def test_band_pixel_count_on_a_square(width, outside, inside):
    side = 10
    band = edge_band(_square(side=side), width)
    expected = (side + 2 * outside) ** 2 - (side - 2 * inside) ** 2
    assert band.sum().item() == expected
    assert set(band.unique().tolist()) <= {0.0, 1.0}


def test_band_straddles_the_boundary():
    band = edge_band(_square(), 4)[0, 0]  # 2 pixels out, 2 in
    column = band[:, 15].tolist()
    assert column[7:24] == [0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0]


def test_remove_edge_blacks_out_only_the_band():
    x = torch.rand(1, 3, 32, 32) + 0.1
    out = remove_edge(x, _square(), 6)
    band = edge_band(_square(), 6).expand_as(x).bool()
    assert (out[band] == 0).all()
    assert torch.equal(out[~band], x[~band])


class CentreModel(torch.nn.Module):
    """Predicts class 1 when the centre pixel (15, 15) is lit, else class 0."""

    def forward(self, x):
        lit = (x[:, 0, 15, 15] > 0).float()
        return torch.stack([1 - lit, lit], dim=1)


def test_edge_grid_accuracy():
    # The centre of the square 10..19 is 5 pixels from its top edge and 4 from its bottom edge:
    # it is blacked out once floor(W/2) >= 5, i.e. from W = 10 on.
    data = TensorDataset(torch.ones(3, 3, 32, 32), torch.ones(3, dtype=torch.long), _square().expand(3, 1, 32, 32))
    dataset = SimpleNamespace(variation_set=lambda variation, masks: data)
    runtime = Runtime(torch.device("cpu"), amp=False, batch_size=2, num_workers=0, progress=False)
    cfg = OmegaConf.create({"edge_variations": ["original"], "widths": [5, 9, 10, 20], "reference_size": None})
    assert EdgeChallenge(cfg).evaluate(CentreModel(), dataset, runtime) == {
        "edge": {"original": {"5": 1.0, "9": 1.0, "10": 0.0, "20": 0.0}},
        "edge_widths": {"5": 5, "9": 9, "10": 10, "20": 20},
    }


def test_widths_scale_from_the_reference_size():
    from rrx.challenges.edge import applied_width

    assert [applied_width(w, 64, 224) for w in (5, 10, 15, 50)] == [1, 3, 4, 14]  # round(W * 64 / 224), at least 1
    assert applied_width(5, 16, 224) == 1
    assert applied_width(50, 224, 224) == 50 and applied_width(7, 64, None) == 7


def test_the_challenge_blacks_out_the_applied_band():
    """A 16 x 16 object square in a 64 px image: nominal W=28 at reference 224 is an 8 px band of 4 * 16 * 8 pixels."""
    x = torch.ones(1, 3, 64, 64)
    mask = torch.zeros(1, 1, 64, 64)
    mask[:, :, 24:40, 24:40] = 1
    blacked = []

    class Recorder(torch.nn.Module):
        def forward(self, images):
            blacked.append(int((images[:, 0] == 0).sum()))
            return torch.zeros(len(images), 2)

    class OneImage:
        def variation_set(self, variation, masks=False):
            return TensorDataset(x, torch.tensor([0]), mask)

    cfg = OmegaConf.create({"edge_variations": ["original"], "widths": [28], "reference_size": 224})
    runtime = Runtime(torch.device("cpu"), amp=False, batch_size=4, num_workers=0, progress=False)
    results = EdgeChallenge(cfg).evaluate(Recorder(), OneImage(), runtime)
    assert results["edge_widths"] == {"28": 8}
    assert blacked == [4 * 16 * 8]
    assert results["edge"]["original"]["28"] == 1.0  # label 0, logits all zero: argmax 0


def test_all_bands_at_once_are_the_square_dilation_bands():
    """edge_bands (one pass of 3x3 dilations for every width) gives edge_band's band (one square max-pool of each
    radius) for every width, on random masks whose objects touch the image border, on an empty and a full mask."""
    from rrx.challenges.edge import dilation_levels, edge_bands

    generator = torch.Generator().manual_seed(0)
    masks = torch.cat(
        [(torch.rand(3, 1, 20, 17, generator=generator) > p).float() for p in (0.5, 0.9, 0.98)]
        + [torch.zeros(1, 1, 20, 17), torch.ones(1, 1, 20, 17)]
    )
    widths = [1, 2, 3, 4, 7, 10, 13]
    bands = edge_bands(masks, widths)
    for width in widths:
        assert torch.equal(bands[width], edge_band(masks, width)), width
    point = torch.zeros(1, 1, 7, 7)
    point[0, 0, 1, 2] = 1  # Chebyshev distance to (1, 2), capped at 3 + 1
    rows, cols = torch.meshgrid(torch.arange(7), torch.arange(7), indexing="ij")
    expected = torch.maximum((rows - 1).abs(), (cols - 2).abs()).clamp(max=4).float()
    assert torch.equal(dilation_levels(point, 3)[0, 0], expected)
