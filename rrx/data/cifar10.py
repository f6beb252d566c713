"""CIFAR-10 (Krizhevsky 2009) from torchvision's on-disk format, never downloaded.

Layout: ``<root>/cifar-10-batches-py/`` (or ``dataset.root`` pointing at that folder itself) with the pickles
``data_batch_1`` .. ``data_batch_5`` (training), ``test_batch`` and ``batches.meta``, as
https://www.cs.toronto.edu/~kriz/cifar.html ships them. A batch is a dict with ``data`` (N, 3072) uint8, each
row the red, green and blue 32x32 planes in row-major order, and ``labels`` (N ints in 0..9);
``batches.meta`` has ``label_names``. Keys and names are read whether they were pickled as bytes or str.

The pickles are read with an unpickler that accepts only numpy arrays, lists, dicts, strings and numbers, so a
tampered file cannot run code. There are no object masks; the test batch is the ``original`` variation.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import numpy as np

from rrx.config import param
from rrx.data import register_dataset
from rrx.data.base import (
    DatasetConfig,
    image_size_key,
    mean_key,
    num_classes_key,
    num_workers_key,
    root_key,
    std_key,
)
from rrx.data.image_task import ImageTask, array_task, check_num_classes, find_folder
from rrx.errors import RRXError

FOLDER = "cifar-10-batches-py"
SPLIT_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
META = "batches.meta"
LAYOUT = (
    f"<root>/{FOLDER}/ with data_batch_1..5, test_batch and {META}: torchvision's CIFAR-10 python format, "
    f"cifar-10-python.tar.gz extracted"
)
SIDE = 32
# What a CIFAR pickle may refer to: numpy's array reconstruction (numpy 1 and 2 module names, pickle protocols
# 2-5) and the bytes encoding of protocol 2.
PICKLE_GLOBALS = {
    *((f"numpy.{core}.multiarray", name) for core in ("core", "_core") for name in ("_reconstruct", "scalar")),
    *((f"numpy.{core}.numeric", "_frombuffer") for core in ("core", "_core")),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"it refers to {module}.{name}, which a CIFAR-10 file never holds")


def _text(value) -> str:
    return value.decode("latin1") if isinstance(value, bytes) else str(value)


def read_pickle(path: Path, keys: tuple[str, ...]) -> dict:
    """The dict pickled in ``path`` with str keys; an RRXError unless it holds every one of ``keys``."""
    try:
        with open(path, "rb") as f:
            entry = _ArraysOnly(f, encoding="latin1").load()
    except Exception as err:  # a truncated or foreign pickle fails with any of a dozen exception types
        raise RRXError(
            f"cannot read {path} as a CIFAR-10 pickle ({type(err).__name__}: {err}); expected {LAYOUT}"
        ) from None
    if not isinstance(entry, dict):
        raise RRXError(f"{path} holds a {type(entry).__name__}, not a CIFAR-10 dict (expected {LAYOUT})")
    entry = {_text(key): value for key, value in entry.items()}
    missing = [key for key in keys if key not in entry]
    if missing:
        raise RRXError(
            f"{path} lacks the key(s) {missing} of a CIFAR-10 file (it has {sorted(entry)}; expected {LAYOUT})"
        )
    return entry


def read_batch(path: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 3, 32, 32) uint8, labels (N,) int64) of one CIFAR-10 batch file."""
    entry = read_pickle(path, ("data", "labels"))
    data, labels = entry["data"], np.asarray(entry["labels"])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * SIDE * SIDE:
        shape = getattr(data, "shape", type(data).__name__)
        raise RRXError(
            f"{path}: 'data' is {shape} {getattr(data, 'dtype', '')}, "
            f"not (N, {3 * SIDE * SIDE}) uint8 (expected {LAYOUT})"
        )
    if (
        labels.shape != (len(data),)
        or labels.dtype.kind not in "iu"
        or (labels < 0).any()
        or (labels >= num_classes).any()
    ):
        raise RRXError(f"{path}: 'labels' must be {len(data)} integers in 0..{num_classes - 1} (expected {LAYOUT})")
    return data.reshape(-1, 3, SIDE, SIDE), labels.astype(np.int64)


def read_cifar10(folder: Path, num_classes: int) -> tuple[list[str], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """(class names, {"train": (images, labels), "test": ...}) from a ``cifar-10-batches-py`` folder."""
    names = [_text(name) for name in read_pickle(folder / META, ("label_names",))["label_names"]]
    check_num_classes(names, num_classes, str(folder / META))
    splits = {}
    for split, files in SPLIT_FILES.items():
        batches = [read_batch(folder / name, len(names)) for name in files]
        splits[split] = (np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches]))
    return names, splits


@dataclass
class CIFAR10Config(DatasetConfig):
    """CIFAR-10 in torchvision's on-disk format (never downloaded), without object masks

    The test batch is the 'original' variation (challenge=original); trainer.val_fraction holds out training images.
    """

    name: str = param("cifar10", "the registered name of the dataset")
    root: Optional[str] = root_key(
        f"the folder holding {FOLDER}/ (or that folder itself), with data_batch_1..5, test_batch and {META}"
    )
    num_classes: int = num_classes_key(10, f"the number of classes (checked against {META}'s label_names)")
    image_size: int = image_size_key(32, "another size resizes every image (bilinear)")
    mean: List[float] = mean_key([0.4914, 0.4822, 0.4465], "per-channel mean of the 50,000 training images")
    std: List[float] = std_key([0.2470, 0.2435, 0.2616], "per-channel standard deviation of the training images")
    num_workers: int = num_workers_key(0, "data-loader worker processes (images are held in memory)")


@register_dataset("cifar10", config=CIFAR10Config)
def cifar10(cfg) -> ImageTask:
    """CIFAR-10 at ``dataset.root`` (never downloaded): 50,000 training and 10,000 test images of 32x32, 10 classes."""
    folder = find_folder(cfg.root, FOLDER, [*SPLIT_FILES["train"], *SPLIT_FILES["test"], META], "cifar10", LAYOUT)
    names, splits = read_cifar10(folder, cfg.num_classes)
    return array_task(cfg, names, splits)
