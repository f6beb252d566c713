"""Background-challenge datasets in the IN-9 layout: the synthetic benchmark and IN-9 itself."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from torch.utils.data import Dataset

from rrx.data import check_classes, register_dataset
from rrx.data.in9 import BAD_SAMPLE_RULES, IN9Folder
from rrx.data.preload import maybe_preload
from rrx.data.synthetic import SyntheticSpec, materialise
from rrx.errors import RRXError, check_choice

log = logging.getLogger(__name__)
TRAIN_SOURCES = ("original", "in9l")


class BackgroundDataset:
    """A ``bg_challenge`` root: the training set and every evaluation variation.

    Args:
        root (Path): the ``bg_challenge`` folder.
        cfg: the dataset config: ``name``, ``num_classes``, ``image_size``, ``mean``, ``std``,
            ``train_source`` (``original`` or ``in9l``), ``mask_threshold``, ``on_bad_sample``
            (``error`` or ``skip``) and ``val_per_class`` (expected images per class in val).
    """

    has_masks = True

    def __init__(self, root: Path, cfg):
        self.name = cfg.name
        self.root = Path(root).expanduser()
        self.num_classes = cfg.num_classes
        self.image_size = cfg.image_size
        self.mean, self.std = list(cfg.mean), list(cfg.std)
        self.mask_threshold = cfg.mask_threshold
        self.val_per_class = cfg.val_per_class
        check_choice("dataset.on_bad_sample", cfg.on_bad_sample, BAD_SAMPLE_RULES)
        check_choice("dataset.train_source", cfg.train_source, TRAIN_SOURCES)
        self.skip_bad = cfg.on_bad_sample == "skip"
        self.train_source = cfg.train_source
        self.preload_gb, self.num_workers = float(cfg.preload_gb), int(cfg.num_workers)
        self._folders: dict[tuple[str, str, bool], IN9Folder] = {}  # listed (and checked) once per run
        self._classes: list[str] | None = None  # the first folder listed (the training set), or the checkpoint's
        self.skipped: dict[str, list[str]] = {}  # "<variation>/<split>" -> the bad samples dropped

    @property
    def classes(self) -> list[str] | None:
        return self._classes

    def expect_classes(self, names: list[str]) -> None:
        """Every folder listed from now on must have exactly these class folders (a checkpoint's training classes)."""
        self._classes = list(names)

    def train_set(self, masks: bool) -> IN9Folder:
        if masks and self.train_source == "in9l":
            raise RRXError("dataset.train_source=in9l has no object masks; this method needs them: use train_source=original")
        return self._folder(self.train_source, "train", masks)

    def variation_set(self, variation: str, masks: bool = False) -> IN9Folder:
        return self._folder(variation, "val", masks)

    def _folder(self, variation: str, split: str, masks: bool) -> IN9Folder:
        key = (variation, split, masks)
        if key in self._folders:
            return self._folders[key]
        masked = self._folders.get((variation, split, True))
        if not masks and masked is not None and not masked.skipped:  # read (and preloaded) once, masks dropped
            self._folders[key] = WithoutMasks(masked)  # (not when images were skipped for their masks alone)
            return self._folders[key]
        data = IN9Folder(self.root, variation, split, self.image_size, masks, self.mask_threshold, self.skip_bad)
        folder = self.root / variation / split
        if self._classes is None:
            if len(data.classes) != self.num_classes:
                raise RRXError(f"{folder} has {len(data.classes)} class folders {data.classes}, "
                               f"dataset.num_classes={self.num_classes}; set dataset.num_classes to match")
            self._classes = data.classes
        else:
            check_classes(data.classes, self._classes, str(folder))
        if data.skipped:
            self.skipped[f"{variation}/{split}"] = data.skipped
        counts = Counter(label for _, label in data.samples)
        per_class = [counts[k] for k in range(self.num_classes)]
        log.info("%s/%s: %d images, per class %s%s", variation, split, len(data), per_class,
                 f", {len(data.skipped)} skipped" if data.skipped else "")
        if split == "val" and self.val_per_class and any(n != self.val_per_class for n in per_class):
            log.warning("%s/%s has %s images per class; expected %d per class", variation, split, per_class, self.val_per_class)
        data = maybe_preload(data, self.image_size, masks, self.preload_gb, self.num_workers, f"{variation}/{split}")
        self._folders[key] = data
        return data


class WithoutMasks(Dataset):
    """A dataset of (x, y, m) items as (x, y): a variation already read with its masks serves the challenges that
    read it without (``byte_item`` too, so its batches still cross the loader boundary as bytes); its other
    attributes (``samples``, ``classes``, ...) are ``masked``'s."""

    def __init__(self, masked: Dataset):
        self.masked = masked

    def __len__(self) -> int:
        return len(self.masked)

    def __getitem__(self, index: int):
        return self.masked[index][:2]

    def byte_item(self, index: int):
        return self.masked.byte_item(index)[:2]

    def __getattr__(self, name: str):
        if name == "masked":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.masked, name)


@register_dataset("synthetic")
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
    return BackgroundDataset(root, cfg)


@register_dataset("in9")
def in9(cfg) -> BackgroundDataset:
    """A real ImageNet-9 ``bg_challenge`` root given by ``dataset.root``."""
    if not cfg.root:
        raise RRXError("dataset=in9 needs dataset.root=<path to bg_challenge>")
    return BackgroundDataset(Path(cfg.root), cfg)
