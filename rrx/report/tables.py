"""The thesis's table shapes as pandas DataFrames, written as CSV, Markdown and LaTeX."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rrx.outputs import write_text
from rrx.report.aggregate import SEEDS, key_columns, over_seeds

# Thesis Table 5/6: accuracies and BG-Gap in percent.
TABLE5_COLUMNS = ["Architecture", "Method", "Mixed same", "Mixed rand", "Mixed next", "BG Gap", "Original"]
MIXED_VARIATIONS = ("mixed_same", "mixed_rand", "mixed_next")  # a run with any of these gets a Table 5 row
_VARIATION_COLUMNS = {"Mixed same": "mixed_same", "Mixed rand": "mixed_rand", "Mixed next": "mixed_next", "Original": "original"}


def percent(acc: dict, variation: str) -> float:
    """Accuracy on ``variation`` in percent; NaN where it was not evaluated."""
    return 100 * acc[variation] if variation in acc else float("nan")


def table5_row(metrics: dict) -> dict:
    """One Table 5 row from a run's metrics; challenges that were not run are NaN."""
    acc = metrics["challenges"].get("accuracy", {})
    row = {"Architecture": metrics["run"]["architecture"], "Method": metrics["run"]["method"]}
    for column, variation in _VARIATION_COLUMNS.items():
        row[column] = percent(acc, variation)
    gap = metrics["challenges"].get("bg_gap")
    row["BG Gap"] = 100 * gap if gap is not None else float("nan")
    return row


def table5(runs: list[dict]) -> pd.DataFrame:
    """Table 5 shape, values in percent with two decimals, one row per run."""
    df = pd.DataFrame([table5_row(m) for m in runs], columns=TABLE5_COLUMNS)
    return df.round(2)


# Thesis Table 8: accuracy with only the object / only the background, in percent.
TABLE8_COLUMNS = ["Architecture", "Method", "Only FG", "Only BG"]
_SIGNAL_COLUMNS = {"Only FG": "only_fg", "Only BG": "only_bg_t"}
SIGNAL_VARIATIONS = tuple(_SIGNAL_COLUMNS.values())  # a run with any of these gets a Table 8 row
HIDDEN = "_"  # columns named "_..." are not shown or written; "_Original" decides who may hold a lowest-is-best mark


def table8(runs: list[dict]) -> pd.DataFrame:
    """Table 8 shape (Only BG = accuracy on ``only_bg_t``), one row per run, plus the hidden ``_Original``."""
    rows = []
    for metrics in runs:
        acc = metrics["challenges"].get("accuracy", {})
        row = {"Architecture": metrics["run"]["architecture"], "Method": metrics["run"]["method"]}
        row |= {column: percent(acc, variation) for column, variation in _SIGNAL_COLUMNS.items()}
        rows.append(row | {"_Original": percent(acc, "original")})
    return pd.DataFrame(rows, columns=[*TABLE8_COLUMNS, "_Original"]).round(2)


def table8_side_by_side(runs: list[dict]) -> pd.DataFrame:
    """Table 8 as the thesis prints it: per dataset an Only FG and an Only BG column, one row per run with its
    dataset's columns filled (rows of one Architecture and Method are joined when written)."""
    datasets = sorted({m["run"]["dataset"] for m in runs})
    columns = [f"{d} {c}" for d in datasets for c in _SIGNAL_COLUMNS]
    rows = []
    for metrics in runs:
        one = table8([metrics]).iloc[0]
        dataset = metrics["run"]["dataset"]
        row = {"Architecture": one["Architecture"], "Method": one["Method"], "_Original": one["_Original"]}
        rows.append(row | {f"{dataset} {c}": one[c] for c in _SIGNAL_COLUMNS})
    return pd.DataFrame(rows, columns=["Architecture", "Method", *columns, "_Original"]).astype({c: float for c in columns})


def model_name(metrics: dict) -> str:
    """The Model column of Tables 9 and 10: architecture and method, e.g. ``MLP RRR + FGSM``."""
    return f'{metrics["run"]["architecture"]} {metrics["run"]["method"]}'


# Thesis Table 9: accuracy on the test set and under the run's attack, in percent.
TABLE9_COLUMNS = ["Model", "Test Accuracy", "Adversarial Accuracy"]


def table9(runs: list[dict]) -> pd.DataFrame:
    """Plus one column ``eps=<e>`` per eps of the runs' ``adversarial_curve`` (``attack.eval_eps``), where any."""
    rows, curve = [], set()
    for metrics in runs:
        challenges = metrics["challenges"]
        row = {
            "Model": model_name(metrics),
            "Test Accuracy": percent(challenges.get("accuracy", {}), "original"),
            "Adversarial Accuracy": percent(challenges.get("adversarial_accuracy", {}), "original"),
        }
        for eps in challenges.get("adversarial_curve", {}):
            row[f"eps={eps}"] = percent(challenges["adversarial_curve"], eps)
            curve.add(eps)
        rows.append(row)
    columns = TABLE9_COLUMNS + [f"eps={eps}" for eps in sorted(curve, key=float)]
    return pd.DataFrame(rows, columns=columns).astype({c: float for c in columns[1:]}).round(2)


# Thesis Table 10: test accuracy per dataset, one row per model (method).
def table10(runs: list[dict], datasets=("color_mnist", "decoy_mnist")) -> pd.DataFrame:
    """One row per run with its dataset's column filled; rows of one Model are joined when written (``over_seeds``).

    Decoy MNIST runs without a decoy (``dataset.variant=none``) fill a column of their own, "DecoyMNIST (no
    decoy)": the accuracy the trap is measured against."""
    names = {"color_mnist": "ColorMNIST", "decoy_mnist": "DecoyMNIST"}
    columns = [names[d] for d in datasets]
    rows = []
    for metrics in runs:
        dataset = metrics["run"]["dataset"]
        if dataset in datasets:
            column = names[dataset] + (" (no decoy)" if metrics["run"].get("variant") == "none" else "")
            if column not in columns:
                columns.append(column)
            rows.append({"Model": model_name(metrics), column: percent(metrics["challenges"].get("accuracy", {}), "original")})
    return pd.DataFrame(rows, columns=["Model", *columns]).astype({c: float for c in columns}).round(2)


# Thesis Table 11: AUC and F1 (class 1, malignant) without and with the patched test images.
TABLE11_COLUMNS = {"AUC (no patches)": ("no_patch", "auc"), "F1 (no patches)": ("no_patch", "f1"),
                   "AUC (all)": ("original", "auc"), "F1 (all)": ("original", "f1")}


def table11(runs: list[dict]) -> pd.DataFrame:
    rows = []
    for metrics in runs:
        found = metrics["challenges"].get("patches", {})
        row = {"Model": model_name(metrics)}
        rows.append(row | {c: found.get(v, {}).get(k, float("nan")) for c, (v, k) in TABLE11_COLUMNS.items()})
    return pd.DataFrame(rows, columns=["Model", *TABLE11_COLUMNS]).astype({c: float for c in TABLE11_COLUMNS}).round(3)


# Thesis Figs. 18-19 as numbers: the median signal-to-noise ratio of each run, per attribution method.
SNR_COLUMNS = {"SNR Saliency": "saliency", "SNR Integrated Gradients": "integrated_gradients"}


def table_snr(runs: list[dict]) -> pd.DataFrame:
    """One row per run: Architecture, Method and the run's median SNR per attribution (NaN where not run)."""
    rows = []
    for metrics in runs:
        snr = metrics["challenges"].get("snr", {})
        row = {"Architecture": metrics["run"]["architecture"], "Method": metrics["run"]["method"]}
        rows.append(row | {column: snr.get(name, {}).get("median", float("nan")) for column, name in SNR_COLUMNS.items()})
    return pd.DataFrame(rows, columns=["Architecture", "Method", *SNR_COLUMNS]).astype({c: float for c in SNR_COLUMNS})


# Thesis Table 14: score variability (Eq. 6.3) of zero-shot models, per mixed challenge, in percent.
SV_CHALLENGES = {"mixed_same": "Mixed same", "mixed_rand": "Mixed rand", "mixed_next": "Mixed next"}
TABLE14_VALUES = ["Target", "Pred.", "Errors", "Target (all)", "Pred. (all)", "Pairs"]


def _sv_parts(sv: dict) -> tuple[dict, dict]:
    """(misclassified pairs, all pairs) of a ``score_variability`` entry; a metrics.json written before the
    misclassified pairs were kept has only the all-pairs numbers at the top level."""
    if "all_images" in sv:
        return sv["errors"], sv["all_images"]
    return {"target": {}, "pred": {}, "pairs": float("nan")}, sv


def table14(runs: list[dict]) -> pd.DataFrame:
    """One row per challenge, model and metric (SV+: the challenge image scores lower than its original, SV-: higher,
    as the mean magnitude). As in the thesis (6.2.4, "when making errors"), Target and Pred. (the class predicted on
    the challenge image) are taken over the pairs whose challenge image is misclassified, ``Errors`` of them;
    Target (all) and Pred. (all) over all ``Pairs``, where Pred. mostly repeats Target (pred = target when correct)."""
    rows = []
    for metric, key in (("SV+", "sv_plus"), ("SV-", "sv_minus")):
        for variation, challenge in SV_CHALLENGES.items():
            for metrics in runs:
                sv = metrics["challenges"].get("score_variability", {}).get(variation)
                if sv is None:
                    continue
                errors, every = _sv_parts(sv)
                rows.append({"Challenge": challenge, "Model": model_name(metrics), "Metric": metric,
                             "Target": errors["target"].get(key, float("nan")), "Pred.": errors["pred"].get(key, float("nan")),
                             "Errors": errors["pairs"], "Target (all)": every["target"][key],
                             "Pred. (all)": every["pred"][key], "Pairs": every["pairs"]})
    columns = ["Challenge", "Model", "Metric", *TABLE14_VALUES]
    return pd.DataFrame(rows, columns=columns).astype({c: float for c in TABLE14_VALUES})


# The adversarial-backgrounds challenge (Xiao et al. 2021): challenge accuracy = 1 - vulnerable foregrounds.
def table_adversarial_backgrounds(runs: list[dict]) -> pd.DataFrame:
    rows = []
    for metrics in runs:
        found = metrics["challenges"]["adversarial_backgrounds"]
        rows.append({"Architecture": metrics["run"]["architecture"], "Method": metrics["run"]["method"],
                     "Challenge accuracy": 100 * found["accuracy"], "Vulnerable": 100 * found["vulnerable"] / found["foregrounds"],
                     "Foregrounds": found["foregrounds"], "Backgrounds": found["backgrounds"],
                     "Images/s": found["images_per_second"]})
    columns = ["Architecture", "Method", "Challenge accuracy", "Vulnerable", "Foregrounds", "Backgrounds", "Images/s"]
    return pd.DataFrame(rows, columns=columns).round({"Challenge accuracy": 2, "Vulnerable": 2, "Images/s": 0})


def edge_grid(metrics: dict) -> pd.DataFrame:
    """Edge-removal accuracy in percent: one row per variation, one column per nominal width W (Fig. 17b),
    named ``W=<nominal> (<applied> px)`` where the band was scaled to the image size."""
    grid = metrics["challenges"]["edge"]
    applied = metrics["challenges"].get("edge_widths", {})
    df = pd.DataFrame({variation: {int(w): 100 * a for w, a in accs.items()} for variation, accs in grid.items()}).T
    df.index.name = "Variation"
    df.columns = [f"W={w}" if applied.get(str(w), w) == w else f"W={w} ({applied[str(w)]} px)" for w in df.columns]
    return df.round(2).reset_index()


def has_columns(metrics: dict, variations) -> bool:
    """Whether a run evaluated any of ``variations``."""
    return any(v in metrics["challenges"].get("accuracy", {}) for v in variations)


# The best value per column is marked: the highest, except where lower means less use of the background.
# A model at chance has a BG Gap of 0, so the lowest is only taken among models that classify: their original
# accuracy (the Original or hidden _Original column; else their best accuracy in the table) reaches
# WORKING_ACCURACY (the threshold of Fig. 16).
LOWER_IS_BETTER = {"BG Gap", "Only BG"}
WORKING_ACCURACY = 80.0
_LATEX_SPECIAL = {c: "\\" + c for c in "&%$#_{}"} | {"~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(c, c) for c in text)


def lower_is_better(column: str) -> bool:
    """``BG Gap``, ``Only BG``, also as a dataset's column of a side-by-side table (``in9 Only BG``)."""
    return any(column == c or column.endswith(f" {c}") for c in LOWER_IS_BETTER)


def best_mask(mean: pd.DataFrame, name: str, values: list[str]) -> pd.Series:
    """Rows holding column ``name``'s best value at two decimals (ties all marked); none for a single row.

    For LOWER_IS_BETTER columns only rows whose original accuracy is >= WORKING_ACCURACY compete.
    """
    column = mean[name].round(2)
    if lower_is_better(name):
        reference = next((c for c in ("Original", "_Original") if c in mean), None)
        accuracies = [reference] if reference else [c for c in values if not lower_is_better(c)]
        column = column.where(mean[accuracies].max(axis=1) >= WORKING_ACCURACY) if accuracies else column
    if column.notna().sum() < 2:
        return pd.Series(False, index=mean.index)
    best = column.min() if lower_is_better(name) else column.max()
    return column == best


def render(df: pd.DataFrame, style: str, mark_best: bool = True) -> pd.DataFrame:
    """Per-run rows -> one text row per configuration: "mean ± std" over seeds (with a Seeds column) when
    some configuration has several runs, else the value; two decimals; the best per column in bold.

    ``style``: ``markdown`` or ``latex`` (escaped text, $\\pm$, \\textbf).
    """
    mean, std = over_seeds(df)
    keys = key_columns(df)
    values = [c for c in mean.columns if c not in keys and c != SEEDS]
    several = (mean[SEEDS] > 1).any()
    latex = style == "latex"
    missing, pm = ("--", r" $\pm$ ") if latex else ("–", " ± ")
    bold = (lambda t: rf"\textbf{{{t}}}") if latex else (lambda t: f"**{t}**")
    out = pd.DataFrame(index=mean.index)
    for column in mean.columns:
        if column.startswith(HIDDEN):
            continue
        if column == SEEDS:
            if several:
                out[SEEDS] = mean[SEEDS].astype(int).astype(str)
            continue
        if column in keys:
            text = mean[column].map(lambda v: f"{v:g}" if isinstance(v, float) else str(v))
            out[_latex_escape(column) if latex else column] = text.map(_latex_escape) if latex else text
            continue
        marks = best_mask(mean, column, values) if mark_best else pd.Series(False, index=mean.index)
        cells = []
        for m, s, n, is_best in zip(mean[column], std[column], mean[SEEDS], marks):
            if pd.isna(m):
                cells.append(missing)
                continue
            cell = f"{m:.2f}" + (f"{pm}{s:.2f}" if several and n > 1 and pd.notna(s) else "")
            cells.append(bold(cell) if is_best else cell)
        out[_latex_escape(column) if latex else column] = cells
    return out


def markdown(df: pd.DataFrame, mark_best: bool = True) -> str:
    """The table as GitHub Markdown (``render``), text columns left-aligned, values right-aligned."""
    text = render(df, "markdown", mark_best)
    keys = set(key_columns(df)) - {"lambda"}
    align = ["left" if c in keys else "right" for c in text.columns]
    return text.to_markdown(index=False, colalign=align, disable_numparse=True)


def latex(df: pd.DataFrame, mark_best: bool = True) -> str:
    """The table as a booktabs LaTeX tabular (``render``)."""
    text = render(df, "latex", mark_best)
    keys = {_latex_escape(c) for c in key_columns(df)} - {"lambda"}
    layout = "".join("l" if c in keys else "r" for c in text.columns)
    return text.to_latex(index=False, escape=False, column_format=layout)


def write_table(df: pd.DataFrame, stem: Path, mark_best: bool = True) -> list[Path]:
    """Write ``stem.csv`` (means, ``<column> std`` and ``Seeds`` when some configuration has several runs),
    ``stem.md`` and ``stem.tex``; returns the paths written."""
    mean, std = over_seeds(df.drop(columns=[c for c in df.columns if c.startswith(HIDDEN)]))
    if (mean[SEEDS] > 1).any():
        values = [c for c in mean.columns if c not in key_columns(df) and c != SEEDS]
        table = pd.concat([mean, std[values].add_suffix(" std")], axis=1).round(2)
    else:
        table = mean.drop(columns=SEEDS).round(2)
    return [
        write_text(stem.with_suffix(".csv"), table.to_csv(index=False)),
        write_text(stem.with_suffix(".md"), markdown(df, mark_best) + "\n"),
        write_text(stem.with_suffix(".tex"), latex(df, mark_best)),
    ]
