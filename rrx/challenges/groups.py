"""Group robustness next to the BG-Gap: accuracy per (object class, background class) group of the mixed images.

The spurious-correlation literature scores a model by its worst group (Sagawa et al. 2020, group DRO; WILDS;
Waterbirds' four (bird, place) groups): a model that uses the background is right where object and background
agree and wrong on the groups where they disagree, which an average over images hides. On the background
challenge a mixed image ``fg_<stem>_bg_<stem2>`` has two classes, its object's (the label) and its background's
(``background_class`` of ``rrx.predictions``), so each mixed variation splits into groups g = (y, b):

    acc(g) = #{i in g : prediction_i = y_i} / #g,        worst-group accuracy = min_g acc(g)

over the groups that hold an image. mixed_same holds only the groups y = b, mixed_next the pairs (k, k + 1), and
mixed_rand every pair, which makes its object x background matrix the one to read. A dataset whose own test images
have known backgrounds (Waterbirds' ``place``) has groups in its ``original`` variation, its headline number.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from rrx.plots import pyplot, save_figure
from rrx.predictions import unperturbed
from rrx.record import Record
from rrx.tables import thesis_order

log = logging.getLogger(__name__)
MIXED = ("mixed_same", "mixed_rand", "mixed_next")


def group_accuracy(frame: pd.DataFrame) -> dict:
    """``{variation: {"worst_group_accuracy", "worst_group": [object, background], "groups", "smallest_group",
    "matrix": {object: {background: [correct, images]}}}}`` for each variation of ``frame`` (the per-image
    predictions) whose every image has a known background class; a variation with unknown ones is left out."""
    out = {}
    frame = unperturbed(frame)  # the images as they are, not the edge grid's or an attack's
    for variation in frame["variation"].unique():
        rows = frame[frame["variation"] == variation]
        unknown = int(rows["background_class"].isna().sum())
        if unknown:
            if variation in MIXED:
                log.info("%s: %d images of unknown background class: no groups", variation, unknown)
            continue
        counts = rows.groupby(["label_name", "background_class"], sort=True)["correct"].agg(["sum", "size"])
        accuracy = counts["sum"] / counts["size"]
        worst = accuracy.idxmin()  # the first of the lowest in (object, background) order
        matrix: dict[str, dict[str, list[int]]] = {}
        for (obj, bg), (correct, images) in counts.iterrows():
            matrix.setdefault(str(obj), {})[str(bg)] = [int(correct), int(images)]
        worst_accuracy = float(accuracy[worst])
        out[variation] = {
            "worst_group_accuracy": worst_accuracy,
            "worst_group": [str(worst[0]), str(worst[1])],
            "groups": int(len(counts)),
            "smallest_group": int(counts["size"].min()),
            "matrix": matrix,
        }
        log.info(
            "%-10s worst-group accuracy %.2f%% (object %s on background %s; %d groups)",
            variation,
            100 * worst_accuracy,
            *worst,
            len(counts),
        )
    return out


# --- tables and figures (declared by rrx.challenges.background) ----------------------------------------------------
def has_groups(record: Record) -> bool:
    return bool(record.challenges.get("groups"))


def group_table(runs: list[Record]) -> pd.DataFrame:
    """Per run: the worst-group accuracy of each variation with groups (percent) next to its average accuracy."""
    rows = []
    for m in runs:
        groups, accuracy = m.challenges.get("groups", {}), m.challenges.get("accuracy", {})
        row = {"Architecture": m.run["architecture"], "Method": m.run["method"]}
        for variation, found in groups.items():
            title = variation.replace("_", " ").capitalize()
            row[f"Worst group {title.lower()}"] = 100 * found["worst_group_accuracy"]
            row[title] = 100 * accuracy.get(variation, float("nan"))
        rows.append(row)
    return pd.DataFrame(rows)


def pooled_matrices(runs: list[Record], variation: str) -> dict[tuple[str, str], dict[str, dict[str, list[int]]]]:
    """``{(architecture, method): {object: {background: [correct, images]}}}`` of ``variation``: the matrices of the
    runs of one configuration (its seeds) summed cell by cell, in the thesis's order of the models."""
    pooled: dict[tuple[str, str], dict[str, dict[str, list[int]]]] = {}
    for m in runs:
        found = m.challenges.get("groups", {}).get(variation)
        if found is None:
            continue
        model = pooled.setdefault((m.run["architecture"], m.run["method"]), {})
        for obj, row in found["matrix"].items():
            for bg, (correct, images) in row.items():
                cell = model.setdefault(obj, {}).setdefault(bg, [0, 0])
                cell[0], cell[1] = cell[0] + correct, cell[1] + images
    order = thesis_order(pd.DataFrame(list(pooled), columns=["Architecture", "Method"]))
    return {(a, b): pooled[(a, b)] for a, b in order.itertuples(index=False)}


def group_matrix_figure(runs: list[Record], dataset: str, path: Path) -> Path | None:
    """The object x background accuracy matrix of mixed_rand (else the first variation with groups), one panel per
    model with its seeds pooled (each cell: correct / images over the seeds): rows are the object's class, columns
    the background's; an empty cell holds no image. The panel's title names its worst group."""
    variations = [v for m in runs for v in m.challenges.get("groups", {})]
    variation = "mixed_rand" if "mixed_rand" in variations else next(iter(variations), None)
    if variation is None:
        return None
    models = pooled_matrices(runs, variation)
    plt = pyplot()
    cols = min(4, len(models))
    rows = -(-len(models) // cols)
    size = max(len(matrix) for matrix in models.values())
    side = 1.2 + 0.32 * size
    fig, axes = plt.subplots(rows, cols, figsize=(side * cols + 1.0, side * rows + 0.6), squeeze=False)
    image = None
    for ax, ((architecture, method), matrix) in zip(axes.flat, models.items()):
        objects = sorted(matrix)
        backgrounds = sorted({bg for row in matrix.values() for bg in row})
        values = np.full((len(objects), len(backgrounds)), np.nan)
        for i, obj in enumerate(objects):
            for j, bg in enumerate(backgrounds):
                if bg in matrix[obj]:
                    correct, images = matrix[obj][bg]
                    values[i, j] = 100 * correct / images
                    ax.text(j, i, f"{values[i, j]:.0f}", ha="center", va="center", fontsize=5, color="w")
        image = ax.imshow(values, vmin=0, vmax=100, cmap="viridis")
        ax.set_xticks(range(len(backgrounds)), backgrounds, rotation=90, fontsize=5)
        ax.set_yticks(range(len(objects)), objects, fontsize=5)
        worst = np.nanmin(values)
        ax.set_title(f"{architecture} {method}\nworst cell {worst:.0f} % (seeds pooled)", fontsize=7)
    for ax in axes.flat[len(models) :]:
        ax.axis("off")
    fig.supxlabel("background class", fontsize=8)
    fig.supylabel("object class", fontsize=8)
    fig.suptitle(f"{variation} accuracy per object x background class (%), {dataset}", fontsize=9)
    if image is not None:
        fig.colorbar(image, ax=axes, label="accuracy (%)", shrink=0.6)
    return save_figure(fig, path)
