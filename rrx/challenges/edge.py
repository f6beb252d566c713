"""Edge removal (thesis 4.2.5, Fig. 17): black out a band of width W around the object boundary."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm import tqdm

from rrx.challenges import register_challenge
from rrx.challenges.background import BACKGROUND_VARIATIONS
from rrx.config import ComponentConfig, param
from rrx.plots import pyplot, save_figure
from rrx.predictions import concatenated, decide, gathered, prediction_frame, share_correct
from rrx.record import Record
from rrx.runtime import Runtime
from rrx.tables import Figure, Table, thesis_order

log = logging.getLogger(__name__)


def _dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Binary dilation with a (2r+1)x(2r+1) square: pixels within Chebyshev distance r of the mask."""
    if radius == 0:
        return mask
    return F.max_pool2d(mask, kernel_size=2 * radius + 1, stride=1, padding=radius)


def edge_band(mask: torch.Tensor, width: int) -> torch.Tensor:
    """Band of ``width`` pixels across the object boundary: ceil(W/2) outside it, floor(W/2) inside.

    Args:
        mask (Tensor): object masks (B, 1, H, W), 1 on the object.
        width (int): band width W in pixels.

    Returns:
        Tensor (B, 1, H, W), 1 on the band. For an s x s square and even W the band has
        (s + W)^2 - (s - W)^2 = 4 s W pixels.
    """
    outside = (width + 1) // 2
    inside = width // 2
    grown = _dilate(mask, outside)
    shrunk = 1 - _dilate(1 - mask, inside)
    return grown - shrunk


def remove_edge(x: torch.Tensor, mask: torch.Tensor, width: int) -> torch.Tensor:
    """Images (B, C, H, W) with the edge band set to black."""
    return x * (1 - edge_band(mask, width))


def dilation_levels(mask: torch.Tensor, max_radius: int) -> torch.Tensor:
    """For each pixel the smallest r <= ``max_radius`` whose (2r+1)x(2r+1) dilation of ``mask`` (B, 1, H, W) covers
    it (0 on the mask), ``max_radius + 1`` where none does: its Chebyshev distance to the mask, capped.

    The dilation by radius r is r dilations by 3x3 (a king's walk of r steps inside the image reaches every pixel
    within distance r), so one pass of ``max_radius`` 3x3 dilations gives every radius at once."""
    levels = torch.full_like(mask, max_radius + 1)
    grown = mask
    levels[grown > 0] = 0
    for r in range(1, max_radius + 1):
        grown = _dilate(grown, 1)
        levels[(grown > 0) & (levels > r)] = r
    return levels


def edge_bands(mask: torch.Tensor, widths: list[int]) -> dict[int, torch.Tensor]:
    """``edge_band(mask, w)`` for every w in ``widths`` (each (B, 1, H, W)), from one pass of 3x3 dilations of the
    object and of the context (``dilation_levels``) instead of two large square dilations per width."""
    outside = dilation_levels(mask, max((w + 1) // 2 for w in widths))  # distance to the object
    inside = dilation_levels(1 - mask, max(w // 2 for w in widths))  # distance to the context
    # edge_band = dilate(mask, ceil(W/2)) - (1 - dilate(1 - mask, floor(W/2)))
    return {w: (outside <= (w + 1) // 2).to(mask.dtype) + (inside <= w // 2).to(mask.dtype) - 1 for w in widths}


def applied_width(width: int, image_size: int, reference_size: int | None) -> int:
    """The band width in pixels for nominal ``width``: the thesis's W = 5..50 are pixels at 224 px, so
    W is scaled as max(1, round(W * image_size / reference_size)); ``reference_size=None`` keeps W as is."""
    if reference_size is None:
        return width
    return max(1, round(width * image_size / reference_size))


@dataclass
class EdgeConfig(ComponentConfig):
    """thesis 4.2.5: a black band of width W across the object boundary, on original and the mixed variations"""

    name: str = param("edge", "the registered name of the challenge")
    edge_variations: list[str] = param(BACKGROUND_VARIATIONS, "the variations the edge is removed on")
    widths: list[int] = param(list(range(5, 55, 5)), "the band widths W", low=1)
    reference_size: int | None = param(
        224,
        "W is in pixels at this size, scaled to the images: max(1, round(W * size / 224)); null = W px as given",
        low=1,
    )


@register_challenge("edge", config=EdgeConfig)
class EdgeChallenge:
    """Accuracy on each of ``cfg.edge_variations`` with the edge removed, for each W in ``cfg.widths``,
    scaled from ``cfg.reference_size`` to the images' size (``applied_width``).

    Results: ``{"edge": {variation: {W: accuracy}}, "edge_widths": {W: applied width in pixels}}``, keyed by
    the nominal W; every image is read once per variation. ``predictions``: a row per image and width
    (``rrx.predictions``, condition ``W=<w>``).
    """

    def __init__(self, cfg):
        self.variations = list(cfg.edge_variations)
        self.widths = [int(w) for w in cfg.widths]
        self.reference_size = cfg.reference_size
        self.predictions: pd.DataFrame | None = None

    def needs(self) -> list[tuple[str, bool]]:
        return [(v, True) for v in self.variations]

    @torch.no_grad()
    def evaluate(self, model, dataset, runtime: Runtime) -> dict:
        model.eval()
        grid, applied, frames = {}, {}, []
        for variation in self.variations:
            data = dataset.variation_set(variation, masks=True)
            loader = runtime.loader(data, shuffle=False)
            found: dict[int, list[dict[str, torch.Tensor]]] = {w: [] for w in self.widths}
            for x, y, mask in tqdm(loader, desc=f"edge {variation}", leave=False, disable=not runtime.progress):
                x, mask = x.to(runtime.device), mask.to(runtime.device)
                applied = {w: applied_width(w, x.shape[-1], self.reference_size) for w in self.widths}
                bands = edge_bands(mask, sorted(set(applied.values())))
                for width in self.widths:
                    with runtime.autocast():
                        logits = model(x * (1 - bands[applied[width]]))
                    prediction, confidence = decide(logits)
                    found[width].append({"label": y, "prediction": prediction, "confidence": confidence})
            per_width = {w: gathered(parts) for w, parts in found.items()}
            grid[variation] = {str(w): share_correct(predicted) for w, predicted in per_width.items()}
            frames += [
                prediction_frame(dataset, variation, data, predicted, "edge", f"W={w}")
                for w, predicted in per_width.items()
            ]
            log.info(
                "edge %-10s %s",
                variation,
                "  ".join(
                    f"W={w} ({applied[w]} px): {100 * a:.1f}%" for w, a in zip(self.widths, grid[variation].values())
                ),
            )
        self.predictions = concatenated(frames)
        return {"edge": grid, "edge_widths": {str(w): px for w, px in applied.items()}}


# --- tables and figures (rrx report, and the run's folder) ---------------------------------------------------------
def edge_grid(metrics: Record) -> pd.DataFrame:
    """Edge-removal accuracy in percent: one row per variation, one column per nominal width W (Fig. 17b),
    named ``W=<nominal> (<applied> px)`` where the band was scaled to the image size."""
    grid = metrics.challenges["edge"]
    applied = metrics.challenges.get("edge_widths", {})
    df = pd.DataFrame({variation: {int(w): 100 * a for w, a in accs.items()} for variation, accs in grid.items()}).T
    df.index.name = "Variation"
    df.columns = [f"W={w}" if applied.get(str(w), w) == w else f"W={w} ({applied[str(w)]} px)" for w in df.columns]
    return df.round(2).reset_index()


def edge_heatmap(runs: list[Record], dataset: str, path: Path) -> Path | None:
    """Fig. 17b: accuracy with the edge removed, one panel per variation, models x widths W (mean over seeds)."""
    plt = pyplot()
    rows = []
    for m in runs:
        for variation, accs in m.challenges.get("edge", {}).items():
            for width, acc in accs.items():
                rows.append(
                    {
                        "Architecture": m.run["architecture"],
                        "Method": m.run["method"],
                        "Variation": variation,
                        "W": int(width),
                        "Accuracy": 100 * acc,
                    }
                )
    if not rows:
        return None
    df = pd.DataFrame(rows)
    models = thesis_order(df[["Architecture", "Method"]].drop_duplicates())
    labels = list(models["Architecture"] + " " + models["Method"])
    df["Model"] = df["Architecture"] + " " + df["Method"]
    variations = list(dict.fromkeys(df["Variation"]))
    fig, axes = plt.subplots(
        1, len(variations), figsize=(2.6 * len(variations) + 1.5, 0.32 * len(labels) + 1.4), sharey=True, squeeze=False
    )
    for ax, variation in zip(axes[0], variations):
        grid = (
            df[df["Variation"] == variation]
            .pivot_table(index="Model", columns="W", values="Accuracy", aggfunc="mean")
            .reindex(labels)
        )
        image = ax.imshow(grid.to_numpy(), vmin=0, vmax=100, cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(grid.columns)), grid.columns, fontsize=7)
        ax.set_xlabel("edge width W (px at challenge.reference_size)")
        ax.set_title(variation)
        for (i, j), value in np.ndenumerate(grid.to_numpy()):
            if not np.isnan(value):
                ax.text(
                    j,
                    i,
                    f"{value:.0f}",
                    ha="center",
                    va="center",
                    fontsize=5.5,
                    color="white" if value < 60 else "black",
                )
    axes[0][0].set_yticks(range(len(labels)), labels, fontsize=7)
    fig.colorbar(image, ax=axes[0].tolist(), fraction=0.02, pad=0.01, label="accuracy (%)")
    fig.suptitle(f"Accuracy with the object's edge removed ({dataset})")
    return save_figure(fig, path)


def _holds(m: Record) -> bool:
    return "edge" in m.challenges


# one model's grid: written into its run's folder; the report draws Fig. 17b over the runs instead
TABLES = [
    Table(
        "edge",
        "Edge removal: accuracy per variation and width W (Fig. 17b as numbers)",
        lambda runs: edge_grid(runs[0]),
        _holds,
        17,
        mark_best=False,
        in_report=False,
    )
]
FIGURES = [Figure("fig17b_edge", "Fig. 17b: edge removal", edge_heatmap, _holds, 17.2)]
