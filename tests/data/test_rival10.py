"""RIVAL10 loading and its generated variations, on a fixture in the published layout."""

import numpy as np
import pytest
import torch
from fixtures.rival10 import BG, COLOURS, write_rival10
from hydra import compose, initialize_config_module

from rrx.config import check
from rrx.data import create_dataset
from rrx.errors import RRXError

S = 48  # image_size: 96x80 images and masks are resized together to 48x48
ROWS, COLS = slice(12, 30), slice(15, 35)  # the object rows 20..50 and cols 30..70, scaled
TOL = 8 / 255  # JPEG noise next to the object


def _rival(root, *overrides):
    with initialize_config_module("rrx.conf", version_base="1.3"):
        cfg = compose(
            "train", overrides=["dataset=rival10", f"dataset.root={root}", f"dataset.image_size={S}", *overrides]
        )
    check(cfg)  # ranges and choices, as the command line checks them
    return create_dataset(cfg.dataset)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_rival10(tmp_path_factory.mktemp("rival"))


def _expected_mask():
    m = torch.zeros(1, S, S)
    m[0, ROWS, COLS] = 1
    return m


def _away_from_edge(inside: bool):
    """(S, S) pixels at least 2 from the object boundary (resizing blends the edge), inside or outside it."""
    m = _expected_mask()
    region = m if inside else 1 - m
    shrunk = 1 - torch.nn.functional.max_pool2d(1 - region[None], 5, stride=1, padding=2)[0]
    return shrunk[0].bool()


def _colour(k):
    return torch.tensor(COLOURS[k], dtype=torch.float32).view(3, 1) / 255


def test_labels_from_meta_and_side_files_ignored(root):
    train = _rival(root).train_set(masks=True)
    assert len(train) == 20  # the _merged_mask.JPEG files are not images
    labels = [train[i][1] for i in range(20)]
    assert labels == [k for k in range(10) for _ in range(2)]


def test_image_and_mask_resized_together(root):
    x, y, m = _rival(root).train_set(masks=True)[6]
    assert x.shape == (3, S, S) and torch.equal(m, _expected_mask())
    assert torch.allclose(x[:, 20, 25], _colour(y).flatten(), atol=TOL)  # inside the object
    assert torch.allclose(x[:, 5, 5], torch.full((3,), BG[0] / 255), atol=TOL)


def test_only_and_no_fg(root):
    data = _rival(root)
    inside, outside = _expected_mask().bool().expand(3, S, S), ~_expected_mask().bool().expand(3, S, S)
    x, y = data.variation_set("only_fg")[4]
    assert (x[outside] == 0).all() and torch.allclose(x[:, 20, 25], _colour(y).flatten(), atol=TOL)
    x, _ = data.variation_set("no_fg")[4]
    assert (x[inside] == 0).all() and (x[outside] > 0).all()


def test_only_bg_t_fills_the_box_with_background(root):
    x, _ = _rival(root).variation_set("only_bg_t")[1]  # image 1 of class 0: background BG[1]
    box = torch.zeros(S, S, dtype=torch.bool)
    box[ROWS, COLS] = True
    assert torch.allclose(x[:, box], torch.full((3, int(box.sum())), BG[1] / 255), atol=TOL)  # the filled box
    outside = _away_from_edge(inside=False)
    assert torch.allclose(x[:, outside], torch.full((3, int(outside.sum())), BG[1] / 255), atol=TOL)
    x, _ = _rival(root).variation_set("only_bg_b")[1]
    assert (x[:, ROWS, COLS] == 0).all()


@pytest.mark.parametrize("fill", ["tile", "black"])
def test_mixed_variations_follow_the_in9_rules(root, fill):
    data = _rival(root, f"dataset.fill={fill}")
    inside, outside = _away_from_edge(inside=True), _away_from_edge(inside=False)
    for variation in ("mixed_same", "mixed_rand", "mixed_next"):
        dataset = data.variation_set(variation, masks=True)
        for index in range(20):
            x, y, m = dataset[index]
            assert torch.equal(m, _expected_mask())
            assert torch.allclose(x[:, inside], _colour(y).expand(3, int(inside.sum())), atol=TOL)
            j = int(dataset.partners[index])
            bg_label, bg_grey = int(dataset.split.labels[j]), BG[j % 2]
            assert j != index
            if variation == "mixed_same":
                assert bg_label == y
            if variation == "mixed_next":
                assert bg_label == (y + 1) % 10
            # Every image has its object in the same place, so the partner's hole is exactly under ours.
            assert torch.allclose(x[:, outside], torch.full((3, int(outside.sum())), bg_grey / 255), atol=TOL)


def test_pairing_is_deterministic_from_the_seed(root):
    a = _rival(root).variation_set("mixed_rand").partners
    b = _rival(root).variation_set("mixed_rand").partners
    c = _rival(root, "dataset.seed=1").variation_set("mixed_rand").partners
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_missing_meta_is_named(tmp_path):
    root = write_rival10(tmp_path, meta=False)
    with pytest.raises(RRXError, match="RIVAL10 meta not found: .*wnid_to_class.json"):
        _rival(root)


def test_missing_mask_error_and_skip(tmp_path, caplog):
    root = write_rival10(tmp_path)
    (root / "test" / "entire_object_masks" / "n03000000_1.JPEG").unlink()
    with pytest.raises(RRXError, match="no mask for image .*n03000000_1.JPEG"):
        _rival(root).variation_set("original")[7]
    caplog.set_level("INFO")
    data = _rival(root, "dataset.on_bad_sample=skip").variation_set("original")
    assert len(data) == 19 and "skipped: no mask for image" in caplog.text and "1 skipped" in caplog.text


def test_wrong_layout(tmp_path):
    (tmp_path / "RIVAL10" / "meta").mkdir(parents=True)
    with pytest.raises(RRXError, match="RIVAL10 meta not found"):
        _rival(tmp_path / "RIVAL10")
    with pytest.raises(RRXError, match="does not exist"):
        _rival(tmp_path / "nope")


def test_a_mixed_images_background_class_is_its_partners(root):
    dataset = _rival(root)
    for variation in ("mixed_same", "mixed_next", "mixed_rand", "original"):
        data = dataset.variation_set(variation)
        info = dataset.image_info(variation, data)
        labels = [dataset.classes[y] for _, y in data]
        assert info["image"][0].startswith("test/ordinary/") and len(info["image"]) == len(labels)
        if variation == "mixed_same":  # a background of the object's own class (IN-9's rule)
            assert info["background_class"] == labels
        elif variation == "mixed_next":  # of the next class, (y + 1) mod K
            nxt = [dataset.classes[(dataset.classes.index(c) + 1) % 10] for c in labels]
            assert info["background_class"] == nxt
        elif variation == "mixed_rand":
            assert None not in info["background_class"] and info["background_class"] != labels
        else:
            assert info["background_class"] == [None] * len(labels)
