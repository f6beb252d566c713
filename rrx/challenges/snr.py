"""Signal-to-noise ratio of attributions (thesis 4.2.7, Figs. 18-19).

Per image: a(p) = sum_c |A_c(p)|, the attribution A of the target class summed over channels;
SNR = mean of a over the object (mask 1) / mean of a over the context (mask 0). Every attribution whose map is
such a channel sum of an input attribution (its ``per_channel``) serves; the thesis reads saliency and Integrated
Gradients.
"""

from __future__ import annotations

import logging
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import torch
from tqdm import tqdm

from rrx.analyses.common import TARGETS
from rrx.attributions import attribution_map, attribution_names, check_attribution, display_name
from rrx.challenges import register_challenge
from rrx.config import ComponentConfig, param
from rrx.errors import RRXError
from rrx.plots import box_plot, pyplot, save_figure
from rrx.record import Record
from rrx.runtime import Runtime
from rrx.tables import Figure, Table, thesis_order

log = logging.getLogger(__name__)
BASELINES = ("black", "mean")  # IG baseline: all-zero image, or the dataset's mean colour


def per_channel(attribution) -> bool:
    """Whether the map of ``attribution`` is the a(p) = sum_c |A_c(p)| the SNR is defined on."""
    return attribution.per_channel


def signal_to_noise(maps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-image SNR (B,) from attribution maps (B, H, W), |A| summed over channels, and masks (B, 1, H, W),
    1 on the object.

    NaN for an image whose mask has no object or no context pixel, or whose context attribution is 0.
    """
    signal, context = mask[:, 0], 1 - mask[:, 0]
    n_signal, n_context = signal.sum((1, 2)), context.sum((1, 2))
    signal_mean = (maps * signal).sum((1, 2)) / n_signal
    context_mean = (maps * context).sum((1, 2)) / n_context
    snr = signal_mean / context_mean
    undefined = (n_signal == 0) | (n_context == 0) | (context_mean == 0)
    return torch.where(undefined, torch.full_like(snr, math.nan), snr)


@dataclass
class SNRConfig(ComponentConfig):
    """SNR of attributions (thesis Figs. 18-19): per image, mean |attribution| on the object / on the context"""

    name: str = param("snr", "the registered name of the challenge")
    attribution: Any = param(
        ["saliency", "integrated_gradients"],
        "one or a list of the per-channel attributions of rrx.attributions (not gradcam, guided_gradcam, ipha), or "
        "captum:<ClassName>",
    )
    snr_variation: str = param("original", "the test images the ratio is computed on")
    snr_max_images: int | None = param(None, "null: every image of the variation; N: N evenly spaced", low=1)
    target: str = param("label", "attribution of: label (the true class) | prediction", choices=TARGETS)
    ig_steps: int = param(50, "Integrated Gradients: integration steps", low=1)
    ig_baseline: str = param(
        "black",
        "Integrated Gradients baseline: black (all zeros) | mean (the dataset's mean colour)",
        choices=BASELINES,
    )


@register_challenge("snr", config=SNRConfig)
class SNRChallenge:
    """SNR of the images of ``cfg.snr_variation`` (all, or ``cfg.snr_max_images`` evenly spaced) for each
    attribution in ``cfg.attribution``.

    Results: ``{"snr": {attribution: {"median": float, "per_image": [float], "undefined": int}}}``.
    Images with an undefined SNR (no object, no context, or zero context attribution) are
    counted in ``undefined``, left out of ``per_image`` and logged.
    """

    predictions = None  # it scores attributions, not predictions: no rows in predictions.parquet

    def __init__(self, cfg):
        names = cfg.attribution
        self.attributions = [names] if isinstance(names, str) else list(names)
        if not self.attributions:
            raise RRXError(
                f"challenge.attribution is empty; give one or more of {', '.join(attribution_names(per_channel))}"
            )
        for name in self.attributions:
            check_attribution("challenge.attribution", name, per_channel)
        self.variation = cfg.snr_variation
        self.steps, self.baseline, self.target = int(cfg.ig_steps), cfg.ig_baseline, cfg.target
        self.max_images = cfg.snr_max_images

    def needs(self) -> list[tuple[str, bool]]:
        return [(self.variation, True)]

    def evaluate(self, model, dataset, runtime: Runtime) -> dict:
        model.eval()
        data = dataset.variation_set(self.variation, masks=True)
        if self.max_images is not None and self.max_images < len(data):  # evenly spaced, so every class is in
            data = torch.utils.data.Subset(
                data, torch.linspace(0, len(data) - 1, int(self.max_images)).round().long().tolist()
            )
        loader = runtime.loader(data, shuffle=False)
        results = {}
        for name in self.attributions:
            ratios = []
            for x, y, mask in tqdm(loader, desc=f"snr {name}", leave=False, disable=not runtime.progress):
                x, y, mask = x.to(runtime.device), y.to(runtime.device), mask.to(runtime.device)
                if self.target == "prediction":
                    with torch.no_grad():
                        y = model(x).argmax(1)
                baseline = None
                if self.baseline == "mean":
                    baseline = torch.tensor(list(dataset.mean), device=x.device, dtype=x.dtype)[
                        None, :, None, None
                    ].expand_as(x)
                maps = attribution_map(model, x, y, name, baseline=baseline, steps=self.steps)
                ratios += signal_to_noise(maps.float(), mask.float()).tolist()
            defined = [r for r in ratios if not math.isnan(r)]
            if len(defined) < len(ratios):
                log.warning(
                    "snr %s: %d of %d images have no defined SNR "
                    "(empty object or context, or zero context attribution)",
                    name,
                    len(ratios) - len(defined),
                    len(ratios),
                )
            median = statistics.median(defined) if defined else math.nan
            results[name] = {"median": median, "per_image": defined, "undefined": len(ratios) - len(defined)}
            log.info("snr %-20s median %.3f over %d images (%s)", name, median, len(defined), self.variation)
        return {"snr": results}


# --- tables and figures (rrx report, and the run's folder) ---------------------------------------------------------
# Thesis Figs. 18-19 as numbers: the median signal-to-noise ratio of each run, per attribution method.
SNR_COLUMNS = {"SNR Saliency": "saliency", "SNR Integrated Gradients": "integrated_gradients"}


def table_snr(runs: list[Record]) -> pd.DataFrame:
    """One row per run: Architecture, Method and the run's median SNR per attribution (NaN where not run)."""
    rows = []
    for metrics in runs:
        snr = metrics.challenges.get("snr", {})
        row = {"Architecture": metrics.run["architecture"], "Method": metrics.run["method"]}
        rows.append(
            row | {column: snr.get(name, {}).get("median", float("nan")) for column, name in SNR_COLUMNS.items()}
        )
    return pd.DataFrame(rows, columns=["Architecture", "Method", *SNR_COLUMNS]).astype({c: float for c in SNR_COLUMNS})


def snr_boxplot(runs: list[Record], attribution: str, dataset: str, path: Path) -> Path | None:
    """Figs. 18-19: per-image signal-to-noise ratio per method, one panel per architecture (images of all
    seeds pooled), log scale."""
    plt = pyplot()
    import matplotlib.ticker

    values: dict[tuple[str, str], list[float]] = {}
    for m in runs:
        snr = m.challenges.get("snr", {}).get(attribution)
        if snr:
            values.setdefault((m.run["architecture"], m.run["method"]), []).extend(snr["per_image"])
    if not values:
        return None
    models = thesis_order(pd.DataFrame(list(values), columns=["Architecture", "Method"]))
    architectures = list(dict.fromkeys(models["Architecture"]))
    widths = [int((models["Architecture"] == a).sum()) for a in architectures]
    fig, axes = plt.subplots(
        1,
        len(architectures),
        figsize=(max(4.0, 0.6 * sum(widths) + 1.5), 3.6),
        sharey=True,
        squeeze=False,
        gridspec_kw={"width_ratios": widths},
    )
    for ax, arch in zip(axes[0], architectures):
        methods = models.loc[models["Architecture"] == arch, "Method"]
        box_plot(ax, {method: pd.Series(values[(arch, method)]) for method in methods}, "", log_scale=True)
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_xticks(ax.get_xticks(), ax.get_xticklabels(), rotation=35, ha="right", fontsize=7.5)
        ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_title(arch)
    axes[0][0].set_ylabel("signal-to-noise ratio (log scale)")
    fig.suptitle(
        f"Signal-to-noise ratio per image, {display_name(attribution)} ({dataset}); dashed: object and context "
        f"equally important"
    )
    return save_figure(fig, path)


def _snr_figure(attribution: str):
    return lambda runs, dataset, path: snr_boxplot(runs, attribution, dataset, path)


def _holds_snr(attribution: str) -> Callable[[Record], bool]:
    return lambda m: bool(m.challenges.get("snr", {}).get(attribution))


# a higher SNR is not a better model (thesis 4.2.7), so none is marked
TABLES = [
    Table(
        "snr",
        "Median signal-to-noise ratio of attributions (Figs. 18-19 as numbers)",
        table_snr,
        lambda m: "snr" in m.challenges,
        15,
        mark_best=False,
        in_run=False,
    )
]
FIGURES = [
    Figure(
        f"fig{number}_snr_{attribution}",
        f"Fig. {number}: signal-to-noise ratio, {attribution}",
        _snr_figure(attribution),
        _holds_snr(attribution),
        int(number),
    )
    for number, attribution in (("18", "saliency"), ("19", "integrated_gradients"))
]
