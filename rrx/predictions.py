"""Per-image predictions: what every evaluation writes next to its ``metrics.json`` as ``predictions.parquet``.

One row per (variation, image): ``variation``, ``image`` (its file relative to the dataset's root, or
``<variation>/<index>`` for a dataset held in memory), ``label`` and ``prediction`` (class indices), ``label_name``,
``prediction_name``, ``confidence`` (the softmax probability of the prediction), ``correct``, and
``background_class`` (for a mixed image, the class of the image whose background it shows, where the dataset knows
it; ``rrx.data.base.Benchmark.image_info``). Every accuracy of the background challenge is the mean of ``correct``
over a variation's rows (``accuracies``), which ``rrx report`` checks against ``metrics.json``.
"""

from __future__ import annotations

from collections.abc import Sized
from pathlib import Path
from typing import cast

import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from rrx.runtime import Runtime

FILE = "predictions.parquet"
COLUMNS = [
    "variation",
    "image",
    "label",
    "prediction",
    "label_name",
    "prediction_name",
    "confidence",
    "correct",
    "background_class",
]


@torch.no_grad()
def predict(model: torch.nn.Module, loader: DataLoader, runtime: Runtime, desc: str) -> dict[str, torch.Tensor]:
    """``{"label", "prediction", "confidence"}`` (N,) over ``loader``'s dataset in order (a loader without
    shuffling): the arg-max class and its softmax probability."""
    model.eval()
    labels, predictions, confidences = [], [], []
    for x, y, *_ in tqdm(loader, desc=desc, leave=False, disable=not runtime.progress):
        with runtime.autocast():
            logits = model(x.to(runtime.device))
        prediction = logits.argmax(1)  # as ``rrx.challenges.accuracy.accuracy`` counts it
        probability = logits.float().softmax(1).gather(1, prediction[:, None])[:, 0]
        labels.append(torch.as_tensor(y))
        predictions.append(prediction.cpu())
        confidences.append(probability.cpu())
    n = len(cast(Sized, loader.dataset))
    if not labels:
        return {k: torch.zeros(0) for k in ("label", "prediction", "confidence")}
    found = {"label": torch.cat(labels), "prediction": torch.cat(predictions), "confidence": torch.cat(confidences)}
    assert len(found["label"]) == n, f"{desc}: {len(found['label'])} predictions for {n} images"
    return found


def share_correct(found: dict[str, torch.Tensor]) -> float:
    """``predict``'s correct predictions / images: the accuracy."""
    return (found["prediction"] == found["label"]).sum().item() / len(found["label"])


def prediction_frame(dataset, variation: str, data, found: dict[str, torch.Tensor]) -> pd.DataFrame:
    """``predict``'s results on ``data`` (``dataset.variation_set(variation)``) as rows of ``COLUMNS``."""
    if hasattr(dataset, "image_info"):  # rrx.data.base.Benchmark.image_info
        info = dataset.image_info(variation, data)
    else:  # a duck-typed dataset: its images named by their index, their backgrounds unknown
        n = len(cast(Sized, data))
        info = {"image": [f"{variation}/{i}" for i in range(n)], "background_class": [None] * n}
    label, prediction = found["label"].tolist(), found["prediction"].tolist()
    classes = getattr(dataset, "classes", None) or [str(k) for k in range(max([*label, *prediction], default=-1) + 1)]
    frame = pd.DataFrame(
        {
            "variation": variation,
            "image": info["image"],
            "label": label,
            "prediction": prediction,
            "label_name": [classes[k] for k in label],
            "prediction_name": [classes[k] if 0 <= k < len(classes) else str(k) for k in prediction],
            "confidence": found["confidence"].tolist(),
            "correct": [a == b for a, b in zip(label, prediction)],
            "background_class": pd.array(info["background_class"], dtype="string"),
        }
    )
    return frame[COLUMNS]


def accuracies(frame: pd.DataFrame) -> dict[str, float]:
    """``{variation: accuracy}``: the share of correct rows of each variation."""
    return {str(v): float(rows["correct"].mean()) for v, rows in frame.groupby("variation", sort=False)}


def disagreement(recorded: dict[str, float], frame: pd.DataFrame) -> str | None:
    """Where ``frame`` (a run's predictions) gives another accuracy than ``recorded`` (its ``metrics.json``'s
    ``challenges.accuracy``) for a variation both have: what differs; None where they agree."""
    found = accuracies(frame)
    wrong = [
        f"{v}: {100 * found[v]:.2f}% in {FILE}, {100 * recorded[v]:.2f}% in metrics.json"
        for v in sorted(set(found) & set(recorded))
        if abs(found[v] - recorded[v]) > 1e-12
    ]
    return "; ".join(wrong) or None


def write_predictions(folder: Path, frame: pd.DataFrame) -> Path:
    path = Path(folder) / FILE
    frame.to_parquet(path, index=False)
    return path


def read_predictions(folder: Path) -> pd.DataFrame | None:
    """A run folder's ``predictions.parquet``, or None where it has none (an rrx before it, or no evaluation)."""
    path = Path(folder) / FILE
    return pd.read_parquet(path) if path.is_file() else None
