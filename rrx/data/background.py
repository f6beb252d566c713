"""Background-challenge datasets in the IN-9 layout: the synthetic benchmark and IN-9 itself."""

from __future__ import annotations

import logging
from pathlib import Path

from rrx.data import register_dataset
from rrx.data.in9 import IN9Folder
from rrx.data.synthetic import SyntheticSpec, materialise
from rrx.errors import RRXError

log = logging.getLogger(__name__)


class BackgroundDataset:
    """A ``bg_challenge`` root: the training set and every evaluation variation.

    Args:
        name (str): dataset name written into results.
        root (Path): the ``bg_challenge`` folder.
        num_classes (int): expected number of class folders.
        image_size (int): square input size of the model.
        mean, std (list[float]): the normalisation the model applies to [0, 1] inputs.
    """

    def __init__(self, name: str, root: Path, num_classes: int, image_size: int, mean, std):
        self.name = name
        self.root = Path(root).expanduser()
        self.num_classes = num_classes
        self.image_size = image_size
        self.mean, self.std = list(mean), list(std)

    def train_set(self, masks: bool) -> IN9Folder:
        return self._folder("original", "train", masks)

    def variation_set(self, variation: str, masks: bool = False) -> IN9Folder:
        return self._folder(variation, "val", masks)

    def _folder(self, variation: str, split: str, masks: bool) -> IN9Folder:
        data = IN9Folder(self.root, variation, split, self.image_size, masks=masks)
        if len(data.classes) != self.num_classes:
            raise RRXError(
                f"{self.root / variation / split} has {len(data.classes)} class folders, "
                f"dataset.num_classes={self.num_classes}; set dataset.num_classes to match"
            )
        return data


@register_dataset("synthetic")
def synthetic(cfg) -> BackgroundDataset:
    """The embedded benchmark, generated into ``cfg.cache_dir`` unless ``cfg.root`` is given."""
    if cfg.root:
        root = Path(cfg.root)
    else:
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
    return BackgroundDataset(cfg.name, root, cfg.num_classes, cfg.image_size, cfg.mean, cfg.std)


@register_dataset("in9")
def in9(cfg) -> BackgroundDataset:
    """A real ImageNet-9 ``bg_challenge`` root given by ``dataset.root``."""
    if not cfg.root:
        raise RRXError("dataset=in9 needs dataset.root=<path to bg_challenge>")
    return BackgroundDataset(cfg.name, Path(cfg.root), cfg.num_classes, cfg.image_size, cfg.mean, cfg.std)
