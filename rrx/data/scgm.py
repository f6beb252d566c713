"""The Spinal Cord Grey Matter Segmentation challenge (Prados et al., NeuroImage 2017; thesis 3.2.1), read with nibabel:
``dataset=scgm``, a segmentation dataset (``task=segmentation``).

Published layout (the training archive, one flat folder; ``dataset.root`` points at it)::

    site<N>-sc<XX>-image.nii.gz        T2* MRI volume of subject XX at site N
    site<N>-sc<XX>-mask-r<K>.nii.gz    rater K's manual segmentation (K = 1..4): grey matter 1, white matter 2, else 0
    site<N>-sc<XX>-levels.txt          vertebral levels (not read)

Verified from public code that reads the archive: the file names (medicaltorch's ``SCGMChallenge2D``, Perone et al.;
the curation script of the BIDS version, ``curate_gmsegchallenge2016.py``), four raters per subject, the label
values (that script makes grey matter with ``-uthr 1`` and white matter with ``-bin 1``), four sites (site1 UCL,
site2 Polytechnique Montreal, site3 Zurich, site4 Vanderbilt), 40 training and 40 test subjects, 10 per site each;
masks only for training. Unverified: that the training subjects are numbered sc01-sc10 at each site (rrx lists
whatever ``site*-sc*-image.nii.gz`` files exist), and the in-plane sizes and spacings per site (rrx reads them from
each file).

rrx's choices (the thesis does not state them): each volume is reoriented to the closest canonical (RAS) axes
(``nibabel.as_closest_canonical``), so its axial slices are ``[:, :, k]``; intensities are scaled per volume to
[0, 1] by its minimum and maximum; each slice is padded with zeros to a square and resized to
``dataset.image_size`` (bilinear for the image, nearest for the mask), and its pixel spacing is kept for HSD in mm.
The ground truth is ``dataset.tissue`` (``gm``: label 1, ``wm``: label 2, ``sc``: the cord, 1 or 2) marked by
more than ``dataset.vote`` of the raters in ``dataset.raters`` (0.5 with four raters: at least three, the
majority). ``dataset.val_subject_fraction`` of the subjects (0.2, as the thesis) are held out for validation, drawn
with ``dataset.split_seed``; whole subjects, so no subject's slices are in both.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, cast

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from rrx.config import param
from rrx.data import register_dataset
from rrx.data.base import (
    Benchmark,
    DatasetConfig,
    fraction_key,
    image_size_key,
    mean_key,
    num_workers_key,
    root_key,
    std_key,
)
from rrx.data.image_io import resize
from rrx.data.image_task import NEVER_DOWNLOADS
from rrx.errors import RRXError

log = logging.getLogger(__name__)
LAYOUT = "<root>/site<N>-sc<XX>-image.nii.gz with site<N>-sc<XX>-mask-r<K>.nii.gz per rater (the SCGM training archive)"
IMAGE = re.compile(r"^(site\d+-sc\d+)-image\.nii(\.gz)?$")
TISSUES = {"gm": (1,), "wm": (2,), "sc": (1, 2)}  # dataset.tissue: the mask label values of each tissue


@dataclass
class SCGMConfig(DatasetConfig):
    """Spinal Cord Grey Matter Segmentation challenge (Prados et al. 2017; thesis 3.2.1), for task=segmentation

    The training archive's NIfTI volumes as 2-D axial slices, the raters' masks by majority vote (rrx.data.scgm).
    """

    name: str = param("scgm", "the registered name of the dataset")
    root: Optional[str] = root_key(
        "the training folder: site1-sc01-image.nii.gz, site1-sc01-mask-r1.nii.gz .. -mask-r4.nii.gz, ... "
        "(rrx downloads nothing)"
    )
    image_size: int = image_size_key(128, "each slice padded to a square, then resized (a multiple of 8 for the U-Net)")
    tissue: str = param(
        "gm", "the tissue to segment: gm (mask label 1) | wm (label 2) | sc (the cord: 1 or 2)", choices=tuple(TISSUES)
    )
    raters: List[int] = param([1, 2, 3, 4], "the raters whose masks vote (1..4)", low=1)
    vote: float = param(
        0.5,
        "foreground where more than this share of the raters mark it (0.5 of 4: at least 3, the majority)",
        low=0.0,
        high=1.0,
        high_open=True,
    )
    val_subject_fraction: float = fraction_key(
        0.2, "share of the subjects held out for validation, whole subjects (the thesis's 20 % of training)"
    )
    split_seed: int = param(0, "the draw of the validation subjects")
    mean: List[float] = mean_key([0.5], "intensities are scaled to [0, 1] per volume; these centre them for the U-Net")
    std: List[float] = std_key([0.25])
    num_workers: int = num_workers_key(0)


def list_subjects(root: Path) -> dict[str, Path]:
    """{``site1-sc01``: its image file} for every image in ``root``; an error naming the layout when there are none."""
    if not root.is_dir():
        raise RRXError(f"dataset.root={root} does not exist (expected {LAYOUT}); {NEVER_DOWNLOADS}")
    found = {m.group(1): p for p in sorted(root.iterdir()) if (m := IMAGE.match(p.name))}
    if not found:
        raise RRXError(
            f"dataset.root={root} holds no site<N>-sc<XX>-image.nii.gz (expected {LAYOUT}); {NEVER_DOWNLOADS}"
        )
    return found


def _load(path: Path):
    import nibabel as nib
    from nibabel.spatialimages import SpatialImage

    try:
        img = cast(SpatialImage, nib.load(str(path)))  # a NIfTI file (nib.load's hint is any image file)
        shape = img.shape
        data = nib.as_closest_canonical(img)
        return shape, data.get_fdata(dtype=np.float32), tuple(float(z) for z in data.header.get_zooms()[:2])
    except Exception as err:  # nibabel raises several types for a bad file (ImageFileError, EOFError, OSError, ...)
        raise RRXError(f"cannot read NIfTI file {path}: {err}") from err


def load_subject(image_path: Path, subject: str, raters, tissue: str, vote: float):
    """(volume (X, Y, Z) in [0, 1], ground truth (X, Y, Z) bool, in-plane spacing (2,)) of one subject.

    A missing rater mask, a volume that is not 3-D, or a mask whose shape differs from the image's stops with the
    file named.
    """
    shape, volume, spacing = _load(image_path)
    if volume.ndim != 3:
        raise RRXError(f"{image_path} has shape {shape}: expected a 3-D volume")
    votes = np.zeros(volume.shape, dtype=np.int32)
    suffix = image_path.name.removeprefix(f"{subject}-image")  # .nii.gz (or .nii)
    for rater in raters:
        path = image_path.with_name(f"{subject}-mask-r{rater}{suffix}")
        if not path.is_file():
            raise RRXError(f"missing mask {path} of rater {rater} for {image_path.name} (expected {LAYOUT})")
        mask_shape, mask, _ = _load(path)
        if mask_shape != shape:
            raise RRXError(f"mask {path} has shape {mask_shape}, its image {image_path.name} has shape {shape}")
        votes += np.isin(np.rint(mask), TISSUES[tissue])
    low, high = float(volume.min()), float(volume.max())
    volume = (volume - low) / (high - low) if high > low else np.zeros_like(volume)
    return volume, votes > vote * len(raters), spacing


def axial_slices(volume: np.ndarray, truth: np.ndarray, spacing, size: int):
    """Every axial slice padded to a square and resized to ``size``: images (Z, 1, S, S), masks (Z, 1, S, S),
    pixel spacings (Z, 2)."""
    x, y, _ = volume.shape
    side = max(x, y)
    pad = ((side - x) // 2, side - x - (side - x) // 2), ((side - y) // 2, side - y - (side - y) // 2), (0, 0)
    volume, truth = np.pad(volume, pad), np.pad(truth, pad)
    images = torch.from_numpy(np.ascontiguousarray(volume.transpose(2, 0, 1)))[:, None]
    masks = torch.from_numpy(np.ascontiguousarray(truth.transpose(2, 0, 1))).float()[:, None]
    images = torch.stack([resize(im, size, "bilinear") for im in images]).clamp(0, 1)
    masks = torch.stack([resize(m, size, "nearest") for m in masks])
    pixel = torch.tensor(spacing, dtype=torch.float64) * side / size
    return images, masks, pixel.expand(len(images), 2)


def split_subjects(subjects: list[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(training, validation) subjects: ``round(val_fraction * n)`` (at least one) drawn with ``seed``."""
    if len(subjects) < 2:
        raise RRXError(
            f"dataset=scgm found {len(subjects)} subject ({', '.join(subjects)}); a validation split needs at least 2"
        )
    n_val = min(len(subjects) - 1, max(1, round(val_fraction * len(subjects))))
    order = np.random.default_rng(seed).permutation(len(subjects))
    val = sorted(subjects[i] for i in order[:n_val])
    return [s for s in subjects if s not in val], val


class SCGM(Benchmark):
    """The training and validation slices of the SCGM training archive (``load_scgm``).

    Items are (x (1, S, S) in [0, 1], 0, m (1, S, S) in {0, 1}): one channel, the label 0 for every slice (its one
    "class" is the tissue, which the segmentation ignores), the raters' majority mask. ``variation_set("original")``
    is the validation split; ``spacing("original")`` its pixel sizes in mm.
    """

    has_masks = True

    def __init__(
        self, cfg, root: Path, train: TensorDataset, val: TensorDataset, val_spacing: torch.Tensor, info: dict
    ):
        self.name, self.root = cfg.name, root
        self.classes, self.num_classes = [cfg.tissue], 1
        self.image_size = int(cfg.image_size)
        self.mean, self.std = list(cfg.mean), list(cfg.std)
        self.train, self.val, self.val_spacing, self.info = train, val, val_spacing, info

    def train_set(self, masks: bool) -> TensorDataset:
        return self.train if masks else TensorDataset(*self.train.tensors[:2])

    def variation_set(self, variation: str, masks: bool = False) -> TensorDataset:
        if variation != "original":
            raise RRXError(
                f"dataset {self.name} has only the 'original' variation (its validation subjects), not {variation!r}"
            )
        return self.val if masks else TensorDataset(*self.val.tensors[:2])

    def spacing(self, variation: str) -> torch.Tensor:
        self.variation_set(variation)
        return self.val_spacing

    def describe_split(self, train: Dataset, val: Dataset) -> dict:
        return self.info


@register_dataset("scgm", config=SCGMConfig)
def load_scgm(cfg) -> SCGM:
    """The SCGM training archive at ``cfg.root`` as training and validation slices."""
    if not cfg.root:
        raise RRXError(
            f"dataset=scgm needs dataset.root=<the SCGM training folder> (expected {LAYOUT}); {NEVER_DOWNLOADS}"
        )
    raters = [int(r) for r in cfg.raters]
    if not raters:
        raise RRXError("dataset.raters is empty: give the raters whose masks vote, e.g. dataset.raters=[1,2,3,4]")
    root = Path(cfg.root).expanduser()
    subjects = list_subjects(root)
    train_subjects, val_subjects = split_subjects(list(subjects), float(cfg.val_subject_fraction), int(cfg.split_seed))
    parts = {}
    for split, names in (("train", train_subjects), ("val", val_subjects)):
        images, masks, spacing = [], [], []
        for name in names:
            volume, truth, pixel = load_subject(subjects[name], name, raters, cfg.tissue, float(cfg.vote))
            i, m, s = axial_slices(volume, truth, pixel, int(cfg.image_size))
            images.append(i)
            masks.append(m)
            spacing.append(s)
        stacked, stacked_masks = torch.cat(images), torch.cat(masks)
        parts[split] = (
            TensorDataset(stacked, torch.zeros(len(stacked), dtype=torch.long), stacked_masks),
            torch.cat(spacing),
        )
        log.info("scgm %s: %d subjects, %d slices", split, len(names), len(stacked))
    info = {
        "train_subjects": train_subjects,
        "val_subjects": val_subjects,
        "train_images": len(parts["train"][0]),
        "val_images": len(parts["val"][0]),
        "tissue": cfg.tissue,
        "raters": raters,
        "vote": float(cfg.vote),
    }
    return SCGM(cfg, root, parts["train"][0], parts["val"][0], parts["val"][1], info)
