"""The patch challenge of the texture-based task (thesis Table 11): AUC and F1 on all test images and on the
test images without a patch, where a model that learned the patch shortcut loses its easy cases."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd
import torch
from tqdm import tqdm

from rrx.challenges import register_challenge
from rrx.config import ComponentConfig, param
from rrx.predictions import concatenated, decide, prediction_frame
from rrx.record import Record
from rrx.runtime import Runtime
from rrx.tables import Table, model_name

log = logging.getLogger(__name__)
SUBSETS = ("original", "no_patch")  # every test image; those without a patch


def scores_and_labels(
    model, loader, runtime: Runtime, desc: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(probability of class 1, predicted class, label, probability of the predicted class) per image."""
    model.eval()
    probs, preds, labels, confidences = [], [], [], []
    with torch.no_grad():
        for x, y, *_ in tqdm(loader, desc=desc, leave=False, disable=not runtime.progress):
            logits = model(x.to(runtime.device)).float()
            prediction, confidence = decide(logits)
            probs.append(torch.softmax(logits, dim=1)[:, 1].cpu())
            preds.append(prediction.cpu())
            confidences.append(confidence.cpu())
            labels.append(y)
    return torch.cat(probs), torch.cat(preds), torch.cat(labels), torch.cat(confidences)


@dataclass
class PatchesConfig(ComponentConfig):
    """texture-based task (thesis Table 11): AUC and F1 on every test image and on those without a patch"""

    name: str = param("patches", "the registered name of the challenge")


@register_challenge("patches", config=PatchesConfig)
class PatchChallenge:
    """AUC of the class-1 probability and F1 of class 1 (malignant), with the accuracy, on ``original`` (every
    test image) and ``no_patch``. Results: ``{"accuracy": {variation: float}, "patches": {variation: {"auc",
    "f1", "accuracy", "images"}}}``; AUC is NaN where a variation holds a single class. ``predictions``: a row
    per image (``rrx.predictions``)."""

    def __init__(self, cfg):
        self.variations = list(SUBSETS)
        self.predictions: pd.DataFrame | None = None

    def needs(self) -> list[tuple[str, bool]]:
        return [(v, False) for v in self.variations]

    def evaluate(self, model, dataset, runtime: Runtime) -> dict:
        from sklearn.metrics import f1_score, roc_auc_score  # here, not at import: sklearn adds 0.8 s to every command

        accuracy, results, frames = {}, {}, []
        for variation in self.variations:
            data = dataset.variation_set(variation)
            prob, pred, y, confidence = scores_and_labels(
                model, runtime.loader(data, shuffle=False), runtime, variation
            )
            found = {"label": y, "prediction": pred, "confidence": confidence}
            frames.append(prediction_frame(dataset, variation, data, found, "patches"))
            auc = float(roc_auc_score(y.numpy(), prob.numpy())) if len(y.unique()) == 2 else float("nan")
            acc = (pred == y).sum().item() / len(y)  # exactly as rrx.predictions recomputes it
            results[variation] = {
                "auc": auc,
                "f1": float(f1_score(y.numpy(), pred.numpy(), zero_division=0)),
                "accuracy": acc,
                "images": len(y),
            }
            accuracy[variation] = acc
            log.info(
                "patches %-9s AUC %.3f  F1 %.3f  accuracy %.2f%% (%d images)",
                variation,
                auc,
                results[variation]["f1"],
                100 * acc,
                len(y),
            )
        self.predictions = concatenated(frames)
        return {"accuracy": accuracy, "patches": results}


# --- tables and figures (rrx report, and the run's folder) ---------------------------------------------------------
# Thesis Table 11: AUC and F1 (class 1, malignant) without and with the patched test images.
TABLE11_COLUMNS = {
    "AUC (no patches)": ("no_patch", "auc"),
    "F1 (no patches)": ("no_patch", "f1"),
    "AUC (all)": ("original", "auc"),
    "F1 (all)": ("original", "f1"),
}


def table11(runs: list[Record]) -> pd.DataFrame:
    rows = []
    for metrics in runs:
        found = metrics.challenges.get("patches", {})
        row = {"Model": model_name(metrics)}
        rows.append(row | {c: found.get(v, {}).get(k, float("nan")) for c, (v, k) in TABLE11_COLUMNS.items()})
    return pd.DataFrame(rows, columns=["Model", *TABLE11_COLUMNS]).astype({c: float for c in TABLE11_COLUMNS})


TABLES = [
    Table(
        "table11",
        "Texture task with a patch shortcut: AUC and F1 of class 1 (Table 11 shape)",
        table11,
        lambda m: "patches" in m.challenges,
        11,
        in_run=False,
    )
]
