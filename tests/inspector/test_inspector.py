"""The Model Inspector's library (rrx.inspector): every transform, mask and view against values computed here."""

import io
import json
import math
import os
import socket

import numpy as np
import pytest
import torch
from conftest import TINY, Marker
from fixtures.runner import one_line_error, rrx
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from PIL import Image

from rrx.attributions import attribution_map
from rrx.errors import RRXError
from rrx.inspector import images, masks, transforms, views
from rrx.inspector.model import (
    UNLOADABLE,
    Inspected,
    checkpoint_roots,
    class_names,
    open_inspected,
    open_page_checkpoint,
    page_checkpoint,
    with_checkpoint,
)
from rrx.inspector.saving import save_view
from rrx.inspector.server import check_port, is_loopback
from rrx.models import create_model
from rrx.train import train

CLASSES = [f"c{k}" for k in range(5)]


@pytest.fixture(scope="module")
def inspected():
    torch.manual_seed(0)
    model = create_model(OmegaConf.create({"name": "small_cnn", "width": 4}), 5, [0.5] * 3, [0.25] * 3).eval()
    return Inspected(model, CLASSES, 32, None, "tiny")


@pytest.fixture
def x():
    return torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(1))


def softmax(model, batch):
    with torch.no_grad():
        return torch.softmax(model(batch).double(), 1)


# --- transforms (thesis 7.3.1) ---------------------------------------------------------------------------------


def blocks_of(t, bh, bw):
    """Every bh x bw block of t (C, H, W) in row-major order, by loops."""
    return [
        t[:, i : i + bh, j : j + bw]
        for i in range(0, t.shape[1] - bh + 1, bh)
        for j in range(0, t.shape[2] - bw + 1, bw)
    ]


@pytest.mark.parametrize(
    "name, bh, bw", [("patch_shuffle", 8, 8), ("horizontal_shuffle", 4, 32), ("vertical_shuffle", 32, 8)]
)
def test_structure_transforms_permute_blocks(x, name, bh, bw):
    value = bh if name != "vertical_shuffle" else bw
    out = transforms.apply_transform(name, x, value, seed=3)
    before, after = blocks_of(x, bh, bw), blocks_of(out, bh, bw)
    # the same multiset of blocks, and block k of the output is block order[k] of the input
    order = torch.randperm(len(before), generator=torch.Generator().manual_seed(3)).tolist()
    assert sorted(order) == list(range(len(before))) and order != list(range(len(before)))
    for k, source in enumerate(order):
        assert torch.equal(after[k], before[source])
    assert torch.equal(out, transforms.apply_transform(name, x, value, seed=3))  # the same seed: the same permutation
    assert not torch.equal(out, transforms.apply_transform(name, x, value, seed=4))


def test_patch_shuffle_keeps_the_border_a_patch_does_not_fill(x):
    out = transforms.apply_transform("patch_shuffle", x, 10, seed=0)  # 3 x 3 patches of 10 px, 2 px left over
    assert torch.equal(out[:, 30:, :], x[:, 30:, :]) and torch.equal(out[:, :, 30:], x[:, :, 30:])
    flat = lambda t: sorted(tuple(b.flatten().tolist()) for b in blocks_of(t[:, :30, :30], 10, 10))  # noqa: E731
    assert flat(out) == flat(x) and not torch.equal(out, x)


def test_gaussian_and_speckle_noise_statistics():
    x = torch.full((3, 128, 128), 0.5)
    n = x.numel()
    noise = transforms.apply_transform("gaussian_noise", x, 0.1, seed=0) - x
    assert abs(noise.mean()) < 4 * 0.1 / math.sqrt(n) and abs(noise.std() - 0.1) < 0.005
    speckle = transforms.apply_transform("speckle_noise", x, 0.2, seed=0) - x  # x * N(0, 0.2^2): std 0.1
    assert abs(speckle.mean()) < 4 * 0.1 / math.sqrt(n) and abs(speckle.std() - 0.1) < 0.005
    assert torch.equal(
        transforms.apply_transform("speckle_noise", torch.zeros(3, 8, 8), 1.0, seed=0), torch.zeros(3, 8, 8)
    )
    assert torch.equal(transforms.apply_transform("gaussian_noise", x, 0.0, seed=0), x)
    bright = transforms.apply_transform("gaussian_noise", torch.ones(3, 16, 16), 0.5, seed=0)
    assert bright.max() == 1 and bright.min() >= 0  # clamped to the model's range


def test_shot_noise_counts_photons():
    x = torch.full((3, 128, 128), 0.5)
    out = transforms.apply_transform("shot_noise", x, 20, seed=0)
    counts = out * 20  # Poisson(0.5 * 20) counts (none reaches the clamp at 20 photons in practice)
    assert torch.allclose(counts, counts.round(), atol=1e-4)
    assert abs(out.mean() - 0.5) < 0.005 and abs(out.var() - 0.5 / 20) < 0.002  # mean x, variance x / photons


def test_impulse_noise_salt_and_pepper():
    x = torch.full((3, 128, 128), 0.5)
    out = transforms.apply_transform("impulse_noise", x, 0.3, seed=0)
    replaced = out != 0.5
    assert set(out[replaced].unique().tolist()) == {0.0, 1.0}
    assert abs(replaced.float().mean() - 0.3) < 0.01 and abs(out[replaced].mean() - 0.5) < 0.02


def test_transform_checks_its_parameter(x):
    with pytest.raises(RRXError, match="sigma=2.0 is out of range; give 0 .. 1"):
        transforms.apply_transform("gaussian_noise", x, 2.0, seed=0)
    with pytest.raises(RRXError, match="patch size=40 is out of range; give 1 .. 32"):
        transforms.apply_transform("patch_shuffle", x, 40, seed=0)
    with pytest.raises(RRXError, match="transform=blur; known"):
        transforms.apply_transform("blur", x, 1, seed=0)
    assert transforms.default_value("patch_shuffle", 224) == 56 and transforms.default_value("shot_noise", 224) == 25


# --- masks (thesis 7.3.3) --------------------------------------------------------------------------------------


def test_rectangle_circle_polygon_masks_counted_by_hand():
    rect = masks.rectangle_mask(10, 10, 2, 3, 6, 8)  # centres x in [2, 6]: columns 2..5; y in [3, 8]: rows 3..7
    expected = torch.zeros(10, 10)
    expected[3:8, 2:6] = 1
    assert torch.equal(rect, expected)
    circle = masks.circle_mask(10, 10, 5, 5, 2)  # centre offsets (0.5, 0.5) x 4 and (0.5, 1.5) x 8 lie within 2
    assert circle.sum() == 12 and circle[4:6, 3:7].sum() == 8 and circle[0].sum() == 0
    triangle = masks.polygon_mask(8, 8, [(0, 0), (8.5, 0), (0, 8.5)])  # centres with x + y < 8.5: row + col <= 7
    rows, cols = torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij")
    assert torch.equal(triangle, (rows + cols <= 7).float()) and triangle.sum() == 36


def test_bad_selections_are_messages():
    with pytest.raises(RRXError, match="a polygon needs at least 3 points, got 2"):
        masks.polygon_mask(8, 8, [(0, 0), (4, 4)])
    with pytest.raises(RRXError, match="a polygon needs at least 3 points, got 2"):
        masks.parse_shape("polygon", "1 1, 5 5")
    with pytest.raises(RRXError, match="__import__\\('os'\\)\"? is not a number"):
        masks.parse_shape("rectangle", "__import__('os') 1 2 3")
    with pytest.raises(RRXError, match="3 numbers; give 4 numbers"):
        masks.parse_shape("rectangle", "1 2 3")
    with pytest.raises(RRXError, match="no pixel centre"):
        masks.shape_mask([masks.parse_shape("rectangle", "1.1 1.1 1.2 1.2")], 8, 8)
    with pytest.raises(RRXError, match="whole image"):
        masks.shape_mask([masks.parse_shape("rectangle", "0 0 8 8")], 8, 8)
    with pytest.raises(RRXError, match="no signal selected"):
        masks.shape_mask([], 8, 8)
    assert masks.parse_shape("circle", "4, 4; 2.5") == masks.Shape("circle", ((4.0, 4.0), (2.5, 2.5)))


def test_canvas_objects_in_image_pixels():
    # Fabric places the stroke-inclusive box's origin at (left, top); the drawn rectangle is inside the stroke
    rect = {
        "type": "rect",
        "left": 10,
        "top": 20,
        "width": 40,
        "height": 30,
        "strokeWidth": 2,
        "stroke": "#f00",
        "strokeUniform": True,
        "originX": "left",
        "originY": "top",
        "angle": 0,
        "scaleX": 1,
        "scaleY": 1,
    }
    assert masks.fabric_shape(rect, 2.0) == masks.Shape("rectangle", ((5.5, 10.5), (25.5, 25.5)))
    # turned about (left, top) by 90 degrees: the box (42 x 32 with the stroke) hangs left of x = 10, below y = 20
    turned = masks.fabric_shape({**rect, "angle": 90}, 1.0)
    assert turned.kind == "rectangle" and np.allclose(turned.points, [(-21, 21), (9, 61)])
    tilted = masks.fabric_shape({**rect, "angle": 30}, 1.0)  # a polygon centred at (left, top) + R(30) (21, 16)
    cos, sin = math.cos(math.pi / 6), math.sin(math.pi / 6)
    assert tilted.kind == "polygon" and np.allclose(
        np.mean(tilted.points, 0), (10 + 21 * cos - 16 * sin, 20 + 21 * sin + 16 * cos)
    )
    assert np.allclose(math.dist(tilted.points[0], tilted.points[1]), 40)
    circle = {
        "type": "circle",
        "left": 10,
        "top": 50,
        "radius": 20,
        "strokeWidth": 2,
        "stroke": "#f00",
        "originX": "left",
        "originY": "center",
        "angle": 0,
        "scaleX": 1,
        "scaleY": 1,
    }
    assert masks.fabric_shape(circle, 1.0) == masks.Shape("circle", ((31.0, 50.0), (20.0, 20.0)))
    down = masks.fabric_shape({**circle, "angle": 90}, 1.0)  # dragged downwards: the centre is below the start
    assert np.allclose(down.points, [(10, 71), (20, 20)])
    points = [{"x": 10, "y": 10}, {"x": 50, "y": 10}, {"x": 30, "y": 40}]
    polygon = {
        "type": "Polygon",
        "points": points,
        "left": 9,
        "top": 9,
        "width": 40,
        "height": 30,
        "strokeWidth": 2,
        "stroke": "#f00",
        "angle": 0,
        "scaleX": 1,
        "scaleY": 1,
    }
    assert np.allclose(masks.fabric_shape(polygon, 2.0).points, [(5, 5), (25, 5), (15, 20)])
    with pytest.raises(RRXError, match="canvas object path: draw a rectangle, circle or polygon"):
        masks.canvas_shapes({"objects": [{"type": "path", "left": 0, "top": 0}]}, 1.0)


# --- images ----------------------------------------------------------------------------------------------------


def encoded(image, fmt="PNG"):
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def test_uploads_of_any_mode_become_rgb():
    rgb = Image.fromarray(np.arange(40 * 48 * 3, dtype=np.uint8).reshape(40, 48, 3))
    x, notes = images.load_image(encoded(rgb), 32)
    assert x.shape == (3, 32, 32) and notes == ["resized from 48 x 40 to 32 x 32 px (shorter side, centre crop)"]
    gray, notes = images.load_image(encoded(Image.new("L", (32, 32), 51)), 32)
    assert torch.allclose(gray, torch.full((3, 32, 32), 0.2)) and "grayscale" in notes[0]
    clear = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    clear.putpixel((0, 0), (255, 0, 0, 255))
    white, notes = images.load_image(encoded(clear), 32)
    assert white[:, 0, 0].tolist() == [1, 0, 0] and white[:, 5, 5].tolist() == [1, 1, 1] and "on white" in notes[0]
    cmyk, notes = images.load_image(encoded(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG"), 32)
    assert cmyk[0].mean() > 0.9 and cmyk[1].mean() < 0.1 and notes == ["CMYK converted to RGB"]
    deep, notes = images.load_image(encoded(Image.new("I;16", (32, 32), 65535)), 32)
    assert torch.equal(deep, torch.ones(3, 32, 32)) and "8 bits" in notes[0]


def test_bad_uploads_are_messages(monkeypatch):
    with pytest.raises(RRXError, match="notes.txt is not an image"):
        images.load_image(b"just some text", 32, "notes.txt")
    monkeypatch.setattr(images, "MAX_PIXELS", 1000)
    with pytest.raises(RRXError, match="is 40 x 40 px .* scale it down first"):
        images.load_image(encoded(Image.new("RGB", (40, 40))), 32)


def test_a_10k_by_10k_photo_is_read():
    x, notes = images.load_image(encoded(Image.new("L", (10_000, 10_000), 128), "JPEG"), 224)
    assert x.shape == (3, 224, 224) and "resized from 10000 x 10000" in notes[-1]


# --- views -----------------------------------------------------------------------------------------------------


def test_top_k_and_class_checks():
    probs = torch.tensor([0.1, 0.4, 0.1, 0.3, 0.1], dtype=torch.float64)
    assert [r["index"] for r in views.top_k(probs, CLASSES, 3)] == [1, 3, 0]
    with pytest.raises(RRXError, match="class index 5 is out of range: the model has 5 classes, 0 .. 4"):
        views.check_class(5, CLASSES)
    with pytest.raises(RRXError, match="class index -1 is out of range"):
        views.check_class(-1, CLASSES)
    assert class_names(1000, None)[:2] == ["tench", "goldfish"] and class_names(3, None) == [
        "class 0",
        "class 1",
        "class 2",
    ]


def test_transform_view_numbers_are_the_models(inspected, x):
    view, transformed = views.transform_view(inspected, x, "gaussian_noise", 0.2, seed=7, k=5)
    assert torch.equal(transformed, transforms.gaussian_noise(x, 0.2, torch.Generator().manual_seed(7)))
    expected = softmax(inspected.model, torch.stack([x, transformed]))
    for row, probs in zip(("original", "transformed"), expected):
        shown = {r["index"]: r["probability"] for r in view.numbers[row]}
        assert shown == pytest.approx({k: float(probs[k]) for k in range(5)}, abs=1e-12)
    assert view.numbers["original"] != view.numbers["transformed"]


def test_attribution_and_u_views(inspected, x):
    view, heat = views.attribution_view(inspected, x, "saliency")
    predicted = int(softmax(inspected.model, x[None]).argmax())
    assert view.numbers["target"] == predicted and view.numbers["target_from"] == "predicted"
    assert torch.allclose(heat, attribution_map(inspected.model, x[None], torch.tensor([predicted]), "saliency")[0])
    chosen, _ = views.attribution_view(inspected, x, "gradcam", chosen=2)
    assert chosen.numbers["target"] == 2 and chosen.numbers["class"] == "c2"
    with pytest.raises(RRXError, match="class index 7 is out of range"):
        views.attribution_view(inspected, x, "saliency", chosen=7)
    u = views.u_view(inspected, x, heat, predicted, 0.25, "increasing", "zeros", seed=0)
    assert (u.numbers["window_fraction"], u.numbers["fill"]) == (0.25, "zeros")  # analysis.* of U Analysis
    with pytest.raises(RRXError, match="^fill=grey_gaussian; known: zeros, ones, gaussian, "):
        views.u_view(inspected, x, heat, predicted, 0.25, "increasing", "grey_gaussian", seed=0)  # IPHA's, not U's
    predictions = u.numbers["predictions"]
    assert u.numbers["patch_size"] == 8 and len(predictions) == 17  # 4 x 4 patches of 8 px: x_0 .. x_16
    assert predictions[0] == predicted
    assert predictions[-1] == int(softmax(inspected.model, torch.zeros(1, 3, 32, 32)).argmax())  # only noise left
    for left, middle, right in u.numbers["triples"]:
        assert predictions[left] == predictions[right] == predicted != predictions[middle]


def test_signal_snr_and_background_views(inspected, x):
    mask = torch.zeros(32, 32)
    mask[8:24, 4:20] = 1  # the hand-made signal
    view = views.signal_view(inspected, x, mask)
    kept = x.clone()
    kept[:, :8], kept[:, 24:], kept[:, :, :4], kept[:, :, 20:] = 0, 0, 0, 0
    expected = softmax(inspected.model, torch.stack([x, kept, x - kept]))
    for row, probs in zip(("image", "signal", "context"), expected):
        assert {r["index"]: r["probability"] for r in view.numbers[row]} == pytest.approx(
            {k: float(probs[k]) for k in range(5)}, abs=1e-12
        )

    snr = views.snr_view(inspected, x, mask, ["saliency", "gradcam"], chosen=1)
    for method, ratio in snr.numbers["snr"].items():
        heat = attribution_map(inspected.model, x[None], torch.tensor([1]), method)[0]
        assert ratio == pytest.approx(float(heat[8:24, 4:20].mean() / heat[mask == 0].mean()), rel=1e-5)
    with pytest.raises(RRXError, match="at least one attribution"):
        views.snr_view(inspected, x, mask, [])

    values = {"gaussian_noise": 0.3, "shot_noise": 10.0, "impulse_noise": 0.2, "speckle_noise": 0.5}
    background = views.background_view(inspected, x, mask, values, seed=5)
    noisy = transforms.gaussian_noise(x, 0.3, torch.Generator().manual_seed(5))
    composed = torch.where(mask.bool(), x, noisy)  # the signal kept, the context noisy
    probs = softmax(inspected.model, torch.stack([x, composed]))
    rows = {r["transform"]: r for r in background.numbers["rows"]}
    original = int(probs[0].argmax())
    assert rows["gaussian_noise"]["original_class_probability"] == pytest.approx(float(probs[1, original]), abs=1e-12)
    assert rows["gaussian_noise"]["top1"] == int(probs[1].argmax()) and list(rows) == ["original", *transforms.TEXTURES]


def test_saving_never_overwrites(tmp_path, inspected, x):
    view, _ = views.transform_view(inspected, x, "patch_shuffle", 8, seed=1)
    first = save_view(tmp_path, view, {"image": "a.png"})
    second = save_view(tmp_path, view, {"image": "b.png"})
    assert [p.name for p in first] == ["transform-1.png", "transform-1.json"]
    assert [p.name for p in second] == ["transform-2.png", "transform-2.json"]
    saved = json.loads(first[1].read_text())
    assert saved["image"] == "a.png" and saved["transformed"] == view.numbers["transformed"]
    assert Image.open(first[0]).format == "PNG"


# --- the command -----------------------------------------------------------------------------------------------


def test_port_and_host_checks():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(RRXError, match=f"inspector.port={port}: cannot listen there"):
            check_port("127.0.0.1", port)
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and not is_loopback("0.0.0.0")


def test_inspect_command_errors_are_one_line(tmp_path):
    missing = rrx("inspect", f"checkpoint={tmp_path / 'nope'}", f"hydra.run.dir={tmp_path / 'i'}", check=False)
    one_line_error(missing, f"checkpoint={tmp_path / 'nope'}", "does not exist")
    port = rrx("inspect", "inspector.port=70000", f"hydra.run.dir={tmp_path / 'j'}", check=False)
    one_line_error(port, "inspector.port=70000", "[1, 65535]")


def inspect_config(*overrides):
    with initialize_config_module("rrx.conf", version_base="1.3"):
        return compose("inspect", overrides=list(overrides))


def test_another_checkpoint_replaces_the_model_of_the_command(tmp_path):
    cfg = inspect_config("model=resnet18", "inspector.port=9000")
    other = with_checkpoint(cfg, "/runs/a")
    assert other.checkpoint == "/runs/a" and other.get("model") is None and other.inspector.port == 9000
    assert cfg.model.name == "resnet18" and cfg.checkpoint is None  # the command's config is unchanged
    with pytest.raises(RRXError, match="checkpoint=/runs/a: /runs/a does not exist"):
        open_inspected(other, False)
    with pytest.raises(RRXError, match="rrx inspect needs checkpoint=<run folder or .pt file>, or model=<name>"):
        open_inspected(with_checkpoint(cfg, ""), False)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(RRXError, match="other.pt is not an rrx checkpoint"):
        open_inspected(with_checkpoint(cfg, str(tmp_path / "other.pt")), False)


def test_off_the_shelf_models_keep_their_head(tmp_path):
    imagenet = open_inspected(inspect_config("model=timm", "model.arch=test_resnet", "trainer.device=cpu"), False)
    assert imagenet.dataset is None and imagenet.image_size == 224 and len(imagenet.classes) == 1000
    assert imagenet.classes[:2] == ["tench", "goldfish"]
    small = open_inspected(
        inspect_config(
            "model=small_cnn",
            "model.width=4",
            "dataset.image_size=32",
            "dataset.train_per_class=2",
            "dataset.val_per_class=2",
            f"dataset.cache_dir={tmp_path}",
            "trainer.device=cpu",
        ),
        True,
    )
    assert small.dataset.name == "synthetic" and small.image_size == 32  # random weights: the dataset's classes
    assert small.classes == images.dataset_classes(small.dataset, "original") and len(small.classes) == 9
    x, mask, description = images.dataset_image(small.dataset, "mixed_rand", 3, 1)
    assert x.shape == (3, 32, 32) and mask.shape == (32, 32) and description == "synthetic / mixed_rand / 03_cross #1"
    assert "mixed_rand" in images.dataset_variations(small.dataset)
    with pytest.raises(
        RRXError, match="image index 2 is out of range: class 03_cross has 2 images in original, 0 .. 1"
    ):
        images.dataset_image(small.dataset, "original", 3, 2)


def test_browser_tests_skip_with_the_reason_or_fail_in_ci(monkeypatch):
    from fixtures import browser

    monkeypatch.setattr(browser.shutil, "which", lambda name: None)
    monkeypatch.delenv("RRX_REQUIRE_BROWSER", raising=False)
    with pytest.raises(
        pytest.skip.Exception, match="browser tests need chromium, chromedriver.*apt-get install chromium"
    ):
        browser.require_browser()
    monkeypatch.setenv("RRX_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="RRX_REQUIRE_BROWSER is set"):
        browser.require_browser()


class Bands(torch.nn.Module):
    """Class 0 when the mean brightness is above 0.4 or below 0.1, else class 1: removing patches of a grey image
    one by one (zeros) makes it correct, wrong, then correct again, a U."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.register_buffer("mean", torch.full((1, 3, 1, 1), 0.5))

    def forward(self, x):
        brightness = x.mean((1, 2, 3)) * self.scale
        zero = (brightness > 0.4) | (brightness < 0.1)
        return 10 * torch.stack([zero.float(), (~zero).float()], 1)


def test_u_view_shows_the_u_images():
    inspected = Inspected(Bands(), ["a", "b"], 32, None, "bands")
    x = torch.full((3, 32, 32), 0.5)
    # 16 patches of 8 px; k removed leave brightness 0.5 (16 - k) / 16: class 0 for k <= 3 and k >= 13
    u = views.u_view(inspected, x, torch.ones(32, 32), 0, 0.25, "increasing", "zeros", seed=0)
    assert u.numbers["predictions"] == [0] * 4 + [1] * 9 + [0] * 4
    [(left, middle, right)] = u.numbers["triples"]
    assert (left, right) == (3, 13) and 4 <= middle <= 12 and u.numbers["has_u"]
    titles = [inset.get_title() for ax in u.figure.axes for inset in ax.child_axes]
    assert titles == ["x_3: a", f"x_{middle}: b", "x_13: a"]


def test_inspect_without_streamlit_names_the_extra(monkeypatch, tmp_path):
    from rrx.inspector import server

    real = server.importlib.util.find_spec
    monkeypatch.setattr(server.importlib.util, "find_spec", lambda name: None if name == "streamlit" else real(name))
    with pytest.raises(RRXError, match=r"rrx inspect needs streamlit: pip install 'rrx\[inspector\]'"):
        server.inspect(inspect_config(), tmp_path, False)


# --- checkpoints the page loads (issue 24): only from under inspector.checkpoint_roots, never unpickled -----------


def test_the_page_takes_a_path_only_from_under_its_roots(tmp_path, monkeypatch):
    tmp_path = tmp_path.resolve()
    root, outside = tmp_path / "root", tmp_path / "outside"
    for file in (
        root / "run" / "checkpoint.pt",
        root / "a.pt",
        root / "~" / "c.pt",
        root / "notes.txt",
        outside / "b.pt",
        outside / "checkpoint.pt",
    ):
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(b"x")
    (root / "link.pt").symlink_to(outside / "b.pt")
    (root / "linked_run").symlink_to(outside)
    (root / "run_link").symlink_to(root / "run")  # a link that stays under the root is followed
    roots = [root]
    assert page_checkpoint("run", roots) == page_checkpoint(f" {root}/run/ ", roots) == root / "run" / "checkpoint.pt"
    assert (
        page_checkpoint("a.pt", roots) == root / "a.pt"
        and page_checkpoint("run_link", roots) == root / "run" / "checkpoint.pt"
    )
    assert page_checkpoint("~/c.pt", roots) == root / "~" / "c.pt"  # ~ is a folder's name, not the home folder

    monkeypatch.setenv("HOME", str(outside))
    looked_up = []  # every path stat'ed or lstat'ed while checking
    for name in ("stat", "lstat"):
        real = getattr(os, name)
        monkeypatch.setattr(
            os, name, lambda path, *a, real=real, **k: looked_up.append(str(path)) or real(path, *a, **k)
        )
    refused = {f"only checkpoints under {root} can be loaded here: a run folder holding checkpoint.pt, or a .pt file"}
    never_looked_at = [
        str(outside / "b.pt"),
        str(outside),
        "../outside/b.pt",
        "run/../../outside",
        str(tmp_path / "missing.pt"),
        "/etc/passwd",
        "",
    ]
    messages = set()
    for text in never_looked_at:
        with pytest.raises(RRXError) as caught:
            page_checkpoint(text, roots)
        messages.add(str(caught.value))
    assert looked_up == []  # refused before anything was looked up
    for text in (
        "link.pt",
        "linked_run",
        "linked_run/b.pt",
        "~/b.pt",
        "~",
        "missing.pt",
        "run/missing",
        "notes.txt",
        "a\0.pt",
        "x" * 5000,
    ):
        with pytest.raises(RRXError) as caught:
            page_checkpoint(text, roots)
        messages.add(str(caught.value))
    assert messages == refused  # outside, escaping, missing: the same words, which do not say what exists
    with pytest.raises(RRXError, match="this Inspector loads no other checkpoints"):
        page_checkpoint(str(root / "a.pt"), [])


def test_checkpoint_roots_default_to_the_commands_checkpoint_folder(tmp_path):
    tmp_path = tmp_path.resolve()
    run = tmp_path / "runs" / "run"
    run.mkdir(parents=True)
    (run / "checkpoint.pt").write_bytes(b"x")
    assert checkpoint_roots(inspect_config(f"checkpoint={run}")) == [run]  # the run folder, not its parent
    assert checkpoint_roots(inspect_config(f"checkpoint={run / 'checkpoint.pt'}")) == [run]
    assert checkpoint_roots(inspect_config("model=resnet18")) == []
    assert checkpoint_roots(
        inspect_config("model=resnet18", f"inspector.checkpoint_roots=[{tmp_path}/runs,{run}]")
    ) == [tmp_path / "runs", run]
    assert checkpoint_roots(inspect_config(f"checkpoint={run}", "inspector.checkpoint_roots=[]")) == []
    with pytest.raises(RRXError, match=f"inspector.checkpoint_roots: {tmp_path}/nope is not a folder"):
        checkpoint_roots(inspect_config(f"inspector.checkpoint_roots=[{tmp_path}/nope]"))
    with pytest.raises(RRXError, match="inspector.checkpoint_roots=3: give a folder or a list of folders"):
        checkpoint_roots(inspect_config("inspector.checkpoint_roots=3"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished tiny run (SmallCNN, synthetic 32 px) in ``root/run``: (its checkpoint, the root, the command's
    config for ``rrx inspect checkpoint=<root/run>``)."""
    base = tmp_path_factory.mktemp("roots").resolve()
    with initialize_config_module("rrx.conf", version_base="1.3"):
        cfg = compose("train", overrides=[*TINY, f"dataset.cache_dir={base / 'cache'}"])
    train(cfg, base / "root" / "run")
    command = inspect_config(
        f"checkpoint={base / 'root' / 'run'}", f"dataset.cache_dir={base / 'cache'}", "trainer.device=cpu"
    )
    return torch.load(base / "root" / "run" / "checkpoint.pt", weights_only=True), base / "root", command


def test_the_page_never_unpickles_and_quotes_nothing_of_a_file(trained, tmp_path):
    ckpt, root, cfg = trained
    marker = tmp_path / "marker"
    torch.save({**ckpt, "extra": Marker(marker)}, root / "evil.pt")
    (root / "notes.pt").write_text("SECRET-TOKEN 1234\n")
    torch.save({**ckpt, "state_dict": {"SECRET-TOKEN": torch.tensor([math.nan])}}, root / "secret_names.pt")
    older = {**ckpt, "rng": {**ckpt["rng"], "numpy": np.random.get_state()}}  # what an older rrx wrote
    torch.save(older, root / "older.pt")
    for name in ("evil.pt", "notes.pt", "secret_names.pt", "older.pt"):
        with pytest.raises(RRXError) as caught:
            open_page_checkpoint(cfg, name, [root], False)
        assert str(caught.value) == UNLOADABLE
    assert not marker.exists()
    assert open_inspected(with_checkpoint(cfg, root / "older.pt"), False).classes  # the command line reads it
    assert open_page_checkpoint(cfg, "run", [root], False).description.endswith(str(root / "run" / "checkpoint.pt"))


def test_an_unfinished_checkpoint_is_noticed(trained, inspected):
    ckpt, root, cfg = trained
    torch.save({**ckpt, "finished": False, "epoch": 1, "epochs": 3}, root / "unfinished.pt")
    torch.save({k: v for k, v in ckpt.items() if k not in ("finished", "epoch", "epochs")}, root / "older_run.pt")
    notice = open_page_checkpoint(cfg, "unfinished.pt", [root], False).notice
    assert notice.startswith("this checkpoint is unfinished (epoch 1 of 3)")
    assert (
        "did not record whether its training finished"
        in open_page_checkpoint(cfg, "older_run.pt", [root], False).notice
    )
    assert open_inspected(cfg, False).notice is None and inspected.notice is None  # finished; no checkpoint
