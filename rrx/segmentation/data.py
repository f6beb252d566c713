"""The training and validation images of a segmentation run, with their ground-truth masks.

Items are (x, y, m) as everywhere in rrx: x (C, S, S) in [0, 1], a label y the segmentation ignores, and the mask
m (1, S, S), 1 on the object (the foreground to segment).

Every dataset is a ``rrx.data.base.Benchmark`` from rrx's registry: its training set (with masks) is the training
data and its ``original`` evaluation images the validation data.

- ``dataset=scgm``: the Spinal Cord Grey Matter challenge (``rrx.data.scgm``), 20 % of the training
  subjects held out for validation as in the thesis (3.2.1).
- a dataset with object masks (``synthetic``, the default, ``in9``, ``rival10``,
  ``image_folder`` with masks): the ``original`` evaluation images are the synthetic benchmark's and IN-9's ``val``;
  the object of each image is the foreground.
  On the synthetic benchmark its exact masks are the ground truth, and the background shortcut of the
  classification task is there too (a class-typical background around each object).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from omegaconf import DictConfig
from torch.utils.data import Dataset

from rrx.data import create_dataset
from rrx.errors import RRXError

OBJECT_MASK_DATASETS = ("synthetic", "in9", "rival10", "image_folder")  # datasets whose masks mark an object


@dataclass
class SegmentationData:
    """What a segmentation run reads.

    Args:
        name (str): ``dataset.name``.
        train, val (Dataset): items (x, y, m).
        mean, std (list[float]): per-channel normalisation (the U-Net normalises inside).
        val_spacing (Tensor, optional): (N_val, 2) pixel size (row, column) of each validation image, for HSD in
            physical units (mm for SCGM); None: HSD in pixels.
        info (dict): what ``metrics.json`` records about the data (counts, subjects, ...).
        classes (list[str], optional): the class names of the labels y, where the dataset has classes.
    """

    name: str
    train: Dataset
    val: Dataset
    mean: list[float]
    std: list[float]
    val_spacing: torch.Tensor | None = None
    info: dict = field(default_factory=dict)
    classes: list[str] | None = None

    @property
    def channels(self) -> int:
        return int(self.train[0][0].shape[0])


def create_segmentation_data(cfg: DictConfig) -> SegmentationData:
    """The data of ``cfg`` (the ``dataset`` config); ``task.check_segmentation`` has checked the name."""
    dataset = create_dataset(cfg)
    if not dataset.has_masks:  # the classification hint (a method without masks) does not apply here
        layout = dataset.masks_layout
        raise RRXError(
            f"task=segmentation needs object masks and dataset {dataset.name} has none"
            f"{f' (expected {layout})' if layout else ''}: give one with masks (e.g. dataset=synthetic)"
        )
    train, val = dataset.train_set(masks=True), dataset.variation_set("original", masks=True)
    return SegmentationData(
        cfg.name,
        train,
        val,
        list(dataset.mean),
        list(dataset.std),
        dataset.spacing("original"),
        dataset.describe_split(train, val),
        None if dataset.classes is None else list(dataset.classes),
    )
