"""Segmentation results (thesis ch. 3) from records: Tables 3 and 4, the IoU matrix of Fig. 10 and the curves of Fig. 8.

One row per fork of each run (the plain U-Net and one per ADA attribution method); several runs of one
configuration (seeds) become mean ± std when written (``rrx.tables``), as the classification tables do. A record's
numbers are its ``segmentation`` section (``record.sections["segmentation"]``, ``rrx.tasks.segmentation``); the task
module declares these builders and figures as its ``TABLES`` and ``FIGURES``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rrx.plots import pyplot, save_figure
from rrx.record import Record
from rrx.segmentation.metrics import METRICS

SECTION = "segmentation"  # the record's section of the task's numbers
STANDARD = "Standard epochs"  # Fig. 8's curve of the epochs before the fork


def is_segmentation(record: Record) -> bool:
    """Whether ``record`` is a ``task=segmentation`` run's."""
    return record.task == "segmentation"


def has_iou(record: Record) -> bool:
    """Whether ``record`` holds Fig. 10's IoU matrix (a protocol with two or more ADA forks)."""
    return is_segmentation(record) and bool(_section(record).get("iou"))


def _section(record: Record) -> dict:
    return record.sections[SECTION]


def _suffix(record: Record) -> str:
    """`` [key=value]`` when ``rrx report`` told runs of one name apart by their configs, else ``""``."""
    method = record.run["method"]
    return method[method.index(" [") :] if " [" in method else ""


def _value(value: float | None) -> float:
    return np.nan if value is None else value


def metric_table(records: list[Record], part: str) -> pd.DataFrame:
    """Model, DSC, HSD, TPR, TNR, PPV of every fork's best epoch on ``part`` (``validation`` or ``robustness``)."""
    rows = []
    for record in records:
        for fork in _section(record)["forks"].values():
            mean = fork[part]["mean"]
            rows.append({"Model": fork["label"] + _suffix(record)} | {k: _value(mean[k]) for k in METRICS})
    return pd.DataFrame(rows, columns=["Model", *METRICS]).astype({k: float for k in METRICS})


def validation_table(records: list[Record]) -> pd.DataFrame:
    """Table 3: every fork's best epoch on the validation set."""
    return metric_table(records, "validation")


def robustness_table(records: list[Record]) -> pd.DataFrame:
    """Table 4: every fork's best epoch on the robustness set (Alg. 2)."""
    return metric_table(records, "robustness")


def iou_table(records: list[Record]) -> pd.DataFrame:
    """Fig. 10 as a table: the mean IoU between the windows each two methods erase in the first ADA cycle; one row
    per method of each record that has the matrix (none: an empty table)."""
    rows = []
    for record in records:
        iou = _section(record).get("iou") if is_segmentation(record) else None
        if iou:
            for name, values in zip(iou["methods"], iou["matrix"]):
                rows.append({"Method": name + _suffix(record)} | {b: _value(v) for b, v in zip(iou["methods"], values)})
    df = pd.DataFrame(rows, columns=None if rows else ["Method"])
    return df.astype({c: float for c in df.columns if c != "Method"})


def note(records: list[Record]) -> str:
    """What the numbers are, for report.md."""
    units = sorted({_section(r)["hsd_unit"] for r in records})
    windows = sorted({_section(r)["protocol"]["robustness_window"] for r in records})
    return (
        f"DSC, TPR, TNR and PPV in percent, HSD (Hausdorff surface distance, lower is better) in {' / '.join(units)}; "
        "each metric averaged over the images. Each row is a fork's epoch with the best validation DSC (among its "
        f"epochs after the fork); the robustness set erases a {' / '.join(map(str, windows))} px square at every "
        "grid position of each validation image (thesis Alg. 2)."
    )


def _mean_of(n: int) -> str:
    return f", mean of {n} runs" if n > 1 else ""


def dice_curves(records: list[Record], dataset: str, path: Path) -> Path:
    """Fig. 8: validation DSC per epoch, the standard epochs and then every fork (mean over the runs)."""
    curves: dict[str, dict[int, list[float]]] = {}
    for record in records:
        seg = _section(record)
        named = [(STANDARD, seg["standard"]["history"])] + [(f["label"], f["history"]) for f in seg["forks"].values()]
        for label, history in named:
            for h in history:
                curves.setdefault(label, {}).setdefault(h["epoch"], []).append(h["validation"]["mean"]["DSC"])
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    start = curves.get(STANDARD, {})
    for label, points in curves.items():
        epochs = sorted(points)
        if label != STANDARD and start:  # each fork continues from the last standard epoch
            epochs = [max(start)] + [e for e in epochs if e > max(start)]
            points = {**points, max(start): start[max(start)]}
        style = {"color": "0.3", "linestyle": "--"} if label == STANDARD else {}
        ax.plot(epochs, [np.mean(points[e]) for e in epochs], marker=".", label=label, **style)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation DSC (%)")
    ax.set_title(f"Validation Dice per epoch (Fig. 8 shape), {dataset}{_mean_of(len(records))}")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def iou_figure(records: list[Record], dataset: str, path: Path) -> Path | None:
    """Fig. 10: the IoU matrix as a heat map, the mean over the runs that compared the same methods; None where no
    record has the matrix."""
    found = [_section(r)["iou"] for r in records if has_iou(r)]
    if not found:
        return None
    names = found[0]["methods"]
    matrices = [[[_value(v) for v in row] for row in f["matrix"]] for f in found if f["methods"] == names]
    matrix = np.nanmean(np.array(matrices, dtype=float), axis=0)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(0.9 * len(names) + 2, 0.75 * len(names) + 1.2))
    image = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="black" if value > 0.5 else "white")
    fig.colorbar(image, ax=ax, label="IoU")
    ax.set_title(f"IoU of the erased windows, first ADA cycle (Fig. 10 shape), {dataset}{_mean_of(len(matrices))}")
    return save_figure(fig, path)
