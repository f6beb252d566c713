"""The thesis's figures (Figs. 14-19) as PNG files, from the runs of one dataset."""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib
import matplotlib.patches
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from rrx.attributions import display_name  # noqa: E402
from rrx.outputs import atomic_write  # noqa: E402
from rrx.report.aggregate import thesis_order  # noqa: E402
from rrx.report.tables import model_name, percent, table5_row  # noqa: E402

log = logging.getLogger(__name__)
plt.rcParams.update({"font.size": 9, "axes.titlesize": 10, "figure.dpi": 200, "savefig.bbox": "tight", "figure.constrained_layout.use": True})

# the signal variations beside Table 5's columns (table5_row); Fig. 14 correlates all of them
SIGNAL_COLUMNS = {"Only FG": "only_fg", "No FG": "no_fg", "Only BG (b)": "only_bg_b", "Only BG (t)": "only_bg_t"}
CHALLENGE_COLUMNS = ["Original", "Mixed same", "Mixed rand", "Mixed next", *SIGNAL_COLUMNS]
ORIGINAL_AT_LEAST = 80.0  # Fig. 16 correlates runs with an original accuracy of at least 80 %


def run_frame(runs: list[dict]) -> pd.DataFrame:
    """One row per run: Table 5's columns, RRDA, and the signal variations in percent (NaN where not run)."""
    rows = []
    for m in runs:
        acc = m["challenges"].get("accuracy", {})
        row = table5_row(m) | {"RRDA": bool(m["run"].get("rrda"))}
        rows.append(row | {column: percent(acc, v) for column, v in SIGNAL_COLUMNS.items()})
    return pd.DataFrame(rows)


def save_figure(fig, path: Path) -> Path:
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    finally:
        plt.close(fig)
    log.info("figure %s", path)
    return path


def correlation_matrix(df: pd.DataFrame, dataset: str, path: Path) -> Path | None:
    """Fig. 14: Pearson correlation between the challenges' accuracies over runs (needs 3 runs)."""
    columns = [c for c in CHALLENGE_COLUMNS if df[c].notna().sum() >= 3 and df[c].nunique() > 1]
    if len(df) < 3 or len(columns) < 2:
        return None
    corr = df[columns].corr(method="pearson")
    fig, ax = plt.subplots(figsize=(0.75 * len(columns) + 1.8, 0.65 * len(columns) + 1))
    image = ax.imshow(corr.to_numpy(), vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
    ax.set_yticks(range(len(columns)), columns)
    for (i, j), value in np.ndenumerate(corr.to_numpy()):
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="white" if abs(value) > 0.6 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="Pearson r")
    ax.set_title(f"Correlation between the challenges ({dataset}, {len(df)} runs)")
    return save_figure(fig, path)


def _box(ax, groups: dict[str, pd.Series], ylabel: str, log_scale: bool = False) -> None:
    """Box plot of each group with its points jittered on top and the median written above."""
    names = list(groups)
    ax.boxplot([groups[n].to_numpy() for n in names], showfliers=False, widths=0.5)
    rng = np.random.default_rng(0)
    for i, name in enumerate(names, start=1):
        values = groups[name].to_numpy()
        ax.scatter(i + rng.uniform(-0.12, 0.12, len(values)), values, s=6 if len(values) > 50 else 14, alpha=0.5, zorder=3)
    ax.set_xticks(range(1, len(names) + 1), names)
    ax.set_ylabel(ylabel)
    if log_scale:
        ax.set_yscale("log")
    ax.grid(axis="y", alpha=0.3)


def bg_gap_distributions(df: pd.DataFrame, dataset: str, path: Path) -> Path | None:
    """Fig. 15: BG-Gap distribution a) per architecture, b) with RRDA vs without."""
    df = df[df["BG Gap"].notna()]
    if df.empty:
        return None
    fig, (a, b) = plt.subplots(1, 2, figsize=(7, 3), sharey=True)
    by_arch = {f"{k}\n(median {v.median():.2f})": v for k, v in df.groupby("Architecture", sort=False)["BG Gap"]}
    _box(a, by_arch, "BG Gap (points)")
    a.set_title("a) by architecture")
    by_rrda = {f"{'RRDA' if k else 'Non-RRDA'}\n(median {v.median():.2f})": v for k, v in df.groupby("RRDA")["BG Gap"]}
    _box(b, by_rrda, "")
    b.set_title("b) RRDA vs non-RRDA")
    fig.suptitle(f"BG-Gap distributions ({dataset}, {len(df)} runs)")
    return save_figure(fig, path)


def bg_gap_vs_original(df: pd.DataFrame, dataset: str, path: Path) -> Path | None:
    """Fig. 16: BG-Gap against original accuracy; Spearman correlation over runs with original >= 80 %."""
    df = df[df["BG Gap"].notna() & df["Original"].notna()]
    if df.empty:
        return None
    kept = df[df["Original"] >= ORIGINAL_AT_LEAST]
    varies = len(kept) >= 3 and kept["BG Gap"].nunique() > 1 and kept["Original"].nunique() > 1
    rho = kept["BG Gap"].corr(kept["Original"], method="spearman") if varies else np.nan
    fig, ax = plt.subplots(figsize=(4.5, 3.4))
    for (arch, rrda), group in df.groupby(["Architecture", "RRDA"], sort=False):
        ax.scatter(group["Original"], group["BG Gap"], marker="o" if rrda else "^", label=f"{arch}{' + RRDA' if rrda else ''}", alpha=0.8)
    ax.axvline(ORIGINAL_AT_LEAST, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("Original accuracy (%)")
    ax.set_ylabel("BG Gap (points)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    ax.set_title(f"BG-Gap vs original ({dataset}): Spearman ρ = {rho:.2f} (n = {len(kept)}, original ≥ {ORIGINAL_AT_LEAST:.0f} %)")
    return save_figure(fig, path)


def edge_heatmap(runs: list[dict], dataset: str, path: Path) -> Path | None:
    """Fig. 17b: accuracy with the edge removed, one panel per variation, models x widths W (mean over seeds)."""
    rows = []
    for m in runs:
        for variation, accs in m["challenges"].get("edge", {}).items():
            for width, acc in accs.items():
                rows.append({"Architecture": m["run"]["architecture"], "Method": m["run"]["method"],
                             "Variation": variation, "W": int(width), "Accuracy": 100 * acc})
    if not rows:
        return None
    df = pd.DataFrame(rows)
    models = thesis_order(df[["Architecture", "Method"]].drop_duplicates())
    labels = list(models["Architecture"] + " " + models["Method"])
    df["Model"] = df["Architecture"] + " " + df["Method"]
    variations = list(dict.fromkeys(df["Variation"]))
    fig, axes = plt.subplots(1, len(variations), figsize=(2.6 * len(variations) + 1.5, 0.32 * len(labels) + 1.4), sharey=True, squeeze=False)
    for ax, variation in zip(axes[0], variations):
        grid = df[df["Variation"] == variation].pivot_table(index="Model", columns="W", values="Accuracy", aggfunc="mean").reindex(labels)
        image = ax.imshow(grid.to_numpy(), vmin=0, vmax=100, cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(grid.columns)), grid.columns, fontsize=7)
        ax.set_xlabel("edge width W (px at challenge.reference_size)")
        ax.set_title(variation)
        for (i, j), value in np.ndenumerate(grid.to_numpy()):
            if not np.isnan(value):
                ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=5.5, color="white" if value < 60 else "black")
    axes[0][0].set_yticks(range(len(labels)), labels, fontsize=7)
    fig.colorbar(image, ax=axes[0].tolist(), fraction=0.02, pad=0.01, label="accuracy (%)")
    fig.suptitle(f"Accuracy with the object's edge removed ({dataset})")
    return save_figure(fig, path)


def snr_boxplot(runs: list[dict], attribution: str, dataset: str, path: Path) -> Path | None:
    """Figs. 18-19: per-image signal-to-noise ratio per method, one panel per architecture (images of all
    seeds pooled), log scale."""
    values: dict[tuple[str, str], list[float]] = {}
    for m in runs:
        snr = m["challenges"].get("snr", {}).get(attribution)
        if snr:
            values.setdefault((m["run"]["architecture"], m["run"]["method"]), []).extend(snr["per_image"])
    if not values:
        return None
    models = thesis_order(pd.DataFrame(list(values), columns=["Architecture", "Method"]))
    architectures = list(dict.fromkeys(models["Architecture"]))
    widths = [int((models["Architecture"] == a).sum()) for a in architectures]
    fig, axes = plt.subplots(1, len(architectures), figsize=(max(4.0, 0.6 * sum(widths) + 1.5), 3.6), sharey=True,
                             squeeze=False, gridspec_kw={"width_ratios": widths})
    for ax, arch in zip(axes[0], architectures):
        methods = models.loc[models["Architecture"] == arch, "Method"]
        _box(ax, {method: pd.Series(values[(arch, method)]) for method in methods}, "", log_scale=True)
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_xticks(ax.get_xticks(), ax.get_xticklabels(), rotation=35, ha="right", fontsize=7.5)
        ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_title(arch)
    axes[0][0].set_ylabel("signal-to-noise ratio (log scale)")
    fig.suptitle(f"Signal-to-noise ratio per image, {display_name(attribution)} ({dataset}); dashed: object and context "
                 f"equally important")
    return save_figure(fig, path)


def gradient_maps(runs: list[dict], dataset: str, path: Path) -> Path | None:
    """Fig. 21: each model's mean absolute input-gradient map (mean over seeds), the signal cells outlined."""
    maps: dict[str, list[np.ndarray]] = {}
    signal = None
    for m in runs:
        found = m["challenges"].get("gradient_map")
        if found:
            maps.setdefault(model_name(m), []).append(np.asarray(found["map"]))
            signal = np.asarray(found["signal"]) > 0.5
    if not maps:
        return None
    fig, axes = plt.subplots(1, len(maps), figsize=(2.2 * len(maps), 2.6), squeeze=False)
    for ax, (label, found) in zip(axes[0], sorted(maps.items())):
        mean = np.mean(found, axis=0)
        ax.imshow(mean / mean.max() if mean.max() > 0 else mean, cmap="magma", vmin=0, vmax=1)
        for i, j in zip(*np.nonzero(signal)):
            ax.add_patch(matplotlib.patches.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="cyan", lw=1.5))
        ax.set_title(f"{label}\n(n = {len(found)})", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"Mean |input gradient| per pixel, scaled to its maximum ({dataset}); outlined: signal cells", fontsize=9)
    return save_figure(fig, path)


def lambda_curves(runs: list[dict], dataset: str, path: Path) -> Path | None:
    """BG-Gap and original accuracy against lambda (log scale), mean ± std over seeds, for every method run with
    at least two positive lambdas (``runs`` as measured, Method without the lambda label)."""
    rows = [{"Model": model_name(m), "lambda": m["run"].get("lam"), "BG Gap": 100 * m["challenges"]["bg_gap"],
             "Original": percent(m["challenges"].get("accuracy", {}), "original")}
            for m in runs if "bg_gap" in m["challenges"] and (m["run"].get("lam") or 0) > 0]
    df = pd.DataFrame(rows)
    if df.empty:
        return None
    swept = [model for model, group in df.groupby("Model") if group["lambda"].nunique() >= 2]
    if not swept:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), squeeze=False)
    for ax, column in zip(axes[0], ("BG Gap", "Original")):
        for model in swept:
            stats = df[df["Model"] == model].groupby("lambda")[column].agg(["mean", "std"]).fillna(0.0)
            ax.errorbar(stats.index, stats["mean"], yerr=stats["std"], marker="o", capsize=3, label=model)
        ax.set_xscale("log")
        ax.set_xlabel("lambda")
        ax.set_ylabel(f"{column} (%)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"BG-Gap and original accuracy against lambda ({dataset}; mean ± std over seeds)", fontsize=9)
    return save_figure(fig, path)


def figures(runs: list[dict], dataset: str, out_dir: Path) -> dict[str, Path]:
    """Every figure the runs of ``dataset`` have data for: {caption: PNG path}."""
    df = run_frame(runs)
    made = {
        "Fig. 14: correlation between the challenges": correlation_matrix(df, dataset, out_dir / f"fig14_correlation_{dataset}.png"),
        "Fig. 15: BG-Gap distributions": bg_gap_distributions(df, dataset, out_dir / f"fig15_bg_gap_{dataset}.png"),
        "Fig. 16: BG-Gap vs original accuracy": bg_gap_vs_original(df, dataset, out_dir / f"fig16_bg_gap_vs_original_{dataset}.png"),
        "Fig. 17b: edge removal": edge_heatmap(runs, dataset, out_dir / f"fig17b_edge_{dataset}.png"),
        "Fig. 21: mean absolute input gradients": gradient_maps(runs, dataset, out_dir / f"fig21_gradients_{dataset}.png"),
    }
    for number, attribution in (("18", "saliency"), ("19", "integrated_gradients")):
        made[f"Fig. {number}: signal-to-noise ratio, {attribution}"] = snr_boxplot(
            runs, attribution, dataset, out_dir / f"fig{number}_snr_{attribution}_{dataset}.png")
    made.update(run_figures(runs, dataset, out_dir))
    return {caption: path for caption, path in made.items() if path is not None}


SV_VARIATIONS = ("original", "mixed_same", "mixed_rand", "mixed_next")


def similarity_boxplots(metrics: dict, path: Path) -> Path | None:
    """Fig. 25 shape: per class, the similarity of its images with each of its texts (descriptors), one box per
    variation (original and the mixed ones), from the box statistics the zero_shot challenge records."""
    found = metrics["challenges"].get("similarities", {})
    variations = [v for v in SV_VARIATIONS if v in found]
    if not variations:
        return None
    classes = list(found[variations[0]])
    cols = min(3, len(classes))
    rows = -(-len(classes) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.4 * rows), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, name in zip(axes.flat, classes):
        texts = list(found[variations[0]][name])
        width = 0.8 / len(variations)
        for j, variation in enumerate(variations):
            stats = [dict(found[variation].get(name, {}).get(t) or {}, label="") for t in texts]
            positions = [i + (j - (len(variations) - 1) / 2) * width for i in range(len(texts))]
            kept = [(p, s) for p, s in zip(positions, stats) if "med" in s]
            if kept:
                boxes = ax.bxp([s for _, s in kept], positions=[p for p, _ in kept], widths=width * 0.9, showfliers=False,
                               patch_artist=True)
                for box in boxes["boxes"]:
                    box.set_facecolor(colours[j % len(colours)])
        ax.set_xticks(range(len(texts)), [t.split(", which", 1)[-1].strip() for t in texts], rotation=40, ha="right", fontsize=6)
        ax.set_title(name)
        ax.set_ylabel("similarity")
    for ax in axes.flat[len(classes):]:
        ax.axis("off")
    handles = [matplotlib.patches.Patch(color=colours[j % len(colours)], label=v) for j, v in enumerate(variations)]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(variations))
    fig.suptitle(f"Similarity with each class text: {model_name(metrics)} ({metrics['run']['dataset']})")
    return save_figure(fig, path)


def adversarial_backgrounds_figure(metrics: dict, path: Path) -> Path | None:
    """The most adversarial backgrounds per class (Xiao et al.): the ``top_k`` only_bg_t images with the highest
    share of fooled foregrounds of other classes, read from their files; None when the files are not there."""
    found = metrics["challenges"]["adversarial_backgrounds"]
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
    fig.suptitle(f"Most adversarial backgrounds: {model_name(metrics)} ({metrics['run']['dataset']})")
    return save_figure(fig, path)


def run_figures(runs: list[dict], dataset: str, out_dir: Path) -> dict[str, Path]:
    """The figures drawn per run: Fig. 25 for zero-shot runs, the adversarial backgrounds per class."""
    made = {}
    for i, m in enumerate(runs):
        name = model_name(m)
        slug = "".join(c if c.isalnum() else "_" for c in name).strip("_").lower()
        if "similarities" in m["challenges"]:
            made[f"Fig. 25: similarity distributions, {name}"] = similarity_boxplots(m, out_dir / f"fig25_{slug}_{dataset}_{i}.png")
        if "adversarial_backgrounds" in m["challenges"]:
            made[f"Most adversarial backgrounds, {name}"] = adversarial_backgrounds_figure(
                m, out_dir / f"adversarial_backgrounds_{slug}_{dataset}_{i}.png")
    return {caption: path for caption, path in made.items() if path is not None}


def image_strip(images: list[np.ndarray], titles: list[str], path: Path, caption: str = "") -> Path:
    """Images (H, W, 3) in [0, 1] side by side with a title each, e.g. the three images of a U-occurrence."""
    fig, axes = plt.subplots(1, len(images), figsize=(2.2 * len(images), 2.5), squeeze=False)
    for ax, image, title in zip(axes[0], images, titles):
        ax.imshow(np.clip(image, 0, 1), interpolation="nearest")
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    if caption:
        fig.suptitle(caption, fontsize=9)
    return save_figure(fig, path)
