"""Waterbirds (Sagawa et al. 2020): CUB birds pasted onto Places backgrounds, the spurious-correlation benchmark
of group DRO, WILDS and DFR (``dataset=waterbirds``).

Layout (as group_DRO's generator and WILDS write it)::

    <root>/metadata.csv                    img_id, img_filename, y, split, place (and place_filename)
    <root>/<img_filename>                  e.g. 001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg
    <masks_root>/<img_filename, .png>      optional: CUB-200-2011's segmentations/ folder (the birds' masks)

``y`` is 0 landbird, 1 waterbird; ``place`` 0 land, 1 water; ``split`` 0 train, 1 val, 2 test. The groups are
(y, place), four of them; in the training split 95 % of the waterbirds are on water and of the landbirds on land,
in val and test the places are balanced within each class. The test split is the ``original`` variation and
``place`` is each image's ``background_class`` (``rrx.predictions``), so its worst-group accuracy
(``rrx.challenges.groups``) is the dataset's headline number; the val split is not read yet. CUB's segmentations
have the images' sizes
(the generator pastes each bird onto a background of its image's size): a pixel is object where the (soft,
annotator-averaged) segmentation is above one half.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from rrx.config import param
from rrx.data import register_dataset
from rrx.data.base import AugmentedConfig, image_size_key, mean_key, num_workers_key, root_key, std_key, unwrapped
from rrx.data.image_io import BAD_SAMPLE_RULES, keep_readable, load_rgb, resize
from rrx.data.image_task import ImageTask
from rrx.errors import RRXError

CLASSES = ["landbird", "waterbird"]  # y
PLACES = ["land", "water"]  # place: the background's class
SPLITS = {"train": 0, "val": 1, "test": 2}
COLUMNS = ("img_filename", "y", "split", "place")
LAYOUT = "<root>/metadata.csv (img_filename, y, split, place) and the images at <root>/<img_filename>"
MASK_LAYOUT = "<masks_root>/<img_filename with .png> (CUB-200-2011's segmentations/ folder)"


@dataclass
class WaterbirdsConfig(AugmentedConfig):
    """Waterbirds (group DRO's CUB x Places): metadata.csv with img_filename, y, split, place; groups (y, place)"""

    name: str = param("waterbirds", "the registered name of the dataset")
    root: Optional[str] = root_key("the folder with metadata.csv (e.g. waterbird_complete95_forest2water2)")
    masks_root: Optional[str] = param(None, "CUB-200-2011's segmentations/ folder: the birds' masks (optional)")
    num_classes: int = param(2, "landbird, waterbird", choices=(2,))
    image_size: int = image_size_key(224, "images and masks are resized to this square size")
    mean: List[float] = mean_key([0.485, 0.456, 0.406], "per-channel mean (ImageNet's, as the reference models)")
    std: List[float] = std_key([0.229, 0.224, 0.225], "per-channel standard deviation (ImageNet's)")
    on_bad_sample: str = param(
        "error", "error | skip (check every image at load, log and count the bad ones)", choices=BAD_SAMPLE_RULES
    )
    num_workers: int = num_workers_key(4)


def read_metadata(root: Path) -> list[dict]:
    """The rows of ``<root>/metadata.csv`` with ``img_filename`` (str), ``y``, ``split`` and ``place`` (int); a
    missing file, column or a value out of range is one RRXError naming it."""
    path = root / "metadata.csv"
    if not path.is_file():
        raise RRXError(f"dataset.root={root}: no metadata.csv (expected {LAYOUT})")
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise RRXError(f"{path}: no column {', '.join(missing)} (expected {', '.join(COLUMNS)})")
        rows = []
        for line, row in enumerate(reader, start=2):
            try:
                found = {"img_filename": row["img_filename"], **{k: int(row[k]) for k in ("y", "split", "place")}}
            except ValueError as err:
                raise RRXError(f"{path}, line {line}: {err}") from None
            if found["y"] not in (0, 1) or found["place"] not in (0, 1) or found["split"] not in SPLITS.values():
                raise RRXError(f"{path}, line {line}: y and place are 0 or 1, split 0, 1 or 2; got {row}")
            rows.append(found)
    return rows


class WaterbirdsImages(Dataset):
    """One split: items ``(x, y)`` or, with ``masks_root``, ``(x, y, m)``; ``samples`` are (path, y) and ``places``
    each image's place."""

    def __init__(
        self, root: Path, rows: list[dict], image_size: int, masks_root: Path | None = None, skip_bad: bool = False
    ):
        self.root, self.image_size, self.masks_root = root, image_size, masks_root
        self.samples = [(root / r["img_filename"], r["y"]) for r in rows]
        self.places = [r["place"] for r in rows]
        self.files = [r["img_filename"] for r in rows]
        self.skipped: list[str] = []
        if skip_bad:
            kept, self.skipped = keep_readable(list(range(len(rows))), lambda i: self[i])
            self.samples = [self.samples[i] for i in kept]
            self.places = [self.places[i] for i in kept]
            self.files = [self.files[i] for i in kept]

    @property
    def labels(self) -> list[int]:
        return [y for _, y in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def mask_path(self, index: int) -> Path:
        assert self.masks_root is not None
        return (self.masks_root / self.files[index]).with_suffix(".png")

    def __getitem__(self, index: int):
        path, label = self.samples[index]
        array = load_rgb(path)  # (H, W, 3)
        x = resize(torch.from_numpy(array).permute(2, 0, 1), self.image_size, "bilinear")
        if self.masks_root is None:
            return x, label
        mask_file = self.mask_path(index)
        if not mask_file.is_file():
            raise RRXError(f"no mask for image {path}: expected {mask_file} ({MASK_LAYOUT})")
        with Image.open(mask_file) as img:
            mask = np.asarray(img.convert("L")) > 127  # CUB's soft segmentation above one half
        if mask.shape != array.shape[:2]:
            raise RRXError(f"mask {mask_file} has size {mask.shape}, its image {path} has size {array.shape[:2]}")
        m = torch.from_numpy(mask.astype(np.float32))[None]
        return x, label, resize(m, self.image_size, "nearest")


class Waterbirds(ImageTask):
    """The train split to train on, the test split as ``original``, each image's place as its background class."""

    def image_info(self, variation: str, data: Dataset) -> dict[str, list]:
        images = data if isinstance(data, WaterbirdsImages) else getattr(data, "source", data)
        if not isinstance(images, WaterbirdsImages):
            return super().image_info(variation, data)
        return {"image": list(images.files), "background_class": [PLACES[p] for p in images.places]}

    def training_background_classes(self, train_set) -> list[str] | None:
        """Each training image's ``place`` (land or water): the groups (y, place) of group DRO and the rest."""
        base, indices = unwrapped(train_set)
        images = base if isinstance(base, WaterbirdsImages) else getattr(base, "source", base)
        if not isinstance(images, WaterbirdsImages):
            return None
        places = [PLACES[p] for p in images.places]
        return places if indices is None else [places[i] for i in indices]


@register_dataset("waterbirds", config=WaterbirdsConfig)
def waterbirds(cfg) -> Waterbirds:
    """Waterbirds at ``dataset.root`` (its ``metadata.csv``), masks from ``dataset.masks_root`` where given."""
    if not cfg.root:
        raise RRXError(f"dataset=waterbirds needs dataset.root=<folder> (expected {LAYOUT})")
    root = Path(cfg.root).expanduser()
    rows = read_metadata(root)
    masks_root = Path(cfg.masks_root).expanduser() if cfg.masks_root else None
    if masks_root is not None and not masks_root.is_dir():
        raise RRXError(f"dataset.masks_root={masks_root} does not exist (expected {MASK_LAYOUT})")

    def load(split: str, masks: bool) -> WaterbirdsImages:
        chosen = [r for r in rows if r["split"] == SPLITS[split]]
        if not chosen:
            raise RRXError(f"{root / 'metadata.csv'} has no image of split {SPLITS[split]} ({split})")
        return WaterbirdsImages(
            root, chosen, cfg.image_size, masks_root if masks else None, cfg.on_bad_sample == "skip"
        )

    return Waterbirds(
        cfg.name,
        CLASSES,
        load,
        cfg.mean,
        cfg.std,
        cfg.image_size,
        has_masks=masks_root is not None,
        masks_layout=MASK_LAYOUT + ": give dataset.masks_root",
    )
