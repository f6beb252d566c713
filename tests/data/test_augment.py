"""Training augmentations that move the masks with the images (dataset.augment), against formulas."""

import math

import pytest
import torch

from rrx.data.augment import augment, crop_boxes, resized_crop
from rrx.errors import RRXError
from rrx.runtime import augment_settings


def test_a_resized_crop_samples_the_box_at_its_bin_centres():
    """Bilinear sampling reproduces a linear ramp exactly: output pixel (i, j) of box (x0, y0, x1, y1) resized to
    S x S is the ramp at x0 + (j + 1/2) (x1 - x0) / S - 1/2 (pixel centres at integers), and the same in y."""
    size = 16
    rows, cols = torch.meshgrid(
        torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64), indexing="ij"
    )
    x = torch.stack([cols, rows, 2 * cols + 3 * rows])[None].float()  # (1, 3, S, S), linear in both
    box = torch.tensor([[3.0, 2.5, 11.0, 12.5]])
    out = resized_crop(x, box)[0]
    centres = torch.arange(size, dtype=torch.float64) + 0.5
    want_col = 3.0 + centres * 8.0 / size - 0.5
    want_row = 2.5 + centres * 10.0 / size - 0.5
    assert torch.allclose(out[0], want_col[None, :].expand(size, size).float(), atol=1e-4)
    assert torch.allclose(out[1], want_row[:, None].expand(size, size).float(), atol=1e-4)
    assert torch.allclose(out[2], (2 * want_col[None, :] + 3 * want_row[:, None]).float(), atol=1e-4)


def test_boxes_have_the_drawn_area_and_ratio_inside_the_image_and_repeat_with_the_seed():
    size, scale, ratio = 64, (0.35, 1.0), (3 / 4, 4 / 3)
    boxes = crop_boxes(2000, size, scale, ratio, torch.Generator().manual_seed(1))
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= size + 1e-4).all()
    unclipped = (w < size) & (h < size)
    area = (w * h / size**2)[unclipped]
    assert area.min() >= scale[0] - 1e-5 and area.max() <= scale[1] + 1e-5
    aspect = (w / h)[unclipped]
    assert aspect.min() >= ratio[0] - 1e-4 and aspect.max() <= ratio[1] + 1e-4
    assert torch.equal(boxes, crop_boxes(2000, size, scale, ratio, torch.Generator().manual_seed(1)))


def test_masks_move_with_their_images():
    """An image that is its own mask stays its own mask: same boxes, same flips; about half the images flipped."""
    g = torch.Generator().manual_seed(0)
    mask = torch.zeros(64, 1, 32, 32)
    for k in range(64):
        top, left = k % 20, (3 * k) % 20
        mask[k, 0, top : top + 10, left : left + 6] = 1
    x = mask.repeat(1, 3, 1, 1)
    out, out_mask = augment(x, mask, g)
    assert set(out_mask.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal((out[:, :1] >= 0.5).float(), out_mask)
    assert not torch.equal(out, x)
    # flips: a crop-free image (scale 1, ratio 1) comes back itself or mirrored
    plain, plain_mask = augment(x, mask, torch.Generator().manual_seed(3), scale=(1.0, 1.0), ratio=(1.0, 1.0))
    same = [torch.allclose(plain[k], x[k], atol=1e-5) for k in range(64)]
    mirrored = [torch.allclose(plain[k], x[k].flip(-1), atol=1e-5) for k in range(64)]
    assert all(a or b for a, b in zip(same, mirrored)) and 16 <= sum(mirrored) <= 48
    assert torch.equal(plain_mask, (plain[:, :1] >= 0.5).float())


@pytest.mark.parametrize(
    "key, value",
    [("augment_scale", [0.0, 1.0]), ("augment_scale", [0.8, 0.5]), ("augment_ratio", [1.5]), ("augment_scale", None)],
)
def test_bad_augmentation_settings_name_the_key(key, value):
    dataset = {"augment": "crop_flip", "augment_scale": [0.35, 1.0], "augment_ratio": [0.75, 1.3333], key: value}
    from omegaconf import OmegaConf

    with pytest.raises(RRXError, match=f"dataset.{key}="):
        augment_settings(OmegaConf.create(dataset))


def test_training_with_augmentations_differs_and_repeats(compose_train, tmp_path):
    from rrx.train import train

    augmented = ["dataset.augment=crop_flip", "dataset.augment_scale=[0.5,1.0]", "dataset.augment_ratio=[0.75,1.3333]"]
    runs = [
        train(compose_train("method=rrda", "challenge=original", *extra), tmp_path / str(i))
        for i, extra in enumerate([[], augmented, augmented])
    ]
    losses = [r["train"]["epochs"][0]["loss"] for r in runs]
    assert losses[1] == losses[2] and not math.isclose(losses[0], losses[1])
