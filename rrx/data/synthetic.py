"""The embedded synthetic backgrounds benchmark, written in the ImageNet-9 on-disk layout.

Each class is a shape with a class-typical colour (plus per-image colour noise and pixel
texture); each background family is a striped texture with its own angle, frequency and
palette. At generation time the background family equals the class with probability
``bg_correlation`` and is a uniformly random other family otherwise: a controllable
shortcut, like real scene context.

The generator writes ``bg_challenge/<variation>/<split>/<class>/<stem>.JPEG`` exactly as
IN-9 does (``original`` and ``fg_mask`` for ``train``; all eight variations and ``fg_mask``
for ``val``), so the default run reads it back through the same loader as the real data.
Because the generator knows each image's clean background, ``only_bg_t`` (IN-9 fills the
object's box by tiling background) is that clean background here, and the mixed
variations paste an object onto the clean background of another image, as IN-9 pastes onto
``only_bg_t``.

The generator also knows every segment a whole-image segmenter should find in an image: the object and each stripe
of the background it shows. ``SceneSegments`` replays the draws of ``generate`` (without writing or changing any
image) and gives them per image: the object masks A_i of ObEy (seed 002, Eq. 2) on this benchmark
(``analysis.object_masks=synthetic``).
"""

from __future__ import annotations

import colorsys
import hashlib
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import List, Optional

import numpy as np
from PIL import Image

from rrx.config import param
from rrx.data import register_dataset
from rrx.data.augment import DATASET_AUGMENTS
from rrx.data.base import (
    image_size_key,
    mean_key,
    num_classes_key,
    num_workers_key,
    root_key,
    std_key,
    unwrapped,
)
from rrx.data.in9 import BackgroundConfig, BackgroundDataset
from rrx.data.variations import VARIATIONS, mixed_partners
from rrx.errors import RRXError

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1
SHAPES = ("circle", "square", "triangle", "cross", "ring", "star", "diamond", "bar", "hexagon", "half moon")


@dataclass(frozen=True)
class SyntheticSpec:
    """Generator parameters; equal specs give byte-identical datasets."""

    num_classes: int = 9
    image_size: int = 64
    train_per_class: int = 300
    val_per_class: int = 50
    bg_correlation: float = 0.9
    seed: int = 0

    def __post_init__(self):
        if not 2 <= self.num_classes <= len(SHAPES):
            raise RRXError(
                f"dataset.num_classes={self.num_classes}: the synthetic benchmark has 2..{len(SHAPES)} classes"
            )
        if not 0.0 <= self.bg_correlation <= 1.0:
            raise RRXError(f"dataset.bg_correlation={self.bg_correlation}: must lie in [0, 1]")
        if self.val_per_class < 2:
            raise RRXError(f"dataset.val_per_class={self.val_per_class}: mixed_same needs at least 2 images per class")
        if self.image_size < 16:
            raise RRXError(f"dataset.image_size={self.image_size}: use at least 16 pixels")

    def key(self) -> str:
        text = json.dumps({**asdict(self), "version": GENERATOR_VERSION}, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]


def class_folder(k: int) -> str:
    return f"{k:02d}_{SHAPES[k]}"


def shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Boolean mask of ``shape`` in object coordinates (u, v), unit radius."""
    r = np.hypot(u, v)
    theta = np.arctan2(v, u)
    if shape == "circle":
        return r <= 1.0
    if shape == "square":
        return np.maximum(abs(u), abs(v)) <= 0.8
    if shape == "triangle":
        return (v >= -0.5) & (v <= 1.0 - np.sqrt(3.0) * abs(u))
    if shape == "cross":
        return ((abs(u) <= 0.3) & (abs(v) <= 1.0)) | ((abs(v) <= 0.3) & (abs(u) <= 1.0))
    if shape == "ring":
        return (r >= 0.55) & (r <= 1.0)
    if shape == "star":
        return r <= 0.6 + 0.4 * np.cos(5 * theta)
    if shape == "diamond":
        return abs(u) + abs(v) <= 1.0
    if shape == "bar":
        return (u / 1.0) ** 2 + (v / 0.4) ** 2 <= 1.0
    if shape == "hexagon":
        return np.maximum(abs(u) * np.sqrt(3.0) / 2 + abs(v) / 2, abs(v)) <= 0.87
    if shape == "half moon":
        return (r <= 1.0) & ((u - 0.45) ** 2 + v**2 > 0.7**2)
    raise ValueError(f"unknown shape {shape!r}")


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32)


@dataclass(frozen=True)
class Stripes:
    """The geometry of one background: the texture is 0.5 + 0.5 sin(t), t = (x cos angle + y sin angle) 2 pi / period
    + phase, in pixel-centre coordinates."""

    angle: float
    period: float
    phase: float


class SyntheticGenerator:
    """Draws objects, masks and backgrounds; every draw comes from one seeded NumPy generator."""

    def __init__(self, spec: SyntheticSpec):
        self.spec = spec
        n = spec.image_size
        self.yy, self.xx = np.mgrid[0:n, 0:n].astype(np.float32) + 0.5

    def background(self, family: int, rng: np.random.Generator) -> np.ndarray:
        """Striped texture of one family: (H, W, 3) float in [0, 1]."""
        return self.draw_background(family, rng)[0]

    def draw_background(self, family: int, rng: np.random.Generator) -> tuple[np.ndarray, Stripes]:
        """The striped texture of one family, (H, W, 3) float in [0, 1], and its geometry."""
        k = self.spec.num_classes
        angle = np.pi * family / k + rng.normal(0, 0.08)
        period = self.spec.image_size / (2.5 + 1.5 * (family % 3)) * rng.uniform(0.9, 1.1)
        phase = rng.uniform(0, 2 * np.pi)
        stripes = Stripes(angle, period, phase)
        wave = (0.5 + 0.5 * np.sin(self.stripe_phase(stripes)))[..., None]
        hue = (family + 0.5) / k
        dark = _hsv(hue + rng.normal(0, 0.02), 0.45, 0.35)
        light = _hsv(hue + 0.15 + rng.normal(0, 0.02), 0.30, 0.80)
        img = dark * (1 - wave) + light * wave
        return np.clip(img + rng.normal(0, 0.04, img.shape), 0, 1).astype(np.float32), stripes

    def stripe_phase(self, stripes: Stripes) -> np.ndarray:
        """(H, W) the texture's phase t at each pixel."""
        return (
            self.xx * np.cos(stripes.angle) + self.yy * np.sin(stripes.angle)
        ) * 2 * np.pi / stripes.period + stripes.phase

    def stripe_bands(self, stripes: Stripes) -> np.ndarray:
        """(H, W) int: the stripe of each pixel, floor(t / pi): stripes run between two crossings of the texture's mid
        level; an even band is a light stripe (the texture above its mid level), an odd one dark."""
        return np.floor(self.stripe_phase(stripes) / np.pi).astype(np.int64)

    def foreground(self, label: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Object of class ``label``: colour image (H, W, 3) and mask (H, W) in {0, 1}."""
        n = self.spec.image_size
        radius = rng.uniform(0.20, 0.30) * n
        cx, cy = rng.uniform(radius, n - radius, size=2)
        rot = rng.uniform(0, 2 * np.pi)
        dx, dy = (self.xx - cx) / radius, (self.yy - cy) / radius
        u = dx * np.cos(rot) + dy * np.sin(rot)
        v = -dx * np.sin(rot) + dy * np.cos(rot)
        mask = shape_mask(SHAPES[label], u, v).astype(np.uint8)
        base = _hsv(label / self.spec.num_classes + rng.normal(0, 0.02), 0.85, 0.95)
        colour = np.clip(base + rng.normal(0, 0.06, 3), 0, 1)
        shade = 1.0 - 0.25 * np.clip(np.hypot(u, v), 0, 1)[..., None]
        img = colour * shade + rng.normal(0, 0.05, (n, n, 3))
        return np.clip(img, 0, 1).astype(np.float32), mask

    def background_family(self, label: int, rng: np.random.Generator) -> int:
        k = self.spec.num_classes
        if rng.random() < self.spec.bg_correlation:
            return label
        return int((label + rng.integers(1, k)) % k)


def _paste(fg: np.ndarray, mask: np.ndarray, bg: np.ndarray) -> np.ndarray:
    m = mask[..., None].astype(np.float32)
    return fg * m + bg * (1 - m)


def _bbox_black(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    out = img.copy()
    out[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] = 0
    return out


def _save_jpeg(img: np.ndarray, path: Path) -> None:
    Image.fromarray((img * 255).round().astype(np.uint8)).save(path, quality=95)


def _labels_and_stems(spec: SyntheticSpec, per_class: int) -> tuple[np.ndarray, list[str]]:
    labels = np.repeat(np.arange(spec.num_classes), per_class)
    return labels, [f"syn{y:02d}_{i:05d}" for i, y in enumerate(labels)]


def _draw(gen: SyntheticGenerator, labels: np.ndarray, rng: np.random.Generator):
    """(object image, mask, background, its stripes, its family) of each image in turn, in the order every draw is
    made."""
    for y in labels:
        fg, mask = gen.foreground(int(y), rng)
        family = gen.background_family(int(y), rng)
        bg, stripes = gen.draw_background(family, rng)
        yield fg, mask, bg, stripes, family


def _splits(spec: SyntheticSpec) -> tuple[tuple[str, int], ...]:
    """The splits in the order ``generate`` draws them from its one generator."""
    return ("train", spec.train_per_class), ("val", spec.val_per_class)


def _write_split(gen: SyntheticGenerator, root: Path, split: str, per_class: int, rng: np.random.Generator) -> None:
    spec = gen.spec
    labels, stems = _labels_and_stems(spec, per_class)
    variations = VARIATIONS if split == "val" else ("original",)
    for variation in (*variations, "fg_mask"):
        for k in range(spec.num_classes):
            (root / variation / split / class_folder(k)).mkdir(parents=True, exist_ok=True)

    fgs, masks, bgs = [], [], []
    for fg, mask, bg, *_ in _draw(gen, labels, rng):
        fgs.append(fg)
        masks.append(mask)
        bgs.append(bg)

    for i, (y, stem) in enumerate(zip(labels, stems)):
        folder = class_folder(int(y))
        np.save(root / "fg_mask" / split / folder / f"{stem}.npy", masks[i])
        original = _paste(fgs[i], masks[i], bgs[i])
        _save_jpeg(original, root / "original" / split / folder / f"{stem}.JPEG")
        if split != "val":
            continue
        _save_jpeg(_paste(fgs[i], masks[i], np.zeros_like(bgs[i])), root / "only_fg" / split / folder / f"{stem}.JPEG")
        _save_jpeg(original * (1 - masks[i][..., None]), root / "no_fg" / split / folder / f"{stem}.JPEG")
        _save_jpeg(_bbox_black(bgs[i], masks[i]), root / "only_bg_b" / split / folder / f"{stem}.JPEG")
        _save_jpeg(bgs[i], root / "only_bg_t" / split / folder / f"{stem}.JPEG")

    if split == "val":
        for variation, partner in mixed_partners(labels, rng).items():
            for i, (y, stem) in enumerate(zip(labels, stems)):
                j = partner[i]
                name = f"fg_{stem}_bg_{stems[j]}.JPEG"
                path = root / variation / split / class_folder(int(y)) / name
                _save_jpeg(_paste(fgs[i], masks[i], bgs[j]), path)


def generate(spec: SyntheticSpec, root: Path) -> None:
    """Write the benchmark for ``spec`` into ``root`` (a ``bg_challenge`` folder)."""
    gen = SyntheticGenerator(spec)
    rng = np.random.default_rng(spec.seed)
    for split, per_class in _splits(spec):
        _write_split(gen, root, split, per_class, rng)


class SceneSegments:
    """The segments of each benchmark image, known from the generator: what ObEy's all-object masks A_i (seed 002,
    Eq. 2; segment-anything masks in the paper) are on this benchmark.

    The draws of ``generate`` are replayed up to ``split`` (nothing is written; the images stay as generated), keeping
    each image's object mask and the stripe band of each pixel of its background (``SyntheticGenerator.stripe_bands``).
    An image's segments are the visible object (or what stands in its place) and every stripe of the background it
    shows, less the pixels the object covers (a stripe the object cuts in two stays one segment):

    - ``original``, ``no_fg`` (the black hole where the object was), ``mixed_*`` (the object on another image's
      background): the object mask, and the stripes of the background shown;
    - ``only_fg``: the object and the black rest; ``only_bg_b``: the black box and the stripes around it;
      ``only_bg_t``: the stripes alone.

    Args:
        spec (SyntheticSpec): the benchmark's generator parameters.
        split (str, optional): ``train`` or ``val``. Default: ``val``.

    Example: ``SceneSegments(spec).masks("mixed_rand", "fg_syn00_00003_bg_syn02_00011.JPEG")`` is an (M, S, S) boolean
    array, the object first.
    """

    def __init__(self, spec: SyntheticSpec, split: str = "val"):
        names = [name for name, _ in _splits(spec)]
        if split not in names:
            raise RRXError(f"the synthetic benchmark has no split {split!r}; known: {', '.join(names)}")
        gen = SyntheticGenerator(spec)
        rng = np.random.default_rng(spec.seed)
        for name, per_class in _splits(spec):
            labels, stems = _labels_and_stems(spec, per_class)
            parts = [
                (mask.astype(bool), gen.stripe_bands(stripes)) for _, mask, _, stripes, _ in _draw(gen, labels, rng)
            ]
            if name == split:
                break
        self.split = split
        self.parts = dict(zip(stems, parts))  # stem -> ((H, W) object mask, (H, W) stripe band of its background)

    def masks(self, variation: str, filename: str) -> np.ndarray:
        """(M, H, W) boolean: the segments of the image ``filename`` of ``variation`` (mixed images name their object's
        and their background's images: ``fg_<stem>_bg_<stem>``)."""
        stem = Path(filename).stem
        fg, bg = stem[3:].split("_bg_", 1) if stem.startswith("fg_") and "_bg_" in stem else (stem, stem)
        for part in (fg, bg):
            if part not in self.parts:
                raise RRXError(f"{filename}: no image {part} in the {self.split} split of the synthetic benchmark")
        if variation not in VARIATIONS:
            raise RRXError(f"synthetic benchmark variation {variation!r}; known: {', '.join(VARIATIONS)}")
        obj, bands = self.parts[fg][0], self.parts[bg][1]
        if variation == "only_bg_t":
            shown, covered = [], np.zeros_like(obj)
        elif variation == "only_bg_b":
            ys, xs = np.nonzero(obj)
            covered = np.zeros_like(obj)
            covered[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] = True
            shown = [covered]
        elif variation == "only_fg":
            shown, covered = [obj, ~obj], np.ones_like(obj)
        else:
            shown, covered = [obj], obj
        stripes = [(bands == band) & ~covered for band in np.unique(bands)]
        return np.stack([m for m in shown + stripes if m.any()])


def training_backgrounds(spec: SyntheticSpec) -> dict[str, str]:
    """``{stem: class folder}``: the class whose background family each training image shows (its own with
    probability ``bg_correlation``), from the generator's draws replayed (the training split is drawn first)."""
    gen = SyntheticGenerator(spec)
    labels, stems = _labels_and_stems(spec, spec.train_per_class)
    families = (family for *_, family in _draw(gen, labels, np.random.default_rng(spec.seed)))
    return {stem: class_folder(family) for stem, family in zip(stems, families)}


class SyntheticDataset(BackgroundDataset):
    """The generated benchmark: a ``BackgroundDataset`` that also knows each training image's background class."""

    def __init__(self, root: Path, cfg, spec: SyntheticSpec):
        super().__init__(root, cfg)
        self.spec = spec
        self._backgrounds: dict[str, str] | None = None

    def training_background_classes(self, train_set) -> list[str]:
        """The background class of each item of ``train_set`` (its ``train_set``, or a ``Subset`` of it)."""
        if self._backgrounds is None:
            self._backgrounds = training_backgrounds(self.spec)
        base, indices = unwrapped(train_set)
        found = [self._backgrounds[Path(path).stem] for path, _ in base.samples]
        return found if indices is None else [found[i] for i in indices]


def generated_spec(root: str | os.PathLike) -> SyntheticSpec | None:
    """The spec a ``bg_challenge`` folder was generated from (``materialise`` writes ``spec.json`` beside it), or
    None when it was not generated by this generator version."""
    path = Path(root).expanduser().parent / "spec.json"
    if not path.is_file():
        return None
    fields = json.loads(path.read_text())
    if fields.pop("version", None) != GENERATOR_VERSION:
        return None
    return SyntheticSpec(**fields)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_temporaries(cache_dir: Path) -> list[Path]:
    """Delete ``synthetic-*.tmp-<pid>`` folders whose generating process is gone (killed mid-generation)."""
    removed = []
    for tmp in cache_dir.glob("synthetic-*.tmp-*"):
        pid = tmp.name.rsplit(".tmp-", 1)[1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)
            log.info("removed %s, left by a generation that did not finish", tmp)
            removed.append(tmp)
    return removed


def materialise(spec: SyntheticSpec, cache_dir: str | os.PathLike) -> Path:
    """Return the cached ``bg_challenge`` root for ``spec``, generating it once if missing.

    Generation goes to a temporary folder renamed into place when complete, so an
    interrupted run never leaves a half-written dataset behind: a failed generation removes
    its folder, and one of a killed process is removed by the next generation.
    """
    final = Path(cache_dir).expanduser() / f"synthetic-{spec.key()}"
    root = final / "bg_challenge"
    if root.is_dir():
        return root
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(final.parent)
    tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    log.info("Generating the synthetic benchmark %s into %s", asdict(spec), final)
    try:
        generate(spec, tmp / "bg_challenge")
        (tmp / "spec.json").write_text(json.dumps({**asdict(spec), "version": GENERATOR_VERSION}, indent=2))
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RRXError(f"cannot generate the synthetic benchmark into {tmp}: {err.strerror or err}") from err
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        tmp.rename(final)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return root


@dataclass
class SyntheticConfig(BackgroundConfig):
    """the embedded synthetic backgrounds benchmark in the ImageNet-9 layout (generated once, cached)"""

    name: str = param("synthetic", "the registered name of the dataset")
    root: Optional[str] = root_key("null: generate into cache_dir; a path: read that bg_challenge folder instead")
    cache_dir: str = param("${oc.env:RRX_CACHE,'~/.cache/rrx'}", "where the benchmark is generated (once per spec)")
    num_classes: int = num_classes_key(9, f"the number of classes (shapes), 2..{len(SHAPES)}")
    image_size: int = image_size_key(64, "the side of the generated images (at least 16)")
    train_per_class: int = param(300, "training images per class", low=1)
    val_per_class: int = param(50, "images per class of each val variation (at least 2: mixed_same pairs them)", low=0)
    bg_correlation: float = param(0.9, "P(background family == class) in every split", low=0.0, high=1.0)
    generator_seed: int = param(0, "the generator's seed: equal settings give byte-identical images")
    mean: List[float] = mean_key([0.5, 0.5, 0.5])
    std: List[float] = std_key([0.25, 0.25, 0.25])
    num_workers: int = num_workers_key(0)
    augment: str = param(
        "none",
        "training augmentation: none (the benchmark is measured without) | crop_flip (random resized crops and flips)",
        choices=DATASET_AUGMENTS,
    )


@register_dataset("synthetic", config=SyntheticConfig)
def synthetic(cfg) -> BackgroundDataset:
    """The embedded benchmark, generated into ``cfg.cache_dir`` unless ``cfg.root`` is given."""
    if cfg.root:
        return BackgroundDataset(Path(cfg.root), cfg)
    spec = SyntheticSpec(
        num_classes=cfg.num_classes,
        image_size=cfg.image_size,
        train_per_class=cfg.train_per_class,
        val_per_class=cfg.val_per_class,
        bg_correlation=cfg.bg_correlation,
        seed=cfg.generator_seed,
    )
    root = materialise(spec, cfg.cache_dir)
    log.info("Synthetic benchmark at %s", root)
    return SyntheticDataset(root, cfg, spec)
