"""The IN-9 layout loader on a fixture written by the test in the real on-disk layout."""

import numpy as np
import pytest
import torch
from PIL import Image

from rrx.data.in9 import IN9Folder, foreground_stem
from rrx.errors import RRXError

CLASSES = ["00_dog", "01_bird", "02_wheeled vehicle"]


@pytest.fixture
def root(tmp_path):
    """bg_challenge/{original,mixed_rand,fg_mask}/val with 2 images per class; image i is uniform grey 10*label+i."""
    base = tmp_path / "bg_challenge"
    for label, name in enumerate(CLASSES):
        for i in range(2):
            stem = f"n0{label}_{i}"
            value = 10 * label + i
            for variation, fname in [("original", f"{stem}.JPEG"), ("mixed_rand", f"fg_{stem}_bg_n09_{i}.JPEG")]:
                folder = base / variation / "val" / name
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(folder / fname, quality=100)
            mask = np.zeros((8, 8), np.uint8)
            mask[: label + 1] = 1  # label+1 object rows
            (base / "fg_mask" / "val" / name).mkdir(parents=True, exist_ok=True)
            np.save(base / "fg_mask" / "val" / name / f"{stem}.npy", mask)
    return base


def test_labels_follow_sorted_class_folders_with_spaces(root):
    data = IN9Folder(root, "original", "val", image_size=8)
    assert data.classes == CLASSES
    assert [y for _, y in data.samples] == [0, 0, 1, 1, 2, 2]
    x, y = data[5]
    assert y == 2 and x.shape == (3, 8, 8)
    assert torch.allclose(x, torch.full_like(x, 21 / 255), atol=1.5 / 255)


def test_masks_of_mixed_images_come_from_their_foreground(root):
    data = IN9Folder(root, "mixed_rand", "val", image_size=8, masks=True)
    for index in range(len(data)):
        _, y, m = data[index]
        assert m.shape == (1, 8, 8)
        assert m.sum().item() == 8 * (y + 1)


def test_resize_keeps_masks_binary(root):
    _, _, m = IN9Folder(root, "original", "val", image_size=16, masks=True)[2]
    assert set(m.unique().tolist()) == {0.0, 1.0}
    assert m.sum().item() == 4 * 8 * 2  # two object rows -> four rows at twice the size


def test_foreground_stem():
    assert foreground_stem("fg_n01_5_bg_n07_9.JPEG") == "n01_5"
    assert foreground_stem("n01_5.JPEG") == "n01_5"


def test_missing_variation_names_the_folder(root):
    with pytest.raises(RRXError, match=r"missing folder .*mixed_same/val"):
        IN9Folder(root, "mixed_same", "val", image_size=8)


def test_missing_root(tmp_path):
    with pytest.raises(RRXError, match="does not exist"):
        IN9Folder(tmp_path / "nope", "original", "val", image_size=8)


def test_mask_of_wrong_size_names_the_file(root):
    bad = root / "fg_mask" / "val" / "01_bird" / "n01_0.npy"
    np.save(bad, np.zeros((4, 4), np.uint8))
    data = IN9Folder(root, "original", "val", image_size=8, masks=True)
    with pytest.raises(RRXError, match=r"n01_0\.npy has size \(4, 4\)"):
        data[2]


def test_missing_mask_names_the_file(root):
    (root / "fg_mask" / "val" / "00_dog" / "n00_1.npy").unlink()
    with pytest.raises(RRXError, match=r"no mask for image .*n00_1\.JPEG"):
        IN9Folder(root, "original", "val", image_size=8, masks=True)[1]


def test_corrupt_image_names_the_file(root):
    (root / "original" / "val" / "00_dog" / "n00_0.JPEG").write_bytes(b"not a jpeg")
    with pytest.raises(RRXError, match=r"cannot read image .*n00_0\.JPEG"):
        IN9Folder(root, "original", "val", image_size=8)[0]
