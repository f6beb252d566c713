"""U Analysis (thesis §7.1, Algorithm 4; parameters §7.4.1): patches that must not coexist for a correct prediction.

An attribution map is summed over W x W patches (Alg. 4 line 1), the patches are sorted by that importance (line 2)
and removed cumulatively, each replaced by a fill (line 3, the thesis's noise): x_i is x without its first i patches,
so with P patches the sequence is x_0 = x, x_1, ..., x_P (only the fill). All B * (P + 1) images are predicted in
batches (lines 4-5).
A *U-occurrence* is left < middle < right with f(x_left) = y, f(x_middle) != y, f(x_right) = y: the information of
x_right suffices, yet the patches of x_middle that x_right lacks push the model away from y (lines 6-13).

Parameters of the thesis's experiments (§7.4.1): any attribution method, ``ORDERS`` (increasing: least important
patch removed first, Fig. 26), ``U_FILLS`` (``rrx.fills``), and a window of 10 % .. 33 % of the image side
(``window_fraction``).

Example (shapes)::

    maps = attribution_map(model, x, y, "saliency")            # (B, H, W)
    r = u_analysis(model, x, y, maps, window_fraction=0.1, order="increasing", fill="zeros",
                   generator=torch.Generator().manual_seed(0))
    r.predictions                                              # (B, P + 1), index i predicts x_i
    r.has_u, r.triples[b]                                      # (B,) bool; [(left, middle, right), ...]
    sequence_images(x, r.fill, r.order, r.size, b, r.triples[b][0])   # (3, C, H, W), the U's images
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pandas as pd
import torch
import torch.nn.functional as F

from rrx.analyses import register_analysis
from rrx.analyses.common import (
    AnalysisConfig,
    attribution_list,
    batches,
    entries,
    explain,
    fill_mean,
    frame,
    holding,
    model_label,
)
from rrx.config import param
from rrx.errors import RRXError, check_choice
from rrx.plots import image_strip, pyplot, save_figure
from rrx.record import Record
from rrx.tables import Figure, Table, thesis_order

log = logging.getLogger(__name__)

U_FILLS = ("zeros", "ones", "gaussian", "image_mean", "region_mean", "normalisation_mean")  # of rrx.fills.FILLS
ORDERS = ("increasing", "decreasing", "random")
MANY_PATCHES = 1024  # more patches than this (a window under 1/32 of the side) is warned of: one prediction each


def window_pixels(window_fraction: float, side: int) -> int:
    """The patch side W in pixels for ``window_fraction`` of the image side ``side``: the nearest integer (halves up),
    at least 1. RRXError unless 0 < window_fraction <= 1 (a window larger than the image has no patches to
    remove)."""
    if not 0 < window_fraction <= 1:
        what = "larger than the image" if window_fraction > 1 else "empty"
        raise RRXError(
            f"U Analysis window_fraction={window_fraction} is {what}; it is a fraction of the image side, in (0, 1]"
        )
    return max(1, math.floor(window_fraction * side + 0.5))  # <= side since window_fraction <= 1


def patch_grid(h: int, w: int, size: int, device=None) -> torch.Tensor:
    """(H, W) long: the patch index of every pixel. Patches of ``size`` x ``size`` start at multiples of ``size``
    and are numbered row-major, P = ceil(H / size) * ceil(W / size); when ``size`` does not divide a side, the last
    row (column) of patches is cut by the image border and smaller (as the thesis's code, whose origins are
    ``range(0, H, size)``)."""
    rows = torch.arange(h, device=device) // size
    cols = torch.arange(w, device=device) // size
    return rows[:, None] * math.ceil(w / size) + cols[None, :]


def _patch_sums(t: torch.Tensor, size: int) -> torch.Tensor:
    """(..., rows, cols) exact sums of ``t`` (..., H, W) over its patches (zero-padded to whole patches)."""
    h, w = t.shape[-2:]
    rows, cols = math.ceil(h / size), math.ceil(w / size)
    t = F.pad(t, (0, cols * size - w, 0, rows * size - h))
    return t.reshape(*t.shape[:-2], rows, size, cols, size).sum((-3, -1))


def patch_scores(maps: torch.Tensor, size: int) -> torch.Tensor:
    """(B, P) importance of every patch: the sum of the attribution maps (B, H, W) over it (Alg. 4 line 1)."""
    return _patch_sums(maps, size).flatten(1)


def patch_order(scores: torch.Tensor, order: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, P) patch indices in removal order (Alg. 4 line 2) from the scores (B, P).

    ``increasing``: the least important patch first (Fig. 26); ``decreasing``: the most important first (ties keep
    the row-major patch order in both); ``random``: a permutation per image drawn with ``generator``.
    """
    check_choice("analysis.order", order, ORDERS)
    if order == "random":
        device = generator.device if generator is not None else scores.device
        draw = torch.rand(scores.shape, generator=generator, device=device)
        return draw.argsort(1).to(scores.device)
    return torch.sort(scores, dim=1, descending=order == "decreasing", stable=True).indices


def noise_fill(
    x: torch.Tensor,
    size: int,
    fill: str,
    generator: torch.Generator | None = None,
    norm_mean: Sequence[float] | None = None,
) -> torch.Tensor:
    """(B, C, H, W) the value every pixel of x (B, C, H, W) takes once its patch is removed, by ``fill``, one of
    ``U_FILLS`` (``rrx.fills.FILLS``). It is drawn once per image, so a removed patch keeps the same noise along the
    whole sequence.

    - ``zeros`` / ``ones``: black / white.
    - ``gaussian``: N(0, 1) per pixel and channel in [0, 1] pixel space, not clamped, drawn with ``generator``
      (the thesis's code: ``np.random.normal(0.0, 1.0)`` on the [0, 1] image before normalisation).
    - ``image_mean``: the image's mean colour (per channel).
    - ``region_mean``: the removed patch's own mean colour (per channel).
    - ``normalisation_mean``: ``norm_mean``, the dataset's mean colour (one value per channel).
    """
    check_choice("analysis.fill", fill, U_FILLS)
    if fill == "zeros":
        return torch.zeros_like(x)
    if fill == "ones":
        return torch.ones_like(x)
    if fill == "gaussian":
        device = generator.device if generator is not None else x.device
        return torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype).to(x.device)
    if fill == "image_mean":
        return x.mean((2, 3), keepdim=True).expand_as(x)
    if fill == "region_mean":
        h, w = x.shape[-2:]
        pixels = _patch_sums(torch.ones(h, w, device=x.device, dtype=x.dtype), size)  # (rows, cols), fewer at borders
        means = (_patch_sums(x, size) / pixels).flatten(2)  # (B, C, P)
        return means[:, :, patch_grid(h, w, size, x.device)]
    if norm_mean is None or len(norm_mean) != x.shape[1]:
        raise RRXError(
            f"U Analysis fill=normalisation_mean needs the dataset's mean colour with {x.shape[1]} "
            f"values; got {norm_mean}"
        )
    return torch.as_tensor(norm_mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1).expand_as(x)


def _ranks(order: torch.Tensor, h: int, w: int, size: int) -> torch.Tensor:
    """(B, H, W) the removal step of every pixel's patch: pixel is gone from x_i iff its rank < i."""
    b, p = order.shape
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(p, device=order.device).expand(b, p))  # (B, P)
    return rank[:, patch_grid(h, w, size, order.device)]


def _compose(
    x: torch.Tensor, fill: torch.Tensor, ranks: torch.Tensor, images: torch.Tensor, steps: torch.Tensor
) -> torch.Tensor:
    """(K, C, H, W) x_steps[k] of image images[k], for index tensors images, steps (K,)."""
    removed = ranks[images] < steps[:, None, None]  # (K, H, W)
    return torch.where(removed[:, None], fill[images], x[images])


def sequence_images(
    x: torch.Tensor, fill: torch.Tensor, order: torch.Tensor, size: int, image: int, steps: Sequence[int]
) -> torch.Tensor:
    """(len(steps), C, H, W) the images x_i (i in ``steps``) of image ``image``'s sequence, e.g. a U's three
    images, with the ``fill`` and ``order`` of a ``UResult``."""
    h, w = x.shape[-2:]
    ranks = _ranks(order[image : image + 1], h, w, size)
    at = torch.as_tensor(list(steps), device=x.device)
    return _compose(x[image : image + 1], fill[image : image + 1], ranks, torch.zeros_like(at), at)


def removal_sequence(
    x: torch.Tensor,
    order: torch.Tensor,
    size: int,
    fill: str,
    generator: torch.Generator | None = None,
    norm_mean: Sequence[float] | None = None,
) -> torch.Tensor:
    """(B, P + 1, C, H, W) the cumulative removals of Alg. 4 line 3 for images x (B, C, H, W) and patch orders
    (B, P): index i is x without the patches order[:, :i], replaced by ``fill`` (see ``noise_fill``).

    x_0 = x belongs to the sequence: §7.1 defines x_i as x without its first i patches, and the thesis's code
    (``noise_*``: ``ans = [img.copy()]``, then one image per removal) predicts the original at index 0, so a U
    may start at the original image. x_P holds the fill only.
    """
    b, p = order.shape
    filled = noise_fill(x, size, fill, generator, norm_mean)
    images = torch.arange(b, device=x.device).repeat_interleave(p + 1)
    steps = torch.arange(p + 1, device=x.device).repeat(b)
    h, w = x.shape[-2:]
    return _compose(x, filled, _ranks(order, h, w, size), images, steps).view(b, p + 1, *x.shape[1:])


def u_triples(correct: torch.Tensor, generator: torch.Generator | None = None) -> list[list[tuple[int, int, int]]]:
    """Alg. 4 lines 6-13 for each row of ``correct`` (B, N) bool (prediction of x_i == target): for consecutive
    correct positions left < right with right - left > 1, the triple (left, middle, right). Every index between
    them is wrong by construction. ``choice_between``: with ``generator``, middle is drawn uniformly from the gap
    (the thesis's code: ``random.choice(range(left + 1, right))``); without, it is the first wrong index, left + 1.
    """
    triples = []
    for row in correct.cpu():
        positions = torch.nonzero(row).flatten().tolist()
        found = []
        for left, right in zip(positions, positions[1:]):
            if right - left > 1:
                if generator is None:
                    middle = left + 1
                else:
                    middle = (
                        left
                        + 1
                        + int(torch.randint(right - left - 1, (1,), generator=generator, device=generator.device))
                    )
                found.append((left, middle, right))
        triples.append(found)
    return triples


def has_u(correct: torch.Tensor) -> torch.Tensor:
    """(B,) True where ``correct`` (B, N) has a wrong prediction with a correct one before and after it."""
    c = correct.int()
    before = c.cumsum(1) > 0
    after = c.flip(1).cumsum(1).flip(1) > 0
    return (~correct & before & after).any(1)


@dataclass
class UResult:
    """What ``u_analysis`` found for a batch of B images with P patches.

    predictions (B, P + 1) long: the predicted class of x_0 = x, ..., x_P. correct (B, P + 1) bool.
    has_u (B,) bool: at least one U. triples: per image, its (left, middle, right) U's (indices into predictions).
    size: the patch side in pixels. order (B, P): the removal order. fill (B, C, H, W): the fill of removed pixels
    (with ``sequence_images`` it rebuilds the exact images the model saw).
    """

    predictions: torch.Tensor
    correct: torch.Tensor
    has_u: torch.Tensor
    triples: list[list[tuple[int, int, int]]]
    size: int
    order: torch.Tensor
    fill: torch.Tensor


def u_analysis(
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    maps: torch.Tensor,
    window_fraction: float,
    order: str,
    fill: str,
    generator: torch.Generator | None = None,
    norm_mean: Sequence[float] | None = None,
    batch_size: int | None = None,
) -> UResult:
    """U Analysis (thesis Alg. 4) of images x (B, C, H, W) in [0, 1] with targets y (B,) and attribution maps
    maps (B, H, W).

    Args:
        model: maps x to logits (B, K); called under ``torch.no_grad`` (its train/eval mode is left as is).
        window_fraction (float): patch side as a fraction of the shorter image side, in (0, 1] (thesis: 0.1 ..
            0.33).
        order (str): one of ``ORDERS``. fill (str): one of ``U_FILLS`` (``rrx.fills``).
        generator (torch.Generator, optional): draws the random order, the Gaussian noise and the U's middles.
            Default: None (torch's global RNG; middles are then the first wrong index).
        norm_mean (sequence of float, optional): the dataset's mean colour, for ``normalisation_mean``.
        batch_size (int, optional): images per forward pass. Default: None, all B * (P + 1) in one.
    """
    check_choice("analysis.order", order, ORDERS)
    check_choice("analysis.fill", fill, U_FILLS)
    h, w = x.shape[-2:]
    if maps.shape != (x.shape[0], h, w):
        raise ValueError(f"maps {tuple(maps.shape)} must be (B, H, W) for images {tuple(x.shape)}")
    size = window_pixels(window_fraction, min(h, w))
    patches = patch_order(patch_scores(maps, size), order, generator).to(x.device)  # (B, P)
    filled = noise_fill(x, size, fill, generator, norm_mean)
    ranks = _ranks(patches, h, w, size)
    n = patches.shape[1] + 1
    total = x.shape[0] * n
    chunk = batch_size or total
    chunks: list[torch.Tensor] = []
    with torch.no_grad():
        for start in range(0, total, chunk):
            k = torch.arange(start, min(start + chunk, total), device=x.device)
            chunks.append(model(_compose(x, filled, ranks, k // n, k % n)).argmax(1))
    predictions = torch.cat(chunks).view(-1, n)  # (B, P + 1)
    correct = predictions == y.to(predictions.device)[:, None]
    return UResult(predictions, correct, has_u(correct), u_triples(correct, generator), size, patches, filled)


@dataclass
class UAnalysisConfig(AnalysisConfig):
    """U Analysis (thesis Alg. 4): remove patches in order of importance; a U is correct, wrong, correct"""

    name: str = param("u_analysis", "the registered name of the analysis")
    attribution: str = param("saliency", "one name of rrx.attributions, or captum:<ClassName>")
    order: str = param(
        "increasing", "increasing (least important patch removed first) | decreasing | random", choices=ORDERS
    )
    fill: str = param(
        "zeros",
        "what a removed patch is filled with (rrx.fills.FILLS; gaussian: N(0, 1) per pixel, not clamped)",
        choices=U_FILLS,
    )
    window_fraction: float = param(
        0.1,
        "patch side as a fraction of the shorter image side (thesis: 0.1 .. 0.33; not pixels)",
        low=0.0,
        high=1.0,
        low_open=True,
    )
    examples: int = param(4, "U's drawn as PNGs (x_left, x_middle, x_right)", low=0)
    max_images: Optional[int] = param(200, "null: all; N: N evenly spaced (every class in)", low=1)
    seed: int = param(0, "the random order, the Gaussian fill and the U's middles")


@register_analysis("u_analysis", config=UAnalysisConfig)
class UAnalysis:
    """U Analysis of the test images of ``cfg.variation`` with one setting: ``cfg.attribution`` (of the label),
    ``cfg.order``, ``cfg.fill`` and ``cfg.window_fraction``; sweep them with ``-m`` (thesis Fig. 30 groups the runs).

    Results: ``{"<attribution>, <order>, <fill>, window <w>": {"u_share", "images", "images_with_u", "triples",
    "correct_original", "patch_size", "patches", "examples", ...}}``; ``cfg.examples`` U's are drawn as PNGs
    (``u_example_<k>.png``: x_left, x_middle, x_right with their predictions).
    """

    needs_masks = False
    keyed = ("attribution", "order", "fill", "window_fraction")  # the settings its result keys name

    def __init__(self, cfg):
        (self.attribution,) = attribution_list("analysis.attribution", [cfg.attribution])
        self.order, self.fill, self.window_fraction = cfg.order, cfg.fill, float(cfg.window_fraction)
        self.examples, self.seed, self.ig_steps = int(cfg.examples), int(cfg.seed), int(cfg.ig_steps)

    def run(self, model, data, dataset, runtime, out_dir) -> dict:
        self._warn_of_tiny_patches(*data[0][0].shape[-2:])
        generator = torch.Generator(device=runtime.device).manual_seed(self.seed)
        images = with_u = correct_original = triples = 0
        examples: list[str] = []
        for x, y, _ in batches(data, runtime, f"u_analysis {self.attribution}"):
            maps = explain(model, x, y, self.attribution, self.ig_steps)
            r = u_analysis(
                model,
                x,
                y,
                maps,
                self.window_fraction,
                self.order,
                self.fill,
                generator,
                fill_mean(model, dataset),
                runtime.batch_size,
            )
            images += len(x)
            with_u += int(r.has_u.sum())
            correct_original += int(r.correct[:, 0].sum())
            triples += sum(map(len, r.triples))
            for b in torch.nonzero(r.has_u).flatten().tolist()[: self.examples - len(examples)]:
                examples.append(self._draw(x, y, r, b, dataset.classes, out_dir / f"u_example_{len(examples)}.png"))
        setting = f"{self.attribution}, {self.order}, {self.fill}, window {self.window_fraction:g}"
        log.info(
            "U analysis (%s): %d of %d images have a U-occurrence (%.1f %%)",
            setting,
            with_u,
            images,
            100 * with_u / images,
        )
        return {
            setting: {
                "attribution": self.attribution,
                "order": self.order,
                "fill": self.fill,
                "window_fraction": self.window_fraction,
                "patch_size": r.size,
                "patches": r.order.shape[1],
                "images": images,
                "images_with_u": with_u,
                "u_share": with_u / images,
                "correct_original": correct_original,
                "triples": triples,
                "examples": examples,
            }
        }

    def _warn_of_tiny_patches(self, h: int, w: int) -> None:
        """A warning when the window is under a pixel or gives over MANY_PATCHES patches (one prediction each)."""
        size = window_pixels(self.window_fraction, min(h, w))
        patches = math.ceil(h / size) * math.ceil(w / size)
        if self.window_fraction * min(h, w) < 1 or patches > MANY_PATCHES:
            log.warning(
                "analysis.window_fraction=%g is %.3g px of a %d px image: %d px patches, %d of them, %d predictions "
                "per image (the thesis's windows are 0.1 .. 0.33 of the side)",
                self.window_fraction,
                self.window_fraction * min(h, w),
                min(h, w),
                size,
                patches,
                patches + 1,
            )

    @staticmethod
    def _draw(x, y, r: UResult, b: int, classes, path) -> str:
        triple = r.triples[b][0]
        shown = sequence_images(x, r.fill, r.order, r.size, b, triple).permute(0, 2, 3, 1).float().cpu().numpy()
        names = list(classes) if classes else None
        titles = [f"x_{i}: {names[p] if names else p}" for i, p in zip(triple, r.predictions[b, list(triple)].tolist())]
        image_strip(list(shown), titles, path, f"label {names[int(y[b])] if names else int(y[b])}")
        return path.name


# --- tables and figures (rrx report, and the run's folder) ---------------------------------------------------------
def table_u(runs: list[Record]) -> pd.DataFrame:
    """U-occurrence share (images with at least one U), percent, per setting. Results of an older rrx name the fill
    ``noise`` and the window fraction ``window`` (the same values)."""
    df = frame(
        [
            row
            | {
                "Attribution": r["attribution"],
                "Order": r["order"],
                "Fill": r["fill"] if "fill" in r else r["noise"],
                "Window fraction": f"{r['window_fraction'] if 'window_fraction' in r else r['window']:g}",
                "U share": 100 * r["u_share"],
                "Images": r["images"],
            }
            for row, _, r in entries(runs, "u_analysis")
        ]
    )
    return df.sort_values(
        [c for c in ("Settings", "Attribution", "Order", "Fill", "Window fraction") if c in df], kind="stable"
    )


def figure_u(runs: list[Record], dataset: str, path: Path) -> Path | None:
    """Thesis Fig. 30 shape: U-occurrence share grouped by each parameter (attribution, fill, window fraction,
    order), one line per model (the mean over the runs with that parameter value)."""
    having = [m for m in runs if "u_analysis" in m.analyses]
    if not having:
        return None
    plt = pyplot()
    df = table_u(having)
    df["Model"] = model_label(df)
    fig, axes = plt.subplots(1, 4, figsize=(12, 3), sharey=True)
    for ax, parameter in zip(axes, ["Attribution", "Fill", "Window fraction", "Order"]):
        for model, rows in df.groupby("Model", sort=False):
            means = rows.groupby(parameter, sort=True)["U share"].mean()
            ax.plot(range(len(means)), means.to_numpy(), marker="o", label=model)
            ax.set_xticks(range(len(means)), means.index, rotation=30, ha="right")
        ax.set_title(parameter)
    axes[0].set_ylabel("U occurrence (%)")
    axes[-1].legend(fontsize=7)
    fig.suptitle(f"U Analysis, {dataset}")
    return save_figure(fig, path)


TABLES = [
    Table(
        "u_analysis",
        "U Analysis: share of images with a U-occurrence (thesis 7.4.1), percent",
        lambda runs: thesis_order(table_u(runs)),
        holding("u_analysis"),
        103,
        mark_best=False,
    )
]
FIGURES = [
    Figure("u_analysis", "U-occurrence by parameter (thesis Fig. 30 shape)", figure_u, holding("u_analysis"), 130)
]
