"""Does an attribution map fall on the object? Batched metrics of maps against object masks (1 on the object).

Maps are (B, H, W) relevance, masks (B, H, W) or (B, 1, H, W) in {0, 1}. Every metric returns one value per image
(B,), NaN for an image whose mask holds no object pixel (nothing to localise) or whose map is constant, e.g. all zero
(it points nowhere; Quantus refuses such a map).

- Pointing game (Zhang et al. 2018): 1 when a pixel of maximal relevance lies on the object (ties: any of them).
- Relevance mass accuracy (Arras et al. 2022): the share of positive relevance that lies on the object.
- Relevance rank accuracy (Arras et al. 2022): of the |mask| most relevant pixels, the share on the object.
- Weighted IoU (seed 002, Eq. 1): wIoU(p, q) = sum_j p_j q_j / sum_j max(p_j, q_j), p the saliency map normalised
  to [0, 1], q a binary mask; the unweighted IoU of the paper's appendix thresholds p first.
- ObEy (seed 002, Eq. 2): the best wIoU of the map over a set of object masks A_i of the image, all the objects in
  it, whatever the task (segment-anything masks in the paper): ``obey`` (and ``obey_iou``, the appendix's unweighted
  variant), on object masks (B, M, H, W) with a validity flag (B, M).

``rrx analyze analysis=localisation`` and ``analysis=obey`` run them over a model's test images (``Localisation``,
``ObEy``). ObEy's object masks (``analysis.object_masks``) come from

- ``null``: none. The dataset's labelled-object mask is then the only mask, which the paper says does not satisfy its
  requirement (its A.5), so the result is reported as the wIoU with the labelled object (``wiou``, ``iou``), not
  as ObEy;
- ``synthetic``: the synthetic benchmark's generator, which knows each image's segments: the object and every stripe
  of the background it shows (``rrx.data.synthetic.SceneSegments``);
- a folder, one entry per test image of the analysed variation, beside the dataset's own class folders::

      <folder>/<variation>/<class>/<image stem>.npz     array ``masks`` (M, H, W), non-zero on each object
      <folder>/<variation>/<class>/<image stem>/<k>.png  or one PNG per object, non-zero on it

  each at the size of its image file (resized to the analysed size, nearest, as the loaders resize masks). A PNG
  folder is what segment-anything's ``scripts/amg.py --input <root>/<variation>/val/<class> --output
  <folder>/<variation>/<class>`` writes for an image (its ``metadata.csv`` is ignored); an ``.npz`` is
  ``np.savez_compressed(path, masks=np.stack([m["segmentation"] for m in generator.generate(image)]))`` with
  ``generator = SamAutomaticMaskGenerator(sam)``. Masks may overlap; an image without any is undefined. This serves
  the datasets whose test images are files in class folders (``synthetic``, ``in9``, ``image_folder``).
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Subset

from rrx.analyses import register_analysis
from rrx.analyses.common import (
    ATTRIBUTIONS_HELP,
    TARGETS,
    AnalysisConfig,
    attribution_list,
    batches,
    entries,
    explain,
    frame,
    holding,
    pct,
    predict,
    summary,
)
from rrx.config import param
from rrx.data.synthetic import SceneSegments, generated_spec
from rrx.errors import RRXError
from rrx.record import Record
from rrx.tables import Table, thesis_order

log = logging.getLogger(__name__)


def _flat(maps: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, N) maps, (B, N) boolean masks, and (B,) True where the metric is undefined:
    an empty mask or a constant map."""
    a = maps.reshape(maps.shape[0], -1).float()
    s = masks.reshape(masks.shape[0], -1) > 0.5
    if a.shape != s.shape:
        raise ValueError(f"maps {tuple(maps.shape)} and masks {tuple(masks.shape)} differ in size")
    return a, s, (s.sum(1) == 0) | (a.amax(1) == a.amin(1))


def _nan_where(values: torch.Tensor, undefined: torch.Tensor) -> torch.Tensor:
    return torch.where(undefined, torch.full_like(values, float("nan")), values)


def pointing_game(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Pointing game (Zhang et al. 2018, "Top-down neural attention by excitation backprop"): 1 where a pixel of
    maximal relevance lies on the object, max_j a_j attained at some j with s_j = 1 (ties: any of them), else 0.

    Args:
        maps (Tensor): relevance maps (B, H, W), e.g. ``rrx.attribute(...)``.
        masks (Tensor): object masks (B, H, W) or (B, 1, H, W), 1 on the object.

    Returns:
        Tensor (B,): one value per image in [0, 1]; NaN where the mask holds no object pixel or the map is
        constant (it points nowhere; Quantus refuses such a map).
    """
    a, s, undefined = _flat(maps, masks)
    at_max = a == a.max(1, keepdim=True).values
    return _nan_where((at_max & s).any(1).float(), undefined)


def relevance_mass(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Relevance mass accuracy (Arras et al. 2022, "CLEVR-XAI", Eq. 2): the share of positive relevance on the
    object, sum_{j: s_j = 1} max(a_j, 0) / sum_j max(a_j, 0) (Quantus's ``RelevanceMassAccuracy``).

    Args:
        maps (Tensor): relevance maps (B, H, W), e.g. ``rrx.attribute(...)``.
        masks (Tensor): object masks (B, H, W) or (B, 1, H, W), 1 on the object.

    Returns:
        Tensor (B,): one value per image in [0, 1]; NaN where the mask holds no object pixel or the map is
        constant (it points nowhere; Quantus refuses such a map).
    """
    a, s, undefined = _flat(maps, masks)
    positive = a.clamp(min=0)
    return _nan_where((positive * s).sum(1) / positive.sum(1), undefined)


def relevance_rank(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Relevance rank accuracy (Arras et al. 2022, "CLEVR-XAI", Eq. 3): of the K = |mask| most relevant pixels,
    the share on the object, |{top-K pixels of a} ∩ {j: s_j = 1}| / K (ties in rank order, stable; Quantus's
    ``RelevanceRankAccuracy``).

    Args:
        maps (Tensor): relevance maps (B, H, W), e.g. ``rrx.attribute(...)``.
        masks (Tensor): object masks (B, H, W) or (B, 1, H, W), 1 on the object.

    Returns:
        Tensor (B,): one value per image in [0, 1]; NaN where the mask holds no object pixel or the map is
        constant (it points nowhere; Quantus refuses such a map).
    """
    a, s, undefined = _flat(maps, masks)
    k = s.sum(1)  # (B,)
    order = torch.sort(a, dim=1, descending=True, stable=True).indices
    inside = s.gather(1, order)  # the mask along the relevance ranking
    top = torch.arange(a.shape[1], device=a.device)[None] < k[:, None]
    return _nan_where((inside & top).sum(1) / k.clamp(min=1), undefined)


def normalise_map(maps: torch.Tensor) -> torch.Tensor:
    """Each map scaled to [0, 1] by its minimum and maximum (a constant map becomes 0)."""
    flat = maps.reshape(maps.shape[0], -1).float()
    low, high = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    return ((flat - low) / (high - low).clamp(min=1e-12)).reshape(maps.shape)


def weighted_iou(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """ObEy's wIoU between the [0, 1]-normalised maps and the masks."""
    p = normalise_map(maps).reshape(maps.shape[0], -1)
    _, s, undefined = _flat(maps, masks)
    q = s.float()
    return _nan_where((p * q).sum(1) / torch.maximum(p, q).sum(1).clamp(min=1e-12), undefined)


def iou(maps: torch.Tensor, masks: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """The unweighted variant: IoU of {normalised map >= threshold} with the mask."""
    p = normalise_map(maps).reshape(maps.shape[0], -1) >= threshold
    _, s, undefined = _flat(maps, masks)
    return _nan_where((p & s).sum(1) / (p | s).sum(1).clamp(min=1), undefined)


def _best_over_masks(maps: torch.Tensor, object_masks: torch.Tensor, valid: torch.Tensor | None, score) -> torch.Tensor:
    """max over the valid, non-empty masks A_i of ``score(p, q, |q|)``, p (B, N) the normalised maps, q (B, M, N) the
    masks as floats; NaN where the map is constant or no mask is left."""
    b, m = object_masks.shape[:2]
    if object_masks.shape[2:] != maps.shape[1:]:
        raise ValueError(f"maps {tuple(maps.shape)} and object masks {tuple(object_masks.shape)} differ in size")
    if m == 0:
        return torch.full((b,), float("nan"), device=maps.device)
    p = normalise_map(maps).reshape(b, -1)
    q = object_masks.reshape(b, m, -1) > 0.5
    present = q.any(-1) if valid is None else q.any(-1) & valid.bool()  # (B, M)
    flat = maps.reshape(b, -1)
    undefined = (flat.amax(1) == flat.amin(1)) | ~present.any(1)
    qf = q.to(p.dtype)
    scores = score(p, qf, qf.sum(-1))  # (B, M)
    best = scores.masked_fill(~present, float("-inf")).amax(1)
    return _nan_where(best, undefined)


def obey(maps: torch.Tensor, object_masks: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """ObEy's score of each image (seed 002, Eq. 2), one prediction per image:

        e(Psi) = 1/|X| sum_i ( 1/|S_i| sum_{s_m in S_i} [ max_{a in A_i} (s_m cap_w a) / (s_m cup_w a) ] )

    the max over the image's object masks A_i of wIoU(p, a) = sum_j p_j a_j / sum_j max(p_j, a_j), p the map scaled
    to [0, 1]; the mean over images is the caller's. For a binary a, sum_j max(p_j, a_j) = |a| + sum_j p_j -
    sum_j p_j a_j, so no (B, M, N) maximum is formed.

    Args:
        maps (torch.Tensor): (B, H, W) attributions.
        object_masks (torch.Tensor): (B, M, H, W), 1 on each object (a set of M masks per image; they may overlap).
        valid (torch.Tensor, optional): (B, M) bool, False for padding where images have fewer masks. Default: all.

    Returns (B,): NaN where the map is constant or the image has no valid non-empty mask.
    """

    def weighted(p, q, area):
        inter = torch.bmm(q, p[..., None])[..., 0]  # (B, M): sum_j p_j a_j
        return inter / (area + p.sum(1, keepdim=True) - inter).clamp(min=1e-12)

    return _best_over_masks(maps, object_masks, valid, weighted)


def obey_iou(
    maps: torch.Tensor, object_masks: torch.Tensor, valid: torch.Tensor | None = None, threshold: float = 0.5
) -> torch.Tensor:
    """The unweighted ObEy of the paper's appendix (A.6): the max over the object masks of the IoU of {p >= threshold}
    with the mask. Arguments as ``obey``."""

    def unweighted(p, q, area):
        on = (p >= threshold).to(p.dtype)
        inter = torch.bmm(q, on[..., None])[..., 0]
        return inter / (area + on.sum(1, keepdim=True) - inter).clamp(min=1)

    return _best_over_masks(maps, object_masks, valid, unweighted)


LOCALISATION = {"pointing_game": pointing_game, "relevance_mass": relevance_mass, "relevance_rank": relevance_rank}


@dataclass
class LocalisationConfig(AnalysisConfig):
    """does the attribution fall on the object? Pointing game, relevance mass and relevance rank accuracy"""

    name: str = param("localisation", "the registered name of the analysis")
    attribution: Any = param(["saliency", "gradcam", "integrated_gradients"], ATTRIBUTIONS_HELP)
    target: str = param("label", "the class explained: label | prediction", choices=TARGETS)


@register_analysis("localisation", config=LocalisationConfig)
class Localisation:
    """Pointing game, relevance mass and relevance rank accuracy of each attribution in ``cfg.attribution``, on the test
    images of ``cfg.variation`` with their object masks, explaining ``cfg.target`` (the label or the prediction).

    Results: ``{attribution: {metric: {"mean", "std", "n", "undefined"}}}``; an image without object pixels,
    or whose map is constant, is undefined.
    """

    needs_masks = True
    keyed = ("attribution",)  # the settings its result keys name

    def __init__(self, cfg):
        self.attributions = attribution_list("analysis.attribution", cfg.attribution)
        self.target, self.ig_steps = cfg.target, int(cfg.ig_steps)

    def run(self, model, data, dataset, runtime, out_dir) -> dict:
        values: dict[str, dict[str, list[float]]] = {
            name: {metric: [] for metric in LOCALISATION} for name in self.attributions
        }
        for x, y, mask in batches(data, runtime, "localisation"):
            target = predict(model, x) if self.target == "prediction" else y
            for name in self.attributions:
                maps = explain(model, x, target, name, self.ig_steps)
                for metric, fn in LOCALISATION.items():
                    values[name][metric] += fn(maps, mask).tolist()
        return {name: {metric: summary(v) for metric, v in per.items()} for name, per in values.items()}


OBJECT_MASK_CHOICES = (
    "null (the labelled object: wIoU, not ObEy)",
    "synthetic (dataset=synthetic)",
    "a folder <folder>/<variation>/<class>/<image stem>.npz (array masks, M x H x W) or "
    "<folder>/<variation>/<class>/<image stem>/<k>.png",
)


def image_paths(data) -> list[Path] | None:
    """The file of each item of ``data`` (through a ``Subset``), where the dataset lists ``samples`` [(path, label)]."""
    if isinstance(data, Subset):
        inner = image_paths(data.dataset)
        return None if inner is None else [inner[i] for i in data.indices]
    samples = getattr(data, "samples", None)
    return None if samples is None else [Path(path) for path, _ in samples]


def _files_of(setting: str, data, dataset) -> list[Path]:
    paths = image_paths(data)
    if paths is None:
        raise RRXError(
            f"analysis.object_masks={setting}: dataset {dataset.name} does not list its test "
            "images as files in class folders, so they cannot be matched to object masks; use synthetic, "
            "in9 or image_folder, or analysis.object_masks=null"
        )
    return paths


class MaskFolder:
    """The object masks of each test image from ``<folder>/<variation>/<class>/<image stem>.npz`` or ``.../<image
    stem>/<k>.png`` (see the module docstring); every image's entry is looked up now, each is read when asked for."""

    def __init__(self, folder: Path, variation: str, data, dataset):
        self.folder = folder
        self.images = _files_of(str(folder), data, dataset)
        self.entries = [self._entry(variation, path) for path in self.images]

    def _entry(self, variation: str, image: Path) -> Path:
        base = self.folder / variation / image.parent.name / image.stem
        npz = base.with_name(base.name + ".npz")
        if npz.is_file():
            return npz
        if base.is_dir():
            return base
        raise RRXError(
            f"analysis.object_masks={self.folder}: no object masks for image {image}: expected {npz} "
            f"(array masks, M x H x W) or a folder {base}/ of <k>.png"
        )

    def __call__(self, index: int) -> np.ndarray:
        """(M, H, W) bool, checked against the size of its image file."""
        entry, image = self.entries[index], self.images[index]
        with Image.open(image) as img:
            size = (img.height, img.width)
        try:
            found = self._read(entry, size)
        except (OSError, ValueError, zipfile.BadZipFile) as err:
            raise RRXError(f"analysis.object_masks={self.folder}: cannot read {entry}: {err}") from err
        if found.ndim != 3:
            raise RRXError(
                f"analysis.object_masks={self.folder}: {entry} holds masks of shape {found.shape}, expected M x H x W"
            )
        if found.shape[1:] != size:
            raise RRXError(
                f"analysis.object_masks={self.folder}: {entry} holds masks of size {found.shape[1:]}, "
                f"its image {image} has size {size}"
            )
        return found

    def _read(self, entry: Path, size: tuple[int, int]) -> np.ndarray:
        if entry.is_dir():
            masks = []
            for png in sorted(entry.glob("*.png")):
                with Image.open(png) as img:
                    masks.append(np.asarray(img.convert("L")) > 0)
            if len({m.shape for m in masks}) > 1:
                raise RRXError(
                    f"analysis.object_masks={self.folder}: the masks in {entry} differ in size: "
                    f"{sorted({m.shape for m in masks})}"
                )
            return np.stack(masks) if masks else np.zeros((0, *size), bool)
        with np.load(entry) as arrays:
            if "masks" not in arrays:
                raise RRXError(
                    f"analysis.object_masks={self.folder}: {entry} holds {sorted(arrays)}, expected an array "
                    "named masks (M x H x W)"
                )
            return arrays["masks"] > 0


class SyntheticMasks:
    """The object masks of each test image of the generated synthetic benchmark: its generator's segments."""

    def __init__(self, variation: str, data, dataset):
        root = dataset.root
        spec = generated_spec(root) if root is not None else None
        if spec is None:
            raise RRXError(
                f"analysis.object_masks=synthetic needs the generated synthetic benchmark (dataset=synthetic); "
                f"dataset {dataset.name} at {root} was not generated by rrx; give null or a "
                "folder of object masks"
            )
        self.images = _files_of("synthetic", data, dataset)
        self.scenes = SceneSegments(spec, split=self.images[0].parent.parent.name)
        self.variation = variation

    def __call__(self, index: int) -> np.ndarray:
        return self.scenes.masks(self.variation, self.images[index].name)


def stack_masks(sets: list[np.ndarray], size: tuple[int, int], device) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, M, H, W) bool object masks padded to the largest set, each resized (nearest, as the loaders resize masks)
    to ``size``, and the (B, M) validity flags."""
    most = max((len(s) for s in sets), default=0)
    masks = torch.zeros(len(sets), most, *size, dtype=torch.bool)
    valid = torch.zeros(len(sets), most, dtype=torch.bool)
    for i, found in enumerate(sets):
        if len(found) == 0:
            continue
        t = torch.from_numpy(np.ascontiguousarray(found))
        if tuple(t.shape[-2:]) != tuple(size):
            t = F.interpolate(t[None].float(), size=tuple(size), mode="nearest")[0] > 0.5
        masks[i, : len(found)], valid[i, : len(found)] = t, True
    return masks.to(device), valid.to(device)


@dataclass
class ObEyConfig(AnalysisConfig):
    """ObEy (seed 002, Eq. 2): the best weighted IoU of each prediction's saliency map over the image's object masks"""

    name: str = param("obey", "the registered name of the analysis")
    attribution: Any = param(["saliency", "gradcam"], ATTRIBUTIONS_HELP)
    iou_threshold: float = param(
        0.5, "the unweighted IoU: the map (normalised to [0, 1]) at or above this is on", low=0.0, high=1.0
    )
    object_masks: Optional[str] = param(
        None,
        "the object masks A_i per test image ObEy takes the best of: null (none: the wIoU with the labelled "
        "object, not ObEy) | synthetic (dataset=synthetic: the generator's object and background stripes) | a "
        "folder <folder>/<variation>/<class>/<image stem>.npz (array masks, M x H x W) or .../<image stem>/<k>.png",
    )


@register_analysis("obey", config=ObEyConfig)
class ObEy:
    """ObEy (seed 002, Eq. 2): the best weighted IoU of each prediction's saliency map (normalised to [0, 1]) over the
    image's object masks (``object_masks``: ``synthetic`` or a folder, see the module docstring), averaged over the test
    images; also the thresholded IoU (the paper's appendix A.6) and both split by correct and wrong predictions (its
    Table 3 use). A classifier makes one prediction per image, so the paper's mean over predictions is that one value.
    Without object masks (``object_masks: null``) it is the wIoU with the labelled-object mask, reported under that
    name: the paper's ObEy needs all the objects of an image (its A.5).

    Results: ``{attribution: {"obey" | "obey_iou": {"all" | "correct" | "wrong": {"mean", "std", "n", "undefined"}}}}``
    with object masks, ``"wiou" | "iou"`` in place of ``"obey" | "obey_iou"`` without. An image whose map is constant,
    or without a non-empty mask, is undefined.
    """

    keyed = ("attribution",)  # the settings its result keys name

    def __init__(self, cfg) -> None:
        self.attributions = attribution_list("analysis.attribution", cfg.attribution)
        self.threshold, self.ig_steps = float(cfg.iou_threshold), int(cfg.ig_steps)
        self.variation = cfg.variation
        setting = cfg.object_masks
        self.object_masks: str | Path | None = None if setting is None else str(setting)
        if self.object_masks not in (None, "synthetic"):
            folder = Path(self.object_masks).expanduser()
            if not folder.is_dir():
                raise RRXError(
                    f"analysis.object_masks={setting}: no such folder; give one of {'; '.join(OBJECT_MASK_CHOICES)}"
                )
            self.object_masks = folder
        self.needs_masks = self.object_masks is None  # the labelled object is the fallback mask

    def _reader(self, data, dataset):
        if self.object_masks is None:
            log.info(
                "analysis.object_masks=null: the weighted IoU with the labelled object is reported (wIoU), not "
                "ObEy, which takes the best over all the objects of an image (seed 002, Eq. 2)"
            )
            return None
        if self.object_masks == "synthetic":
            return SyntheticMasks(self.variation, data, dataset)
        return MaskFolder(self.object_masks, self.variation, data, dataset)

    def run(self, model, data, dataset, runtime, out_dir) -> dict:
        reader = self._reader(data, dataset)  # every image's masks found before any work
        weighted, unweighted = ("obey", "obey_iou") if reader else ("wiou", "iou")
        scores: dict[str, dict[str, list[float]]] = {name: {weighted: [], unweighted: []} for name in self.attributions}
        correct: list[bool] = []
        for x, y, mask in batches(data, runtime, "obey"):
            prediction = predict(model, x)
            if reader:
                first = len(correct)
                sets, valid = stack_masks([reader(i) for i in range(first, first + len(x))], x.shape[-2:], x.device)
            correct += (prediction == y).tolist()
            for name in self.attributions:
                maps = explain(model, x, prediction, name, self.ig_steps)
                if reader:
                    scores[name][weighted] += obey(maps, sets, valid).tolist()
                    scores[name][unweighted] += obey_iou(maps, sets, valid, self.threshold).tolist()
                else:
                    scores[name][weighted] += weighted_iou(maps, mask).tolist()
                    scores[name][unweighted] += iou(maps, mask, self.threshold).tolist()
        split = {"all": [True] * len(correct), "correct": correct, "wrong": [not c for c in correct]}
        return {
            name: {
                metric: {
                    part: summary([v for v, keep in zip(values, chosen) if keep]) for part, chosen in split.items()
                }
                for metric, values in per.items()
            }
            for name, per in scores.items()
        }


# --- tables and figures (rrx report, and the run's folder) ---------------------------------------------------------
def table_localisation(runs: list[Record]) -> pd.DataFrame:
    """Pointing game, relevance mass and relevance rank accuracy per attribution, percent."""
    return frame(
        [
            row
            | {
                "Attribution": key,
                "Pointing game": pct(r["pointing_game"]),
                "Relevance mass": pct(r["relevance_mass"]),
                "Relevance rank": pct(r["relevance_rank"]),
                "Images": r["pointing_game"]["n"],
            }
            for row, key, r in entries(runs, "localisation")
        ]
    )


# result keys -> column names: ObEy takes the best over an image's object masks (seed 002, Eq. 2); without them the
# same weighted IoU with the labelled object alone is not ObEy and keeps its own name
OBEY_COLUMNS = {
    ("obey", "obey_iou"): ("ObEy", "ObEy IoU"),
    ("wiou", "iou"): ("wIoU (labelled object)", "IoU (labelled object)"),
}


def table_obey(runs: list[Record]) -> pd.DataFrame:
    """ObEy (mean of the best weighted IoU over each image's object masks), its thresholded IoU, and ObEy over correct
    and over wrong predictions, percent; for results without object masks the same of the wIoU with the labelled
    object, in columns of that name."""
    rows = []
    for row, key, r in entries(runs, "obey"):
        (weighted, unweighted), (name, iou_name) = next(item for item in OBEY_COLUMNS.items() if item[0][0] in r)
        rows.append(
            row
            | {
                "Attribution": key,
                name: pct(r[weighted]["all"]),
                iou_name: pct(r[unweighted]["all"]),
                f"{name} correct": pct(r[weighted]["correct"]),
                f"{name} wrong": pct(r[weighted]["wrong"]),
                "Correct": r[weighted]["correct"]["n"],
                "Wrong": r[weighted]["wrong"]["n"],
            }
        )
    df = frame(rows)
    return df[[c for c in df.columns if c not in ("Correct", "Wrong")] + ["Correct", "Wrong"]]


TABLES = [
    Table(
        "localisation",
        "Localisation of attributions with object masks, percent",
        lambda runs: thesis_order(table_localisation(runs)),
        holding("localisation"),
        100,
        mark_best=False,
    ),
    Table(
        "obey",
        "ObEy: the best weighted IoU of the prediction's saliency over the image's object masks (seed 002); "
        "without object masks, the wIoU with the labelled object, percent",
        lambda runs: thesis_order(table_obey(runs)),
        holding("obey"),
        101,
        mark_best=False,
    ),
]
