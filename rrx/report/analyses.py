"""Tables and figures of ``rrx analyze`` results (``metrics["analyses"]``), in percent, one row per model and setting."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from rrx.report.figures import plt, save_figure
from rrx.report.aggregate import thesis_order

NAN = math.nan


def _entries(runs: list[dict], analysis: str) -> list[tuple[dict, str, dict]]:
    """(the row's naming columns, the result's key, the result) for every result of ``analysis`` in ``runs``. The
    naming columns are Architecture, Method and, where the results differ in a setting outside their key (e.g.
    ``target``, ``max_images``), a Settings column naming it, so that rows of different settings are never averaged."""
    found = [(m, key, r) for m in runs for key, r in m["analyses"][analysis].items()]
    settings = [r.get("settings", {}) for _, _, r in found]
    differ = sorted(k for k in {k for s in settings for k in s} if len({repr(s.get(k)) for s in settings}) > 1)
    entries = []
    for (m, key, r), setting in zip(found, settings):
        row = {"Architecture": m["run"]["architecture"], "Method": m["run"]["method"]}
        if differ:
            row["Settings"] = ", ".join(f"{k}={setting.get(k)}" for k in differ)
        entries.append((row, r.get("key", key), r))
    return entries


def _pct(stats: dict | None) -> float:
    return NAN if stats is None or stats["mean"] is None else 100 * stats["mean"]


def _frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    names = {"Architecture", "Method", "Settings", "Attribution", "Order", "Noise", "Window", "Constant", "Search"}
    return df.astype({c: float for c in df.columns if c not in names})


def table_localisation(runs: list[dict]) -> pd.DataFrame:
    """Pointing game, relevance mass and relevance rank accuracy per attribution, percent."""
    return _frame([row | {"Attribution": key, "Pointing game": _pct(r["pointing_game"]), "Relevance mass": _pct(r["relevance_mass"]),
                          "Relevance rank": _pct(r["relevance_rank"]), "Images": r["pointing_game"]["n"]}
                   for row, key, r in _entries(runs, "localisation")])


# result keys -> column names: ObEy takes the best over an image's object masks (seed 002, Eq. 2); without them the
# same weighted IoU with the labelled object alone is not ObEy and keeps its own name
OBEY_COLUMNS = {("obey", "obey_iou"): ("ObEy", "ObEy IoU"),
                ("wiou", "iou"): ("wIoU (labelled object)", "IoU (labelled object)")}


def table_obey(runs: list[dict]) -> pd.DataFrame:
    """ObEy (mean of the best weighted IoU over each image's object masks), its thresholded IoU, and ObEy over correct
    and over wrong predictions, percent; for results without object masks the same of the wIoU with the labelled
    object, in columns of that name."""
    rows = []
    for row, key, r in _entries(runs, "obey"):
        (weighted, unweighted), (name, iou_name) = next(item for item in OBEY_COLUMNS.items() if item[0][0] in r)
        rows.append(row | {"Attribution": key, name: _pct(r[weighted]["all"]), iou_name: _pct(r[unweighted]["all"]),
                           f"{name} correct": _pct(r[weighted]["correct"]), f"{name} wrong": _pct(r[weighted]["wrong"]),
                           "Correct": r[weighted]["correct"]["n"], "Wrong": r[weighted]["wrong"]["n"]})
    df = _frame(rows)
    return df[[c for c in df.columns if c not in ("Correct", "Wrong")] + ["Correct", "Wrong"]]


def table_focus(runs: list[dict]) -> pd.DataFrame:
    """Focus of the model and of its randomised copy per attribution, percent (50 is class-agnostic); after a
    cascading randomisation one column per step, "Cascade to <layer>": the Focus with that layer and every layer
    above it re-initialised."""
    return _frame([row | {"Attribution": key, "Focus": _pct(r["model"]), "Focus std": 100 * r["model"]["std"],
                          "Randomised": _pct(r.get("randomised"))}
                   | {f"Cascade to {step['layer']}": _pct(step) for step in r.get("cascading", [])}
                   | {"Mosaics": r["mosaics"]}
                   for row, key, r in _entries(runs, "focus")])


def table_u(runs: list[dict]) -> pd.DataFrame:
    """U-occurrence share (images with at least one U), percent, per setting."""
    df = _frame([row | {"Attribution": r["attribution"], "Order": r["order"], "Noise": r["noise"], "Window": f"{r['window']:g}",
                        "U share": 100 * r["u_share"], "Images": r["images"]}
                 for row, _, r in _entries(runs, "u_analysis")])
    return df.sort_values([c for c in ("Settings", "Attribution", "Order", "Noise", "Window") if c in df], kind="stable")


def table_ipha(runs: list[dict], part: str) -> pd.DataFrame:
    """Mean Feature Impact Index (Eq. 7.2) of the ``part`` (important or non_important) pixels that IPHA and the top-k
    masks of the other attributions select, percent; one row per model, constant and search (thesis Figs. 32-33).
    Search names the mask search of the ``ipha`` column: ``alg6`` (Alg. 6 as stated; also results written before
    there was a choice) or ``greedy_top_k`` (beyond the text, at the top-k masks' kept share)."""
    return _frame([row | {"Constant": key, "Search": r.get("search", {}).get("name", "alg6"),
                          **{method: _pct(stats) for method, stats in r[part].items()}}
                   for row, key, r in _entries(runs, "ipha")])


# name -> (title, builder); a table is made where some run has the analysis (ipha: two tables)
TABLES = {
    "localisation": ("Localisation of attributions with object masks, percent", table_localisation),
    "obey": ("ObEy: the best weighted IoU of the prediction's saliency over the image's object masks (seed 002); "
             "without object masks, the wIoU with the labelled object, percent", table_obey),
    "focus": ("Focus on 2 x 2 mosaics (seed 004), percent; about 50 for a class-agnostic explanation", table_focus),
    "u_analysis": ("U Analysis: share of images with a U-occurrence (thesis 7.4.1), percent", table_u),
    "ipha_non_important": ("Feature Impact Index of the non-important pixels (thesis Fig. 32 shape; higher: the "
                           "method found what the prediction rests on), percent", lambda runs: table_ipha(runs, "non_important")),
    "ipha_important": ("Feature Impact Index of the important pixels (thesis Fig. 33 shape; lower is better), percent",
                       lambda runs: table_ipha(runs, "important")),
}
ANALYSIS_OF = {"ipha_non_important": "ipha", "ipha_important": "ipha"}  # table -> the analysis it reads, where they differ


def analysis_tables(runs: list[dict]) -> dict[str, tuple[str, pd.DataFrame]]:
    """{name: (title, table)} for each analysis some run in ``runs`` holds."""
    tables = {}
    for name, (title, build) in TABLES.items():
        having = [m for m in runs if ANALYSIS_OF.get(name, name) in m.get("analyses", {})]
        if having:
            tables[name] = (title, thesis_order(build(having)))
    return tables


def _model_label(df: pd.DataFrame) -> pd.Series:
    label = df["Architecture"] + " " + df["Method"]
    return label + " [" + df["Settings"] + "]" if "Settings" in df else label


def figure_u(runs: list[dict], dataset: str, path: Path) -> Path | None:
    """Thesis Fig. 30 shape: U-occurrence share grouped by each parameter (attribution, noise, window, order), one
    line per model (the mean over the runs with that parameter value)."""
    having = [m for m in runs if "u_analysis" in m.get("analyses", {})]
    if not having:
        return None
    df = table_u(having)
    df["Model"] = _model_label(df)
    fig, axes = plt.subplots(1, 4, figsize=(12, 3), sharey=True)
    for ax, parameter in zip(axes, ["Attribution", "Noise", "Window", "Order"]):
        for model, rows in df.groupby("Model", sort=False):
            means = rows.groupby(parameter, sort=True)["U share"].mean()
            ax.plot(range(len(means)), means.to_numpy(), marker="o", label=model)
            ax.set_xticks(range(len(means)), means.index, rotation=30, ha="right")
        ax.set_title(parameter)
    axes[0].set_ylabel("U occurrence (%)")
    axes[-1].legend(fontsize=7)
    fig.suptitle(f"U Analysis, {dataset}")
    return save_figure(fig, path)


def figure_ipha(runs: list[dict], dataset: str, part: str, path: Path) -> Path | None:
    """Thesis Figs. 32-33 shape: one panel per constant, the mean FII of each selection method, one bar group per model."""
    having = [m for m in runs if "ipha" in m.get("analyses", {})]
    if not having:
        return None
    df = table_ipha(having, part)
    df["Model"] = _model_label(df) + " (" + df["Search"] + ")"  # an alg6 and a greedy_top_k run are two bar groups
    methods = [c for c in df.columns if c not in ("Architecture", "Method", "Settings", "Constant", "Search", "Model")]
    constants = list(dict.fromkeys(df["Constant"]))
    fig, axes = plt.subplots(len(constants), 1, figsize=(7, 1.8 * len(constants)), sharex=True, squeeze=False)
    for ax, constant in zip(axes[:, 0], constants):
        means = df[df["Constant"] == constant].groupby("Model", sort=False)[methods].mean()
        means.T.plot.bar(ax=ax, rot=15, legend=False)
        ax.set_ylabel(f"FII (%)\n{constant}")
        ax.set_ylim(0, 100)
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center", ncol=2, fontsize=8)
    fig.suptitle(f"IPHA, {part.replace('_', '-')} pixels, {dataset}")
    return save_figure(fig, path)


def analysis_figures(runs: list[dict], dataset: str, out_dir: Path) -> dict[str, Path]:
    """{caption: path} of the analysis figures for the runs of one dataset."""
    made = {}
    u = figure_u(runs, dataset, out_dir / f"u_analysis_{dataset}.png")
    if u is not None:
        made["U-occurrence by parameter (thesis Fig. 30 shape)"] = u
    for part, fig in (("non_important", "32"), ("important", "33")):
        path = figure_ipha(runs, dataset, part, out_dir / f"ipha_{part}_{dataset}.png")
        if path is not None:
            made[f"Feature Impact Index of the {part.replace('_', '-')} pixels (thesis Fig. {fig} shape)"] = path
    return made
