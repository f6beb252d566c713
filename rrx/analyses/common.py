"""What the analysis runners share: the attribution methods, the test images, the target class, summaries; and what
their tables read from the records (``entries``, ``pct``, ``frame``, ``model_label``, ``holding``)."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Callable, Optional

import pandas as pd
import torch
from torch.utils.data import Subset
from tqdm import tqdm

from rrx.attributions import attribution_map, attribution_names, check_attribution
from rrx.config import ComponentConfig, param
from rrx.data.base import labels_of
from rrx.errors import RRXError
from rrx.record import Record

TARGETS = ("label", "prediction")  # the class an attribution explains (analysis.target; challenge.target of snr)
ATTRIBUTIONS_HELP = "any names of rrx.attributions, or captum:<ClassName>; one or a list"


@dataclass
class AnalysisConfig(ComponentConfig):
    """what every analysis has: the test images it reads and the steps of Integrated Gradients"""

    variation: str = param("original", "the test images analysed: a variation of the dataset")
    max_images: Optional[int] = param(None, "null: all; N: N evenly spaced (every class in)", low=1)
    ig_steps: int = param(50, "Integrated Gradients: integration steps (from an all-zero image)", low=1)


def attribution_list(key: str, value, accepts=None) -> list[str]:
    """``analysis.attribution`` as a list (one name or several), each a method of ``rrx.attributions`` (one that
    ``accepts`` keeps, as in ``rrx.attributions.check_attribution``)."""
    names = [value] if isinstance(value, str) else list(value)
    if not names:
        raise RRXError(f"{key} is empty; give one or more of {', '.join(attribution_names(accepts))}")
    for name in names:
        check_attribution(key, name, accepts)
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:  # each would be scored twice: twice the images, and a spread over duplicated samples
        raise RRXError(f"{key}={names} names {', '.join(repeated)} more than once; give each attribution once")
    return names


def evenly_per_class(labels: list[int], n: int) -> list[int]:
    """``n`` indices, spread over the classes as evenly as they allow (a class with fewer images gives all it has, the
    rest go to the others) and evenly spaced within each class, in the data's order."""
    by_class: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(label, []).append(i)
    quota = {c: 0 for c in by_class}
    left = n
    while left > 0:  # round-robin over the classes that still have images
        open_classes = [c for c in sorted(by_class) if quota[c] < len(by_class[c])]
        for c in open_classes[:left]:
            quota[c] += 1
        left -= min(left, len(open_classes))
    chosen = []
    for c, members in by_class.items():
        k = quota[c]
        chosen += [members[j] for j in torch.linspace(0, len(members) - 1, k).round().long().tolist()] if k else []
    return sorted(chosen)


def analysis_images(dataset, variation: str, masks: bool, max_images: int | None):
    """The test images of ``variation`` (with masks when ``masks``): all of them, or ``max_images`` spread evenly over
    the classes and evenly spaced within each (``evenly_per_class``), so every class is in whatever the split's
    order."""
    data = dataset.variation_set(variation, masks=masks)
    if len(data) == 0:
        raise RRXError(f"dataset {dataset.name}: variation {variation} has no images to analyse")
    if max_images is not None and max_images < len(data):
        data = Subset(data, evenly_per_class(labels_of(data), int(max_images)))
    return data


def fill_mean(model, dataset) -> list[float]:
    """The normalisation mean colour the model itself uses (an off-the-shelf model keeps its own), else the dataset's:
    the ``normalisation_mean`` fill (``rrx.fills``) of U Analysis and IPHA."""
    mean = getattr(model, "mean", None)
    return torch.as_tensor(mean).flatten().tolist() if mean is not None else list(dataset.mean)


def batches(data, runtime, desc: str):
    """(x, y, mask or None) on the device, batch by batch, with a progress bar."""
    for batch in tqdm(runtime.loader(data, shuffle=False), desc=desc, leave=False, disable=not runtime.progress):
        x, y = batch[0].to(runtime.device), batch[1].to(runtime.device)
        yield x, y, batch[2].to(runtime.device) if len(batch) > 2 else None


def explain(
    model, x: torch.Tensor, target: torch.Tensor, method: str, ig_steps: int = 50, signed: bool = False
) -> torch.Tensor:
    """(B, H, W) attribution of ``target`` in float32 (no autocast: gradients of a bf16 model are too coarse here);
    ``signed``: the signed form (``rrx.attributions.attribution_map``)."""
    return attribution_map(model, x, target, method, steps=ig_steps, signed=signed).float()


@torch.no_grad()
def predict(model, x: torch.Tensor) -> torch.Tensor:
    return model(x).argmax(1)


def summary(values: list[float]) -> dict:
    """Mean, sample std and count of the defined values; ``undefined`` counts the NaNs left out."""
    defined = [float(v) for v in values if not math.isnan(v)]
    mean = statistics.fmean(defined) if defined else math.nan
    std = statistics.stdev(defined) if len(defined) > 1 else math.nan
    return {"mean": mean, "std": std, "n": len(defined), "undefined": len(values) - len(defined)}


# --- what the analyses' tables and figures share (rrx report, and the run's folder) ---------------------------------
NAN = math.nan
# the columns of the analyses' tables that name a row; every other one is a number
NAMING = {"Architecture", "Method", "Settings", "Attribution", "Order", "Fill", "Window fraction", "Search"}


def holding(analysis: str) -> Callable[[Record], bool]:
    """A ``Table.holds`` / ``Figure.holds``: whether a record holds results of ``analysis``."""

    def holds(record: Record) -> bool:
        return analysis in record.analyses

    return holds


def entries(runs: list[Record], analysis: str) -> list[tuple[dict, str, dict]]:
    """(the row's naming columns, the result's key, the result) for every result of ``analysis`` in ``runs`` (a record
    without it gives none). The naming columns are Architecture, Method and, where the results differ in a setting
    outside their key (e.g. ``target``, ``max_images``), a Settings column naming it, so that rows of different
    settings are never averaged."""
    found = [(m, key, r) for m in runs for key, r in m.analyses.get(analysis, {}).items()]
    settings = [r.get("settings", {}) for _, _, r in found]
    differ = sorted(k for k in {k for s in settings for k in s} if len({repr(s.get(k)) for s in settings}) > 1)
    rows = []
    for (m, key, r), setting in zip(found, settings):
        row = {"Architecture": m.run["architecture"], "Method": m.run["method"]}
        if differ:
            row["Settings"] = ", ".join(f"{k}={setting.get(k)}" for k in differ)
        rows.append((row, r.get("key", key), r))
    return rows


def pct(stats: dict | None) -> float:
    """A ``summary``'s mean in percent; NaN where there is none."""
    return NAN if stats is None or stats["mean"] is None else 100 * stats["mean"]


def frame(rows: list[dict]) -> pd.DataFrame:
    """The rows as a DataFrame, every column but the naming ones (``NAMING``) as float."""
    df = pd.DataFrame(rows)
    return df.astype({c: float for c in df.columns if c not in NAMING})


def model_label(df: pd.DataFrame) -> pd.Series:
    """A figure's name of each row's model: architecture and method, and its settings where the rows differ in them."""
    label = df["Architecture"] + " " + df["Method"]
    return label + " [" + df["Settings"] + "]" if "Settings" in df else label
