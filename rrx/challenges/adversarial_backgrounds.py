"""The adversarial-backgrounds challenge (Xiao et al. 2021, the backgrounds challenge's leaderboard metric).

Every foreground (an ``original`` image cut by its ``fg_mask``) is pasted on every ``only_bg_t`` background of
the split: composite = bg * (1 - m) + x * m. A foreground is *vulnerable* when some background makes the
prediction wrong; challenge accuracy = 1 - the vulnerable share (the reference reports 22.3 % for torchvision's
ResNet-50 on IN-9, whose predictions are mapped to IN-9 classes). As the reference, a foreground stops at the
first batch of backgrounds that fools it. The reference's "most adversarial backgrounds" need every pair: they
are measured on ``stats_per_class`` evenly spaced foregrounds of each class, which meet every background; the
fool share of a background is the share of those foregrounds of other classes whose prediction it makes wrong.
Composites are built on the device from the backgrounds held there.
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from rrx.challenges import register_challenge
from rrx.config import ComponentConfig, param
from rrx.data.base import labels_of
from rrx.plots import pyplot, save_figure
from rrx.predictions import decide, prediction_frame
from rrx.record import Record
from rrx.runtime import Runtime
from rrx.tables import Figure, Table, model_name

log = logging.getLogger(__name__)


@torch.no_grad()
def fooling_backgrounds(
    model,
    x: torch.Tensor,
    m: torch.Tensor,
    y: int,
    backgrounds: torch.Tensor,
    batch_size: int,
    stop_at_first: bool,
    runtime: Runtime | None = None,
) -> tuple[torch.Tensor, int, torch.Tensor, torch.Tensor]:
    """Which backgrounds make the prediction on foreground ``x`` (3, H, W) with mask ``m`` (1, H, W) differ from ``y``.

    Returns (wrong, evaluated, prediction, confidence): ``wrong`` (N,) bool over ``backgrounds`` (N, 3, H, W),
    False for those not evaluated; ``evaluated`` the number of composites predicted; ``prediction`` (N,) the class
    predicted on each composite (-1 where not evaluated) and ``confidence`` (N,) its softmax probability (NaN there).
    With ``stop_at_first`` the backgrounds are taken ``batch_size`` at a time and the search ends after the first
    batch holding a fooling one.
    """
    wrong = torch.zeros(len(backgrounds), dtype=torch.bool, device=backgrounds.device)
    prediction = torch.full((len(backgrounds),), -1, dtype=torch.long, device=backgrounds.device)
    confidence = torch.full((len(backgrounds),), float("nan"), device=backgrounds.device)
    evaluated = 0
    for start in range(0, len(backgrounds), batch_size):
        bg = backgrounds[start : start + batch_size]
        composite = bg * (1 - m) + x * m
        with runtime.autocast() if runtime is not None else nullcontext():
            logits = model(composite)
        batch = slice(start, start + len(bg))
        prediction[batch], confidence[batch] = decide(logits)
        wrong[batch] = prediction[batch] != y
        evaluated += len(bg)
        if stop_at_first and wrong[batch].any():
            break
    return wrong, evaluated, prediction, confidence


def stats_indices(labels: np.ndarray, per_class: int | None) -> set[int]:
    """``per_class`` evenly spaced indices of each class (every index when None)."""
    if per_class is None:
        return set(range(len(labels)))
    chosen = set()
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        take = np.unique(np.linspace(0, len(members) - 1, min(per_class, len(members))).round().astype(int))
        chosen.update(members[take].tolist())
    return chosen


def _stack(dataset, runtime: Runtime, desc: str) -> list[torch.Tensor]:
    """Every item of ``dataset`` as stacked tensors (images on the device)."""
    parts: list[list[torch.Tensor]] | None = None
    loader = runtime.loader(dataset, shuffle=False)
    for batch in tqdm(loader, desc=desc, leave=False, disable=not runtime.progress):
        parts = [[] for _ in batch] if parts is None else parts
        for part, value in zip(parts, batch):
            part.append(value)
    assert parts is not None, f"{desc}: no items to stack"
    return [torch.cat(p) for p in parts]


@dataclass
class AdversarialBackgroundsConfig(ComponentConfig):
    """Xiao et al.'s adversarial backgrounds: every foreground of original on every only_bg_t background"""

    name: str = param("adversarial_backgrounds", "the registered name of the challenge")
    stats_per_class: int | None = param(
        10, "foregrounds per class that meet every background: the per-background fool shares (null: all)", low=1
    )
    batch_size: int | None = param(None, "composites per forward pass (null: trainer.batch_size)", low=1)
    top_k: int = param(5, "backgrounds per class in the report's figure", low=1)


@register_challenge("adversarial_backgrounds", config=AdversarialBackgroundsConfig)
class AdversarialBackgrounds:
    """Config (``AdversarialBackgroundsConfig``): ``stats_per_class`` (foregrounds per class that meet every
    background, for the per-background fool shares; null: all, which also makes the vulnerable count exhaustive),
    ``batch_size`` (composites per forward pass; null: ``trainer.batch_size``), ``top_k`` (backgrounds per class in
    the report's figure). Accuracy = 1 - the share of foregrounds some background fools (a foreground stops at its
    first fooling batch).

    Results: ``{"adversarial_backgrounds": {accuracy, vulnerable, foregrounds, backgrounds, per_class,
    composites, seconds, images_per_second, backgrounds_table}}``; ``backgrounds_table`` lists every
    background with its file (when it has one), class and fool share. ``predictions``: a row per foreground
    (``rrx.predictions``, condition ``every background``), correct when no background fools it, with the prediction
    on the first composite that does and that background's class (the label and no confidence where none does).
    """

    def __init__(self, cfg):
        self.predictions: pd.DataFrame | None = None
        self.stats_per_class = cfg.stats_per_class
        self.batch_size = cfg.batch_size
        self.top_k = int(cfg.top_k)

    def needs(self) -> list[tuple[str, bool]]:
        return [("original", True), ("only_bg_t", False)]

    def evaluate(self, model, dataset, runtime: Runtime) -> dict:
        model.eval()
        fg_set, bg_set = dataset.variation_set("original", masks=True), dataset.variation_set("only_bg_t")
        backgrounds, bg_labels = _stack(bg_set, runtime, "backgrounds")
        backgrounds = backgrounds.to(runtime.device)
        bg_labels = bg_labels.to(runtime.device)
        labels = np.asarray(labels_of(fg_set))  # without reading the images
        full = stats_indices(labels, self.stats_per_class)
        batch_size = int(self.batch_size or runtime.batch_size)
        fooled_by = torch.zeros(len(backgrounds), device=runtime.device)  # stats foregrounds of other classes fooled
        met_by = torch.zeros(len(backgrounds), device=runtime.device)  # stats foregrounds of other classes
        vulnerable = np.zeros(len(labels), bool)
        predicted, confidence = torch.tensor(labels), torch.full((len(labels),), float("nan"))
        fooling: list[int | None] = [None] * len(labels)  # the first fooling background of each foreground
        composites, started = 0, time.perf_counter()
        loader = DataLoader(fg_set, batch_size=1, shuffle=False, num_workers=runtime.num_workers)
        for i, (x, y, m) in enumerate(tqdm(loader, desc="adversarial backgrounds", disable=not runtime.progress)):
            x, m, y = x[0].to(runtime.device), m[0].to(runtime.device), int(y)
            wrong, evaluated, prediction, probability = fooling_backgrounds(
                model, x, m, y, backgrounds, batch_size, i not in full, runtime
            )
            vulnerable[i] = bool(wrong.any())
            if vulnerable[i]:
                j = int(wrong.nonzero()[0, 0])
                predicted[i], confidence[i], fooling[i] = int(prediction[j]), float(probability[j]), j
            composites += evaluated
            if i in full:
                other = bg_labels != y
                met_by += other
                fooled_by += wrong & other
        if runtime.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        share = (fooled_by / met_by.clamp(min=1)).cpu().tolist()
        files = [str(path) for path, _ in bg_set.samples] if hasattr(bg_set, "samples") else [None] * len(share)
        classes = list(dataset.classes)
        found = {"label": torch.tensor(labels), "prediction": predicted, "confidence": confidence}
        background_class = [None if j is None else classes[int(bg_labels[j])] for j in fooling]
        self.predictions = prediction_frame(
            dataset, "original", fg_set, found, "adversarial_backgrounds", "every background", background_class
        )
        table = [
            {"file": f, "class": classes[int(c)], "fool_share": s, "foregrounds": int(n)}
            for f, c, s, n in zip(files, bg_labels.cpu().tolist(), share, met_by.cpu().tolist())
        ]
        per_class = {classes[c]: float(1 - vulnerable[labels == c].mean()) for c in np.unique(labels)}
        result = {
            "accuracy": float(1 - vulnerable.mean()),
            "vulnerable": int(vulnerable.sum()),
            "foregrounds": len(labels),
            "backgrounds": len(backgrounds),
            "per_class": per_class,
            "composites": composites,
            "seconds": seconds,
            "images_per_second": composites / max(seconds, 1e-9),
            "stats_foregrounds": len(full),
            "stop_at_first": True,
            "top_k": self.top_k,
            "backgrounds_table": table,
        }
        log.info(
            "adversarial backgrounds: %d/%d foregrounds vulnerable, challenge accuracy %.2f%%; %d composites in %.1f s "
            "(%.0f images/s)",
            result["vulnerable"],
            len(labels),
            100 * result["accuracy"],
            composites,
            seconds,
            result["images_per_second"],
        )
        return {"adversarial_backgrounds": result}


# --- tables and figures (rrx report, and the run's folder) ---------------------------------------------------------
# The adversarial-backgrounds challenge (Xiao et al. 2021): challenge accuracy = 1 - vulnerable foregrounds.
def table_adversarial_backgrounds(runs: list[Record]) -> pd.DataFrame:
    rows = []
    for metrics in runs:
        found = metrics.challenges["adversarial_backgrounds"]
        rows.append(
            {
                "Architecture": metrics.run["architecture"],
                "Method": metrics.run["method"],
                "Challenge accuracy": 100 * found["accuracy"],
                "Vulnerable": 100 * found["vulnerable"] / found["foregrounds"],
                "Foregrounds": found["foregrounds"],
                "Backgrounds": found["backgrounds"],
                "Images/s": found["images_per_second"],
            }
        )
    columns = ["Architecture", "Method", "Challenge accuracy", "Vulnerable", "Foregrounds", "Backgrounds", "Images/s"]
    return pd.DataFrame(rows, columns=columns)


def adversarial_backgrounds_figure(metrics: Record, path: Path) -> Path | None:
    """The most adversarial backgrounds per class (Xiao et al.): the ``top_k`` only_bg_t images with the highest
    share of fooled foregrounds of other classes, read from their files; None when the files are not there."""
    plt = pyplot()
    found = metrics.challenges["adversarial_backgrounds"]
    table = pd.DataFrame(found["backgrounds_table"])
    if table.empty or table["file"].isna().any():
        return None
    from PIL import Image

    k = int(found.get("top_k", 5))
    classes = list(dict.fromkeys(table["class"]))
    fig, axes = plt.subplots(len(classes), k, figsize=(1.6 * k, 1.7 * len(classes)), squeeze=False)
    for row, name in zip(axes, classes):
        top = table[table["class"] == name].sort_values("fool_share", ascending=False, kind="stable").head(k)
        for ax, (_, bg) in zip(row, top.iterrows()):
            try:
                with Image.open(bg["file"]) as img:
                    ax.imshow(np.asarray(img.convert("RGB")))
            except OSError as err:
                log.warning("adversarial backgrounds figure: cannot read %s (%s): no figure", bg["file"], err)
                plt.close(fig)
                return None
            ax.set_title(f"{100 * bg['fool_share']:.0f} % fooled", fontsize=7)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(name, fontsize=7)
    fig.suptitle(f"Most adversarial backgrounds: {model_name(metrics)} ({metrics.run['dataset']})")
    return save_figure(fig, path)


def _holds(m: Record) -> bool:
    return "adversarial_backgrounds" in m.challenges


TABLES = [
    Table(
        "adversarial_backgrounds",
        "Adversarial backgrounds (Xiao et al.; accuracy = 1 - vulnerable foregrounds)",
        table_adversarial_backgrounds,
        _holds,
        12,
        mark_best=False,
    )
]
FIGURES = [
    Figure(
        "adversarial_backgrounds",
        "Most adversarial backgrounds",
        adversarial_backgrounds_figure,
        _holds,
        26,
        per_run=True,
    )
]
