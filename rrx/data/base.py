"""The one contract of a dataset: what every entry of the dataset registry returns (``create_dataset(cfg)``).

Training, the challenges, the analyses, segmentation and the Model Inspector read a dataset only through
``Benchmark``; none of them asks which dataset it is or probes it for attributes. A member a dataset lacks has its
meaning on the base class (no masks, no variations besides ``original``, no map from ImageNet-1k classes).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, List, Mapping, Sized, cast

import torch
from torch.utils.data import Dataset, Subset, TensorDataset

from rrx.config import ComponentConfig, param
from rrx.data.augment import AUGMENTATIONS, DATASET_AUGMENTS
from rrx.errors import RRXError

# The keys several datasets have, each with its range written once (a dataset's config may give its own help).
GIVEN_BY_EACH = "???"  # OmegaConf's missing value: a key every dataset's own config gives a default (a dataclass
# default all the same, so a shared base may leave it to the datasets in any order)


def root_key(help: str) -> Any:
    """``dataset.root``: None until given (the dataset's factory then names what it needs)."""
    return param(None, help)


def num_classes_key(default, help: str = "the number of classes") -> Any:
    return param(default, help, low=2)


def image_size_key(default, help: str = "the side images (and masks) are resized to") -> Any:
    return param(default, help, low=1)


def mean_key(default, help: str = "per-channel normalisation mean") -> Any:
    return param(default, help, low=0.0, high=1.0)


def std_key(default, help: str = "per-channel normalisation standard deviation") -> Any:
    return param(default, help, low=0.0, low_open=True)


def num_workers_key(default, help: str = "data-loader worker processes (0: read in the training process)") -> Any:
    return param(default, help, low=0)


def fraction_key(default, help: str) -> Any:
    """A share strictly between 0 and 1 (of images or subjects held out)."""
    return param(default, help, low=0.0, high=1.0, low_open=True, high_open=True)


@dataclass
class DatasetConfig(ComponentConfig):
    """what every dataset has: its image size and normalisation, and the loader's workers"""

    image_size: int = image_size_key(GIVEN_BY_EACH)
    mean: List[float] = mean_key(GIVEN_BY_EACH)
    std: List[float] = std_key(GIVEN_BY_EACH)
    num_workers: int = num_workers_key(GIVEN_BY_EACH)


@dataclass
class AugmentedConfig(DatasetConfig):
    """a dataset whose training batches can be augmented (rrx.data.augment), masks moved alike"""

    augment: str = param(
        "none",
        f"training augmentation: none | crop_flip ({AUGMENTATIONS['crop_flip']}; masks moved alike)",
        choices=DATASET_AUGMENTS,
    )
    augment_scale: List[float] = param(
        [0.35, 1.0],
        "augment=crop_flip: crop area, a fraction of the image's [low, high]",
        low=0.0,
        high=1.0,
        low_open=True,
    )
    augment_ratio: List[float] = param(
        [0.75, 1.3333], "augment=crop_flip: crop aspect ratio w / h [low, high]", low=0.0, low_open=True
    )


def check_classes(found: list[str], expected: list[str], where: str) -> None:
    """Stop unless the class names ``found`` at ``where`` equal the training classes ``expected`` (same names,
    same order: label k is the k-th name), naming the missing and unexpected ones."""
    found, expected = list(found), list(expected)
    if found == expected:
        return
    missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    order = "" if missing or extra else f"; same names in another order: {found}"
    raise RRXError(
        f"{where}: classes differ from the training classes (missing {missing}, unexpected {extra}{order}); "
        "every variation must have the training classes, or its labels shift"
    )


class Benchmark(ABC):
    """A dataset: its training set and its evaluation variations, with what a model and a report need to know.

    Every registered dataset subclasses it (``rrx.data.register_dataset``) and sets the attributes in its
    ``__init__``; the class attributes below are the defaults of a dataset that does not have the thing.

    Attributes:
        name (str): ``dataset.name``.
        classes (list[str] | None): class names, label k is ``classes[k]``; None while a folder dataset has not
            listed its first folder yet (the IN-9 layout learns them from it, unless ``expect_classes`` gave them).
        num_classes (int): the number of classes.
        mean, std (list[float]): the per-channel normalisation of its images.
        image_size (int | None): the side a model is built and inspected at where the dataset fixes one (the
            ``dataset.image_size`` its folders are resized to); None: the model's own (the tensor datasets, the
            patch task). Default: None.
        has_masks (bool): whether it has object masks (``train_set(masks=True)`` gives them). Default: False.
        masks_layout (str | None): where masks would be, for the error of a dataset without them. Default: None.
        root (Path | None): the folder its files are read from; None when it is held in memory. Default: None.
        skipped (Mapping[str, list[str]]): per split or folder, the unreadable samples dropped
            (``dataset.on_bad_sample=skip``). Default: none.

    Example: ``dataset.train_set(masks=True)[0]`` is (x (3, S, S) in [0, 1], label, m (1, S, S) in {0, 1}).
    """

    name: str
    classes: list[str] | None
    num_classes: int
    mean: list[float]
    std: list[float]
    image_size: int | None = None
    has_masks: bool = False
    masks_layout: str | None = None
    root: Path | None = None
    skipped: Mapping[str, list[str]] = MappingProxyType({})

    @abstractmethod
    def train_set(self, masks: bool) -> Dataset:
        """The training images: items (x, y), or (x, y, m) with ``masks``."""

    @abstractmethod
    def variation_set(self, variation: str, masks: bool = False) -> Dataset:
        """The evaluation images of ``variation`` (one of ``variations()``): items (x, y), or (x, y, m) with ``masks``;
        an RRXError naming the known variations for another."""

    def variations(self) -> list[str]:
        """The evaluation variations it has. Default: ``original`` (its test split) alone."""
        return ["original"]

    def expect_classes(self, names: list[str], where: str) -> None:
        """Stop (RRXError naming ``where``) unless its classes are ``names``, a checkpoint's training classes. A
        dataset whose class folders are listed as they are read checks each one then."""
        assert self.classes is not None  # None only in the folder datasets, which override this (rrx.data.in9)
        check_classes(self.classes, names, where)

    def imagenet_label_map(self, map_name: str = "reference") -> tuple[torch.Tensor, str]:
        """(1000,) its label of each ImageNet-1k class (-1 for none) and the map's name, to score an ImageNet-1k
        model on it (``rrx.data.label_maps``; ``map_name`` is ``dataset.label_map``). Default: no map, an RRXError."""
        raise RRXError(
            f"dataset={self.name} has no mapping from ImageNet-1k classes to its classes: a 1000-class model "
            "cannot be scored on it (mappings exist for in9 and rival10; evaluate a model with this dataset's "
            "classes: checkpoint=<run>, or a zero-shot model=clip/align)"
        )

    def training_background_classes(self, train_set: Dataset) -> list[str] | None:
        """The background class of each item of ``train_set`` (``train_set(...)`` or a ``Subset`` of it), where the
        dataset knows it (the generated benchmark's draws, Waterbirds' ``place``): what the group-robustness methods'
        groups (object class, background class) are made of. Default: None, unknown."""
        return None

    def image_info(self, variation: str, data: Dataset) -> dict[str, list]:
        """Per item of ``data`` (``variation_set(variation)``), in order: ``image``, what names it (its file
        relative to ``root``), and ``background_class``, the class of the image its background came from where the
        dataset knows it (a mixed variation), else None. Default: ``<variation>/<index>`` and None."""
        n = len(cast(Sized, data))
        return {"image": [f"{variation}/{i}" for i in range(n)], "background_class": [None] * n}

    def spacing(self, variation: str) -> torch.Tensor | None:
        """(N, 2) physical size (row, column) of a pixel of each image of ``variation``, for distances in those units
        (the Hausdorff distance of a segmentation); None: distances in pixels. Default: None."""
        return None

    def describe_split(self, train: Dataset, val: Dataset) -> dict:
        """What ``metrics.json`` of a segmentation run records about its training images ``train`` and validation
        images ``val`` (``train_set`` and the ``original`` variation, with masks)."""
        return {
            "train_images": len(cast(Sized, train)),
            "val_images": len(cast(Sized, val)),
            "validation": "the dataset's original evaluation images",
        }


def labels_of(data) -> list[int]:
    """The label of every item: from the dataset's ``labels``, ``samples`` [(path, label)] or ``split.labels`` where
    it lists them (a ``Subset``: its base's at its indices), else by reading every item."""
    if isinstance(data, Subset):
        labels = labels_of(data.dataset)
        return [labels[i] for i in data.indices]
    if isinstance(data, TensorDataset):
        return data.tensors[1].tolist()
    if hasattr(data, "labels"):
        return [int(v) for v in data.labels]
    if hasattr(data, "samples"):
        return [int(label) for _, label in data.samples]
    if hasattr(getattr(data, "split", None), "labels"):  # a RIVAL10 variation: its split holds them
        return [int(v) for v in data.split.labels]
    return [int(data[i][1]) for i in range(len(data))]


def unwrapped(data) -> tuple[Any, list[int] | None]:
    """(the dataset under ``data``'s ``Subset``\\ s, the indices of ``data``'s items in it; None: all, in order)."""
    indices = None
    while isinstance(data, Subset):  # random_split's parts
        indices = [data.indices[i] for i in indices] if indices is not None else list(data.indices)
        data = data.dataset
    return data, indices
