"""The synthetic generator: exact masks, the background shortcut, IN-9 layout and variation rules."""

import colorsys

import numpy as np
import pytest
from PIL import Image

from rrx.data.in9 import foreground_stem
from rrx.data.synthetic import SHAPES, SyntheticGenerator, SyntheticSpec, class_folder, materialise, shape_mask
from rrx.data.variations import mixed_partners
from rrx.errors import RRXError

SPEC = SyntheticSpec(num_classes=4, image_size=32, train_per_class=6, val_per_class=5, bg_correlation=0.75, seed=3)


def _grid(n=801, extent=1.2):
    t = np.linspace(-extent, extent, n)
    u, v = np.meshgrid(t, t)
    return u, v, (t[1] - t[0]) ** 2


@pytest.mark.parametrize(
    "shape, area",
    [
        ("circle", np.pi),
        ("square", 1.6**2),
        ("diamond", 2.0),
        ("ring", np.pi * (1 - 0.55**2)),
        ("bar", np.pi * 0.4),
        ("cross", 2 * (0.6 * 2.0) - 0.6**2),
        ("triangle", 0.75 * np.sqrt(3)),  # equilateral, circumradius 1
    ],
)
def test_shape_area_matches_formula(shape, area):
    u, v, cell = _grid()
    assert shape_mask(shape, u, v).sum() * cell == pytest.approx(area, rel=0.01)


@pytest.mark.parametrize("label", range(4))
def test_object_has_class_typical_hue_and_fits_the_image(label):
    gen = SyntheticGenerator(SPEC)
    fg, mask = gen.foreground(label, np.random.default_rng(label))
    assert set(np.unique(mask)) == {0, 1}
    hue = colorsys.rgb_to_hsv(*fg[mask == 1].mean(0))[0]
    class_hues = np.arange(SPEC.num_classes) / SPEC.num_classes
    distance = np.minimum(abs(hue - class_hues), 1 - abs(hue - class_hues))
    assert distance.argmin() == label  # the colour identifies the class
    assert mask[0].sum() == mask[-1].sum() == mask[:, 0].sum() == mask[:, -1].sum() == 0  # not cut by the border


def test_background_family_follows_correlation():
    spec = SyntheticSpec(num_classes=9, bg_correlation=0.8)
    gen = SyntheticGenerator(spec)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 9, 20000)
    families = np.array([gen.background_family(int(y), rng) for y in labels])
    assert (families == labels).mean() == pytest.approx(0.8, abs=0.01)
    off = families[families != labels]
    assert np.bincount(off, minlength=9).min() > 0.08 * len(off)  # other families uniform


def test_mixed_partner_rules():
    labels = np.repeat(np.arange(4), 5)
    partners = mixed_partners(labels, np.random.default_rng(0))
    idx = np.arange(len(labels))
    assert (labels[partners["mixed_same"]] == labels).all() and (partners["mixed_same"] != idx).all()
    assert (labels[partners["mixed_next"]] == (labels + 1) % 4).all()
    assert (partners["mixed_rand"] != idx).all()


def test_spec_rejects_bad_values():
    with pytest.raises(RRXError, match="bg_correlation"):
        SyntheticSpec(bg_correlation=1.5)
    with pytest.raises(RRXError, match="val_per_class=1: mixed_same needs at least 2"):
        SyntheticSpec(val_per_class=1)
    with pytest.raises(RRXError, match="num_classes"):
        SyntheticSpec(num_classes=len(SHAPES) + 1)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return materialise(SPEC, tmp_path_factory.mktemp("cache"))


def _load(path):
    return np.asarray(Image.open(path), dtype=np.float32) / 255


def test_layout_counts(root):
    for variation in [
        "original",
        "only_fg",
        "no_fg",
        "only_bg_b",
        "only_bg_t",
        "mixed_same",
        "mixed_rand",
        "mixed_next",
    ]:
        for k in range(4):
            assert len(list((root / variation / "val" / class_folder(k)).glob("*.JPEG"))) == 5
    for k in range(4):
        assert len(list((root / "original" / "train" / class_folder(k)).glob("*.JPEG"))) == 6
        assert len(list((root / "fg_mask" / "train" / class_folder(k)).glob("*.npy"))) == 6
    assert not (root / "mixed_rand" / "train").exists()


def test_generation_is_deterministic_and_cached(root, tmp_path):
    again = materialise(SPEC, tmp_path)
    a = sorted(p.relative_to(root) for p in root.rglob("*.*"))
    assert a == sorted(p.relative_to(again) for p in again.rglob("*.*"))
    for rel in a[:: max(1, len(a) // 20)]:
        assert (root / rel).read_bytes() == (again / rel).read_bytes()
    assert materialise(SPEC, tmp_path) == again  # second call reuses the cache
    assert not list(tmp_path.glob("*.tmp-*"))


def test_variations_are_built_from_the_parts(root):
    """only_fg = object on black, no_fg = object blacked out, mixed = object on the partner's only_bg_t."""
    tol = 0.06  # JPEG quality 95
    folder = class_folder(1)
    for mixed in sorted((root / "mixed_rand" / "val" / folder).glob("*.JPEG")):
        fg_stem = foreground_stem(mixed.name)
        bg_stem = mixed.stem.split("_bg_")[1]
        bg_class = class_folder(int(bg_stem[3:5]))
        mask = np.load(root / "fg_mask" / "val" / folder / f"{fg_stem}.npy")
        core = mask.astype(bool)
        inside = _erode(core)
        outside = _erode(~core)
        img = _load(mixed)
        original = _load(root / "original" / "val" / folder / f"{fg_stem}.JPEG")
        background = _load(root / "only_bg_t" / "val" / bg_class / f"{bg_stem}.JPEG")
        assert np.abs(img[inside] - original[inside]).mean() < tol
        assert np.abs(img[outside] - background[outside]).mean() < tol
        only_fg = _load(root / "only_fg" / "val" / folder / f"{fg_stem}.JPEG")
        no_fg = _load(root / "no_fg" / "val" / folder / f"{fg_stem}.JPEG")
        assert only_fg[outside].mean() < 0.02 and no_fg[inside].mean() < 0.02
        assert np.abs(only_fg[inside] - original[inside]).mean() < tol


def _erode(mask, steps=2):
    """Pixels at least ``steps`` away from the mask boundary (JPEG blurs edges)."""
    out = mask.copy()
    for _ in range(steps):
        out[1:] &= out[:-1].copy()
        out[:-1] &= out[1:].copy()
        out[:, 1:] &= out[:, :-1].copy()
        out[:, :-1] &= out[:, 1:].copy()
    return out
