"""IPHA's Feature Impact Index (thesis 7.2, Eq. 7.2; 7.4.2, Figs. 32-33): how much class y's probability changes
when only the pixels IPHA's mask keeps (x_important), or only those it removes (x_non_important), are left.

The mask is an attribution, IPHA's search (``rrx.attributions.ipha``: Eq. 7.1, Algs. 5-6, the constants C, named
by ``IPHA_FILLS`` of ``rrx.fills``);
this analysis scores it against the top-k masks of other attributions, k = half the pixels (7.4.2: k = 512 of
1024, ``top_k_mask``). f_y is the softmax probability of class y, so the Feature Impact Index
|f_y(x) - f_y(x_selected)| (Eq. 7.2) lies in [0, 1] like the thesis's percentages (Figs. 32-33).

Example:
    >>> mask, x_imp, x_non = rrx.attributions.ipha.ipha(model, x, y, "zeros", 100, 16, generator=g, norm_mean=None)
    >>> fii = feature_impact_index(model, x, x_non, y)  # (B,)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pandas as pd
import torch

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
    pct,
    summary,
)
from rrx.attributions.ipha import (
    IPHA_FILLS,
    SEARCHES,
    apply_mask,
    class_probability,
    constant_image,
    search_mask,
    top_k_mask,
)
from rrx.config import param
from rrx.errors import RRXError
from rrx.fills import OLD_SPELLINGS
from rrx.plots import image_strip, pyplot, save_figure
from rrx.record import Record
from rrx.tables import Figure, Table, thesis_order


def feature_impact_index(model, x: torch.Tensor, x_selected: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Feature Impact Index (thesis Eq. 7.2): FII = |f_y(x) - f_y(x_selected)|, f_y the softmax probability of class
    y. Low on x_important and high on x_non_important means the mask found the features the prediction rests on.

    Args:
        model (nn.Module): the classifier, on the images as given (wrap it in ``rrx.Model`` for its normalisation).
        x (Tensor): images (B, C, H, W).
        x_selected (Tensor): the same images with features removed (B, C, H, W), e.g. Eq. 7.1's
            x * M + C * (1 - M) for an IPHA mask M.
        y (Tensor): classes (B,) whose probability is compared.

    Returns:
        Tensor (B,): FII in [0, 1].
    """
    return (class_probability(model, x, y) - class_probability(model, x_selected, y)).abs()


@dataclass
class IPHAConfig(AnalysisConfig):
    """IPHA (thesis Alg. 5-6) and the Feature Impact Index (Eq. 7.2) against the top-k masks of other attributions"""

    name: str = param("ipha", "the registered name of the analysis")
    fill: Any = param(
        list(IPHA_FILLS),
        "C of Eq. 7.1, what removed pixels are filled with (rrx.fills.FILLS; grey_gaussian: N(0.5, 0.25^2) per "
        "pixel, clamped to [0, 1]); one or a list",
        choices=IPHA_FILLS,
    )
    search: str = param(
        "alg6",
        "alg6: Alg. 6 as stated (random half start, blocks only zeroed), until no block move is better | "
        "greedy_top_k: beyond the text, greedy deletion from all ones to the top-k share (half the pixels)",
        choices=tuple(SEARCHES),
    )
    iterations: int = param(
        10000,
        "the most steps per image; an image stops earlier when its search ends (converged in metrics.json)",
        low=1,
    )
    neighbours: int = param(
        16, "candidate masks per step (each zeroes one block x block square), scored in one batch", low=1
    )
    block: int = param(2, "side of the zeroed square", low=1)
    compare: Any = param(
        ["saliency", "guided_backprop", "gradcam", "guided_gradcam", "integrated_gradients"],
        "top-k masks (k = half the pixels) of any other rrx.attributions names; [] for IPHA only",
    )
    examples: int = param(2, "images drawn per fill (x, x_important, x_non_important)", low=0)
    max_images: Optional[int] = param(100, "null: all; N: N evenly spaced (every class in)", low=1)
    seed: int = param(0, "IPHA's start masks, block positions and Gaussian fill (one generator per fill)")


@register_analysis("ipha", config=IPHAConfig)
class IPHA:
    """IPHA and the Feature Impact Index (thesis 7.4.2, Figs. 32-33) on the test images of ``cfg.variation``: for each
    fill (the constant C) in ``cfg.fill``, IPHA's mask (``cfg.search``: ``alg6`` or ``greedy_top_k``, at most
    ``cfg.iterations`` steps of ``cfg.neighbours`` candidates, ``cfg.block``) and the top-k masks (k = half the
    pixels) of each attribution in ``cfg.compare`` (of the label) select x_important and x_non_important;
    FII(f, x, x_selected) per image, averaged.

    Results: ``{fill: {"important" | "non_important": {method: {"mean", "std", "n", "undefined"}},
    "kept": {method: share of pixels kept}, "search": {"name", "budget", "converged_share", and per image in the
    data's order "iterations", "kept", "converged"}}}``, methods ``ipha`` and the compared attributions;
    ``cfg.examples`` images drawn per fill (``ipha_<fill>_<k>.png``: x, x_important, x_non_important).
    """

    needs_masks = False
    keyed = ("fill",)  # the settings its result keys name

    def __init__(self, cfg):
        self.fills = [cfg.fill] if isinstance(cfg.fill, str) else list(cfg.fill)
        if not self.fills:
            raise RRXError(f"analysis.fill is empty; give one or more of {', '.join(IPHA_FILLS)}")
        repeated = sorted({fill for fill in self.fills if self.fills.count(fill) > 1})
        if repeated:  # one result per fill: the second would replace the first
            raise RRXError(f"analysis.fill={self.fills} names {', '.join(repeated)} more than once; give each once")
        self.search = cfg.search
        # any other attribution: IPHA's own search is the analysis's ``ipha`` row
        self.compare = (
            attribution_list("analysis.compare", cfg.compare, lambda a: a.name != "ipha") if cfg.compare else []
        )
        self.iterations, self.neighbours, self.block = int(cfg.iterations), int(cfg.neighbours), int(cfg.block)
        self.examples, self.seed, self.ig_steps = int(cfg.examples), int(cfg.seed), int(cfg.ig_steps)

    def run(self, model, data, dataset, runtime, out_dir) -> dict:
        methods = ["ipha", *self.compare]
        fii: dict[str, dict[str, dict[str, list[float]]]] = {
            c: {part: {m: [] for m in methods} for part in ("important", "non_important")} for c in self.fills
        }
        kept: dict[str, dict[str, list[float]]] = {c: {m: [] for m in methods} for c in self.fills}
        searched: dict[str, dict[str, list]] = {c: {"iterations": [], "converged": []} for c in self.fills}  # per image
        drawn = {c: 0 for c in self.fills}
        # one generator per fill, so a fill's results do not depend on which others run beside it
        generators = {
            c: torch.Generator().manual_seed(self.seed * len(IPHA_FILLS) + IPHA_FILLS.index(c)) for c in self.fills
        }
        mean = fill_mean(model, dataset)
        for x, y, _ in batches(data, runtime, "ipha"):
            top_k = {m: top_k_mask(explain(model, x, y, m, self.ig_steps)) for m in self.compare}  # (B, 1, H, W)
            for fill in self.fills:
                c = constant_image(x, fill, generators[fill], mean)
                found = search_mask(
                    self.search,
                    model,
                    x,
                    y,
                    c,
                    self.iterations,
                    self.neighbours,
                    self.block,
                    generators[fill],
                    runtime.batch_size,
                )
                searched[fill]["iterations"] += found.iterations.tolist()
                searched[fill]["converged"] += found.converged.tolist()
                for method, mask in {"ipha": found.mask, **top_k}.items():
                    x_important, x_non_important = apply_mask(x, mask, c), apply_mask(x, 1 - mask, c)
                    fii[fill]["important"][method] += feature_impact_index(model, x, x_important, y).tolist()
                    fii[fill]["non_important"][method] += feature_impact_index(model, x, x_non_important, y).tolist()
                    kept[fill][method] += mask.mean((1, 2, 3)).tolist()
                    if method == "ipha":
                        drawn[fill] = self._draw(x, x_important, x_non_important, fill, drawn[fill], out_dir)
        return {
            c: {part: {m: summary(v) for m, v in per.items()} for part, per in fii[c].items()}
            | {
                "kept": {m: sum(v) / len(v) for m, v in kept[c].items()},
                "search": self._search_record(searched[c] | {"kept": kept[c]["ipha"]}),
            }
            for c in self.fills
        }

    def _search_record(self, per_image: dict) -> dict:
        """The search's name and budget, the share of images it converged on, and the per-image lists."""
        converged = per_image["converged"]
        return {
            "name": self.search,
            "budget": self.iterations,
            "converged_share": sum(converged) / len(converged) if converged else None,
            **per_image,
        }

    def _draw(self, x, x_important, x_non_important, fill: str, done: int, out_dir) -> int:
        """Draw the first images up to ``cfg.examples`` per fill; returns how many are drawn."""
        for b in range(min(len(x), self.examples - done)):
            shown = torch.stack([x[b], x_important[b], x_non_important[b]]).permute(0, 2, 3, 1).float().cpu().numpy()
            image_strip(
                list(shown),
                ["x", "x_important", "x_non_important"],
                out_dir / f"ipha_{fill}_{done + b}.png",
                f"IPHA, fill {fill}",
            )
        return max(done, min(self.examples, done + len(x)))


# --- tables and figures (rrx report, and the run's folder) ---------------------------------------------------------
def table_ipha(runs: list[Record], part: str) -> pd.DataFrame:
    """Mean Feature Impact Index (Eq. 7.2) of the ``part`` (important or non_important) pixels that IPHA and the top-k
    masks of the other attributions select, percent; one row per model, fill and search (thesis Figs. 32-33).
    Search names the mask search of the ``ipha`` column: ``alg6`` (Alg. 6 as stated; also results written before
    there was a choice) or ``greedy_top_k`` (beyond the text, at the top-k masks' kept share). Results of an older
    rrx key the fill by its old spelling (``rrx.fills.OLD_SPELLINGS``), shown as today's."""
    return frame(
        [
            row
            | {
                "Fill": OLD_SPELLINGS.get(key, key),
                "Search": r.get("search", {}).get("name", "alg6"),
                **{method: pct(stats) for method, stats in r[part].items()},
            }
            for row, key, r in entries(runs, "ipha")
        ]
    )


def figure_ipha(runs: list[Record], dataset: str, part: str, path: Path) -> Path | None:
    """Thesis Figs. 32-33 shape: one panel per fill, the mean FII of each selection method,
    one bar group per model."""
    having = [m for m in runs if "ipha" in m.analyses]
    if not having:
        return None
    plt = pyplot()
    df = table_ipha(having, part)
    df["Model"] = model_label(df) + " (" + df["Search"] + ")"  # an alg6 and a greedy_top_k run are two bar groups
    methods = [c for c in df.columns if c not in ("Architecture", "Method", "Settings", "Fill", "Search", "Model")]
    fills = list(dict.fromkeys(df["Fill"]))
    fig, axes = plt.subplots(len(fills), 1, figsize=(7, 1.8 * len(fills)), sharex=True, squeeze=False)
    for ax, fill in zip(axes[:, 0], fills):
        means = df[df["Fill"] == fill].groupby("Model", sort=False)[methods].mean()
        means.T.plot.bar(ax=ax, rot=15, legend=False)
        ax.set_ylabel(f"FII (%)\n{fill}")
        ax.set_ylim(0, 100)
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center", ncol=2, fontsize=8)
    fig.suptitle(f"IPHA, {part.replace('_', '-')} pixels, {dataset}")
    return save_figure(fig, path)


def _table(part: str):
    return lambda runs: thesis_order(table_ipha(runs, part))


def _figure(part: str):
    return lambda runs, dataset, path: figure_ipha(runs, dataset, part, path)


TABLES = [
    Table(
        "ipha_non_important",
        "Feature Impact Index of the non-important pixels (thesis Fig. 32 shape; higher: the "
        "method found what the prediction rests on), percent",
        _table("non_important"),
        holding("ipha"),
        104,
        mark_best=False,
    ),
    Table(
        "ipha_important",
        "Feature Impact Index of the important pixels (thesis Fig. 33 shape; lower is better), percent",
        _table("important"),
        holding("ipha"),
        105,
        mark_best=False,
    ),
]
FIGURES = [
    Figure(
        "ipha_non_important",
        "Feature Impact Index of the non-important pixels (thesis Fig. 32 shape)",
        _figure("non_important"),
        holding("ipha"),
        132,
    ),
    Figure(
        "ipha_important",
        "Feature Impact Index of the important pixels (thesis Fig. 33 shape)",
        _figure("important"),
        holding("ipha"),
        133,
    ),
]
