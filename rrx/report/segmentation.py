"""Segmentation results (thesis ch. 3): Tables 3 and 4, the IoU matrix of Fig. 10 and the curves of Fig. 8.

One row per fork of each run (the plain U-Net and one per ADA attribution method); several runs of one
configuration (seeds) become mean ± std through ``rrx.report.tables``, as the classification tables do.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from rrx.report.figures import plt, save_figure
from rrx.report.tables import markdown, write_table
from rrx.segmentation.metrics import METRICS

log = logging.getLogger(__name__)
PARTS = {"table3": ("validation", "Validation set (Table 3 shape)"),
         "table4": ("robustness", "Robustness set, Alg. 2 (Table 4 shape)")}


def is_segmentation(metrics: dict) -> bool:
    return metrics["run"].get("task") == "segmentation"


def _suffix(metrics: dict) -> str:
    """`` [key=value]`` when ``rrx.report.collect`` told runs of one name apart by their configs, else ``""``."""
    method = metrics["run"]["method"]
    return method[method.index(" [") :] if " [" in method else ""


def metric_table(runs: list[dict], part: str) -> pd.DataFrame:
    """Model, DSC, HSD, TPR, TNR, PPV of every fork's best epoch on ``part`` (``validation`` or ``robustness``)."""
    rows = []
    for m in runs:
        for fork in m["segmentation"]["forks"].values():
            mean = fork[part]["mean"]
            rows.append({"Model": fork["label"] + _suffix(m)} | {k: np.nan if mean[k] is None else mean[k] for k in METRICS})
    return pd.DataFrame(rows, columns=["Model", *METRICS]).astype({k: float for k in METRICS})


def iou_table(runs: list[dict]) -> pd.DataFrame | None:
    """Fig. 10 as a table: the mean IoU between the windows each two methods erase in the first ADA cycle."""
    rows = []
    for m in runs:
        iou = m["segmentation"].get("iou")
        if iou:
            for name, values in zip(iou["methods"], iou["matrix"]):
                cells = {b: np.nan if v is None else v for b, v in zip(iou["methods"], values)}
                rows.append({"Method": name + _suffix(m)} | cells)
    if not rows:
        return None
    df = pd.DataFrame(rows)
    return df.astype({c: float for c in df.columns if c != "Method"})


def tables(runs: list[dict]) -> dict[str, tuple[str, pd.DataFrame]]:
    """{file stem: (title, table)} for ``runs`` (one dataset's segmentation runs)."""
    out = {name: (title, metric_table(runs, part)) for name, (part, title) in PARTS.items()}
    iou = iou_table(runs)
    if iou is not None:
        out["iou"] = ("IoU between the windows each method erases in the first ADA cycle (Fig. 10 as numbers)", iou)
    return out


def note(runs: list[dict]) -> str:
    """What the numbers are, for report.md."""
    units = sorted({m["segmentation"]["hsd_unit"] for m in runs})
    windows = sorted({m["segmentation"]["protocol"]["robustness_window"] for m in runs})
    return (f"DSC, TPR, TNR and PPV in percent, HSD (Hausdorff surface distance, lower is better) in {' / '.join(units)}; "
            "each metric averaged over the images. Each row is a fork's epoch with the best validation DSC (among its "
            f"epochs after the fork); the robustness set erases a {' / '.join(map(str, windows))} px square at every "
            "grid position of each validation image (thesis Alg. 2).")


def write_run_tables(metrics: dict, out_dir: Path) -> None:
    """A finished run's ``table3``, ``table4`` and ``iou`` as CSV, Markdown and LaTeX in its folder (also logged)."""
    for name, (title, df) in tables([metrics]).items():
        write_table(df, out_dir / name, mark_best=False)
        log.info("%s\n%s", title, markdown(df, mark_best=False))


def _mean_of(n: int) -> str:
    return f", mean of {n} runs" if n > 1 else ""


def dice_curves(runs: list[dict], dataset: str, path: Path) -> Path:
    """Fig. 8: validation DSC per epoch, the standard epochs and then every fork (mean over the runs)."""
    curves: dict[str, dict[int, list[float]]] = {}
    for m in runs:
        seg = m["segmentation"]
        named = [("Standard epochs", seg["standard"]["history"])] + [(f["label"], f["history"]) for f in seg["forks"].values()]
        for label, history in named:
            for h in history:
                curves.setdefault(label, {}).setdefault(h["epoch"], []).append(h["validation"]["mean"]["DSC"])
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    start = curves.get("Standard epochs", {})
    for label, points in curves.items():
        epochs = sorted(points)
        if label != "Standard epochs" and start:  # each fork continues from the last standard epoch
            epochs = [max(start)] + [e for e in epochs if e > max(start)]
            points = {**points, max(start): start[max(start)]}
        style = {"color": "0.3", "linestyle": "--"} if label == "Standard epochs" else {}
        ax.plot(epochs, [np.mean(points[e]) for e in epochs], marker=".", label=label, **style)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation DSC (%)")
    ax.set_title(f"Validation Dice per epoch (Fig. 8 shape), {dataset}{_mean_of(len(runs))}")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def iou_figure(runs: list[dict], dataset: str, path: Path) -> Path | None:
    """Fig. 10: the IoU matrix as a heat map, the mean over the runs that compared the same methods."""
    found = [m["segmentation"]["iou"] for m in runs if m["segmentation"].get("iou")]
    if not found:
        return None
    names = found[0]["methods"]
    matrices = [[[np.nan if v is None else v for v in row] for row in f["matrix"]] for f in found if f["methods"] == names]
    matrix = np.nanmean(matrices, axis=0)
    fig, ax = plt.subplots(figsize=(0.9 * len(names) + 2, 0.75 * len(names) + 1.2))
    image = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="black" if value > 0.5 else "white")
    fig.colorbar(image, ax=ax, label="IoU")
    ax.set_title(f"IoU of the erased windows, first ADA cycle (Fig. 10 shape), {dataset}{_mean_of(len(matrices))}")
    return save_figure(fig, path)


def figures(runs: list[dict], dataset: str, out_dir: Path) -> dict[str, Path]:
    """{caption: PNG} of Figs. 8 and 10 for one dataset's segmentation runs."""
    made = {"Validation Dice per epoch (Fig. 8 shape)": dice_curves(runs, dataset, out_dir / f"fig8_dice_{dataset}.png")}
    iou = iou_figure(runs, dataset, out_dir / f"fig10_iou_{dataset}.png")
    if iou is not None:
        made["IoU between the erased windows of the attribution methods (Fig. 10 shape)"] = iou
    return made
