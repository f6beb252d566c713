"""RIVAL10 (Moayeri et al., CVPR 2022) in its published layout, with IN-9-style variations.

Layout: ``<root>/{train,test}/ordinary/<wnid>_<n>.JPEG`` (beside each image its
``_attr_labels.npy``, ``_merged_mask.JPEG`` and ``_attr_dict.pkl``, which rrx does not need),
object masks ``<root>/{train,test}/entire_object_masks/<same name>.JPEG``, and
``<root>/meta/wnid_to_class.json`` (wnid -> ImageNet class name) with
``label_mappings.json`` (ImageNet class name -> [RIVAL10 class, label]).

RIVAL10 ships no variations: rrx generates original, only_fg, no_fg, only_bg_b, only_bg_t and
the mixed variations from the masks, with partners drawn once from ``dataset.seed`` (the same
pairing every run). The hole left by a background image's own object is filled by
``dataset.fill``: ``tile`` (default, as IN-9's only_bg_t) or ``black`` (the object's pixels zeroed).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch
from torch.utils.data import Dataset

from rrx.config import param
from rrx.data import register_dataset
from rrx.data.base import (
    AugmentedConfig,
    Benchmark,
    image_size_key,
    mean_key,
    num_classes_key,
    num_workers_key,
    root_key,
    std_key,
)
from rrx.data.image_io import BAD_SAMPLE_RULES, keep_readable, load_rgb, resize
from rrx.data.label_maps import rival10_map
from rrx.data.variations import FILL_RULES, VARIATIONS, background, mixed_partners, only_bg_b, only_bg_t, paste
from rrx.errors import RRXError

log = logging.getLogger(__name__)

CLASSES = ["truck", "car", "plane", "ship", "cat", "dog", "equine", "deer", "frog", "bird"]


@dataclass
class Rival10Config(AugmentedConfig):
    """RIVAL10 (Moayeri et al. 2022): dataset.root=<path>/RIVAL10 (train/, test/, meta/)"""

    name: str = param("rival10", "the registered name of the dataset")
    root: Optional[str] = root_key("the RIVAL10 folder (train/, test/, meta/)")
    meta_dir: Optional[str] = param(None, "null = <root>/meta (wnid_to_class.json, label_mappings.json)")
    num_classes: int = num_classes_key(10)
    image_size: int = image_size_key(224, "images and masks are resized together to this square size")
    mask_threshold: float = param(
        0.5, "entire_object_masks are JPEGs: object = mean grey above this, in [0, 1]", low=0.0, high=1.0
    )
    fill: str = param(
        "tile",
        "hole left by a background's own object in mixed variants: tile (as IN-9 only_bg_t) | black",
        choices=FILL_RULES,
    )
    seed: int = param(0, "the mixed pairing (the same every run)")
    on_bad_sample: str = param(
        "error", "error | skip (check every image at load, log and count the bad ones)", choices=BAD_SAMPLE_RULES
    )
    mean: List[float] = mean_key([0.485, 0.456, 0.406], "per-channel normalisation mean (ImageNet's)")
    std: List[float] = std_key([0.229, 0.224, 0.225], "per-channel normalisation standard deviation (ImageNet's)")
    num_workers: int = num_workers_key(4)


def read_meta(meta_dir: Path) -> tuple[dict, dict]:
    files = [meta_dir / "wnid_to_class.json", meta_dir / "label_mappings.json"]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise RRXError(f"RIVAL10 meta not found: {', '.join(missing)} (from the RIVAL10 release; set dataset.meta_dir)")
    wnid_to_class, label_mappings = (json.loads(f.read_text()) for f in files)
    for name, (rival_class, label) in label_mappings.items():
        if CLASSES[int(label)] != rival_class:
            raise RRXError(
                f"{files[1]}: {name!r} maps to ({rival_class}, {label}), "
                f"but RIVAL10 label {label} is {CLASSES[int(label)]}"
            )
    return wnid_to_class, label_mappings


class Rival10Split:
    """Images, labels and object masks of one split, resized together to ``image_size``."""

    def __init__(
        self,
        root: Path,
        split: str,
        image_size: int,
        wnid_to_class: dict,
        label_mappings: dict,
        mask_threshold: float,
        skip_bad: bool,
    ):
        folder = root / split / "ordinary"
        if not folder.is_dir():
            raise RRXError(f"dataset.root={root} does not match the RIVAL10 layout: missing folder {folder}")
        self.mask_dir = root / split / "entire_object_masks"
        if not self.mask_dir.is_dir():
            raise RRXError(f"dataset.root={root} does not match the RIVAL10 layout: missing folder {self.mask_dir}")
        self.image_size, self.mask_threshold = image_size, mask_threshold
        self.samples = []
        for path in sorted(folder.glob("*.JPEG")):
            if "merged_mask" in path.name:
                continue
            wnid = path.name.split("_")[0]
            if wnid not in wnid_to_class:
                raise RRXError(f"{path}: wnid {wnid} is not in wnid_to_class.json")
            self.samples.append((path, int(label_mappings[wnid_to_class[wnid]][1])))
        if not self.samples:
            raise RRXError(f"{folder} holds no images")
        self.skipped: list[str] = []
        if skip_bad:
            self.samples, self.skipped = keep_readable(self.samples, self.load)
        self.labels = np.array([label for _, label in self.samples])
        counts = Counter(self.labels.tolist())
        log.info(
            "RIVAL10 %s: %d images, per class %s%s",
            split,
            len(self.samples),
            [counts[k] for k in range(10)],
            f", {len(self.skipped)} skipped" if self.skipped else "",
        )

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """x (3, S, S) in [0, 1] and m (1, S, S) in {0, 1}."""
        path, _ = self.samples[index]
        array = load_rgb(path)
        mask_path = self.mask_dir / path.name
        if not mask_path.is_file():
            raise RRXError(f"no mask for image {path}: expected {mask_path}")
        mask = load_rgb(mask_path).mean(axis=2) > self.mask_threshold
        if mask.shape != array.shape[:2]:
            raise RRXError(f"mask {mask_path} has size {mask.shape}, its image {path} has size {array.shape[:2]}")
        x = resize(torch.from_numpy(array).permute(2, 0, 1), self.image_size, "bilinear")
        m = resize(torch.from_numpy(mask.astype(np.float32))[None], self.image_size, "nearest")
        return x, m


class Rival10Variation(Dataset):
    """One variation of a split, generated per item. Items are (x, y) or (x, y, m)."""

    def __init__(self, split: Rival10Split, variation: str, partners: np.ndarray | None, fill: str, masks: bool):
        self.split, self.variation, self.partners, self.fill, self.masks = split, variation, partners, fill, masks

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int):
        x, m = self.split.load(index)
        if self.variation == "only_fg":
            x = x * m
        elif self.variation == "no_fg":
            x = x * (1 - m)
        elif self.variation == "only_bg_b":
            x = only_bg_b(x, m)
        elif self.variation == "only_bg_t":
            x = only_bg_t(x, m)
        elif self.partners is not None:
            x_bg, m_bg = self.split.load(int(self.partners[index]))
            x = paste(x, m, background(x_bg, m_bg, self.fill))
        y = int(self.split.labels[index])
        return (x, y, m) if self.masks else (x, y)


class Rival10(Benchmark):
    """The RIVAL10 dataset: ``train_set`` from ``train/``, variations of ``test/``."""

    has_masks = True
    classes: list[str]
    root: Path

    def __init__(self, cfg):
        self.name = cfg.name
        self.num_classes = cfg.num_classes
        self.image_size = cfg.image_size
        self.classes = list(CLASSES)
        self.mean, self.std = list(cfg.mean), list(cfg.std)
        if not cfg.root:
            raise RRXError("dataset=rival10 needs dataset.root=<path to RIVAL10>")
        self.root = Path(cfg.root).expanduser()
        if not self.root.is_dir():
            raise RRXError(f"dataset.root={self.root} does not exist")
        self.meta: tuple[dict, dict] = read_meta(
            Path(cfg.meta_dir).expanduser() if cfg.meta_dir else self.root / "meta"
        )
        self.cfg = cfg
        self._splits: dict[str, Rival10Split] = {}
        self.skipped: dict[str, list[str]] = {}  # split -> the bad samples dropped (``on_bad_sample=skip``)
        self._partners: dict[str, np.ndarray] | None = None

    def _split(self, split: str) -> Rival10Split:
        if split not in self._splits:
            self._splits[split] = Rival10Split(
                self.root,
                split,
                self.cfg.image_size,
                *self.meta,
                self.cfg.mask_threshold,
                self.cfg.on_bad_sample == "skip",
            )
            if self._splits[split].skipped:
                self.skipped[split] = self._splits[split].skipped
        return self._splits[split]

    def variations(self) -> list[str]:
        return list(VARIATIONS)

    def imagenet_label_map(self, map_name: str = "reference") -> tuple[torch.Tensor, str]:
        """Each ImageNet-1k class its meta files map to a RIVAL10 class (``map_name`` is IN-9's choice, not read)."""
        label_map = rival10_map(*self.meta)
        missing = [c for k, c in enumerate(self.classes) if not (label_map == k).any()]
        if missing:
            raise RRXError(
                f"dataset=rival10: no ImageNet-1k class maps to {missing} in the meta files; "
                "a 1000-class model cannot be scored on them"
            )
        return label_map, "rival10 meta"

    def train_set(self, masks: bool) -> Rival10Variation:
        return Rival10Variation(self._split("train"), "original", None, self.cfg.fill, masks)

    def variation_set(self, variation: str, masks: bool = False) -> Rival10Variation:
        if variation not in VARIATIONS:
            raise RRXError(f"RIVAL10 variation {variation!r}; known: {', '.join(VARIATIONS)}")
        test = self._split("test")
        partners = None
        if variation.startswith("mixed_"):
            if self._partners is None:
                self._partners = mixed_partners(test.labels, np.random.default_rng(self.cfg.seed))
            partners = self._partners[variation]
        return Rival10Variation(test, variation, partners, self.cfg.fill, masks)

    def image_info(self, variation: str, data: Dataset) -> dict[str, list]:
        """Each test image by its file relative to ``root``; a mixed image's ``background_class`` is the class of
        the partner whose background it was pasted onto (``mixed_partners``)."""
        if not isinstance(data, Rival10Variation):
            return super().image_info(variation, data)
        split = data.split
        image = [str(Path(path).relative_to(self.root)) for path, _ in split.samples]
        partners = data.partners
        if partners is None:
            return {"image": image, "background_class": [None] * len(image)}
        return {"image": image, "background_class": [self.classes[int(split.labels[int(j)])] for j in partners]}


@register_dataset("rival10", config=Rival10Config)
def rival10(cfg) -> Rival10:
    return Rival10(cfg)
