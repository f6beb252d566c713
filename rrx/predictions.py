"""Per-image predictions: what every evaluation writes next to its ``metrics.json`` as ``predictions.parquet``.

One row per (challenge, condition, variation, image): ``challenge`` (the one that predicted: ``background``,
``patches``, ``zero_shot``, ``edge``, ``attack``, ``adversarial_backgrounds``), ``condition`` (what was done to the
image: empty for the image as it is, ``W=<w>`` for the edge removed at nominal width w, ``attack`` or
``attack eps=<e>`` for the run's attack, ``every background`` for the adversarial backgrounds), ``variation``,
``image`` (its file relative to the dataset's root, or ``<variation>/<index>`` for a dataset held in memory),
``label`` and ``prediction`` (class indices), ``label_name``, ``prediction_name``, ``confidence`` (the softmax
probability of the prediction), ``correct``, and ``background_class`` (for a mixed image, the class of the image
whose background it shows, where the dataset knows it; ``rrx.data.base.Benchmark.image_info``).

Every accuracy a run records is the mean of ``correct`` over its rows (``recomputed``): ``challenges.accuracy`` over
the unperturbed rows of each variation, the edge grid over those of each width, the accuracy under attack, and the
adversarial-backgrounds accuracy (a foreground is correct when no background fools it; its row holds the prediction
on the first composite that does, and that background's class). ``rrx report`` checks them against ``metrics.json``
(``disagreement``). The SNR of attributions predicts nothing and writes no rows.
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
    "challenge",
    "condition",
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
        prediction, probability = decide(logits)
        labels.append(torch.as_tensor(y))
        predictions.append(prediction.cpu())
        confidences.append(probability.cpu())
    n = len(cast(Sized, loader.dataset))
    if not labels:
        return {k: torch.zeros(0) for k in ("label", "prediction", "confidence")}
    found = {"label": torch.cat(labels), "prediction": torch.cat(predictions), "confidence": torch.cat(confidences)}
    assert len(found["label"]) == n, f"{desc}: {len(found['label'])} predictions for {n} images"
    return found


def decide(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(prediction, confidence) (B,) of ``logits`` (B, K): the arg-max class and its softmax probability."""
    prediction = logits.argmax(1)
    return prediction, logits.float().softmax(1).gather(1, prediction[:, None])[:, 0]


def gathered(parts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Batches of ``{"label", "prediction", "confidence"}`` as one such dict over all of them, on the CPU."""
    return {key: torch.cat([torch.as_tensor(part[key]).cpu() for part in parts]) for key in parts[0]}


def share_correct(found: dict[str, torch.Tensor]) -> float:
    """``predict``'s correct predictions / images: the accuracy."""
    return (found["prediction"] == found["label"]).sum().item() / len(found["label"])


def prediction_frame(
    dataset,
    variation: str,
    data,
    found: dict[str, torch.Tensor],
    challenge: str = "background",
    condition: str = "",
    background_class: list | None = None,
) -> pd.DataFrame:
    """``predict``'s results on ``data`` (``dataset.variation_set(variation)``) as rows of ``COLUMNS``, of
    ``challenge`` under ``condition``; ``background_class`` replaces the dataset's (one per image)."""
    if hasattr(dataset, "image_info"):  # rrx.data.base.Benchmark.image_info
        info = dataset.image_info(variation, data)
    else:  # a duck-typed dataset: its images named by their index, their backgrounds unknown
        n = len(cast(Sized, data))
        info = {"image": [f"{variation}/{i}" for i in range(n)], "background_class": [None] * n}
    if background_class is not None:
        info = {**info, "background_class": background_class}
    label, prediction = found["label"].tolist(), found["prediction"].tolist()
    classes = getattr(dataset, "classes", None) or [str(k) for k in range(max([*label, *prediction], default=-1) + 1)]
    frame = pd.DataFrame(
        {
            "challenge": challenge,
            "condition": condition,
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


def unperturbed(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of images as they are (empty ``condition``; every row of a frame without that column)."""
    return frame[frame["condition"] == ""] if "condition" in frame.columns else frame


def accuracies(frame: pd.DataFrame) -> dict[str, float]:
    """``{variation: accuracy}``: the share of correct unperturbed rows of each variation."""
    rows = unperturbed(frame)
    return {str(v): float(part["correct"].mean()) for v, part in rows.groupby("variation", sort=False)}


def recomputed(frame: pd.DataFrame) -> dict[str, float]:
    """The accuracies of a run's ``metrics.json`` (``challenges``), recomputed from its predictions, keyed by where
    they are recorded: ``accuracy/<variation>``, ``edge/<variation>/<W>``, ``adversarial_accuracy/original``,
    ``adversarial_curve/<eps>``, ``adversarial_backgrounds/accuracy``."""
    found = {f"accuracy/{v}": acc for v, acc in accuracies(frame).items()}
    if "condition" not in frame.columns:
        return found
    for (challenge, condition, variation), part in frame[frame["condition"] != ""].groupby(
        ["challenge", "condition", "variation"], sort=False
    ):
        share = float(part["correct"].mean())
        if challenge == "edge":
            found[f"edge/{variation}/{condition.removeprefix('W=')}"] = share
        elif challenge == "attack" and condition == "attack":
            found[f"adversarial_accuracy/{variation}"] = share
        elif challenge == "attack":
            found[f"adversarial_curve/{condition.removeprefix('attack eps=')}"] = share
        elif challenge == "adversarial_backgrounds":
            found["adversarial_backgrounds/accuracy"] = share
    return found


def _recorded(challenges: dict, key: str) -> float | None:
    value: object = challenges
    for part in key.split("/"):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return float(value) if isinstance(value, (int, float)) else None


def disagreement(challenges: dict, frame: pd.DataFrame) -> str | None:
    """Where ``frame`` (a run's predictions) gives another accuracy than ``challenges`` (its ``metrics.json``'s)
    for a number both have (``recomputed``): what differs; None where they agree."""
    wrong = []
    for key, found in recomputed(frame).items():
        recorded = _recorded(challenges, key)
        if recorded is not None and abs(found - recorded) > 1e-12:
            where = key.removeprefix("accuracy/")
            wrong.append(f"{where}: {100 * found:.2f}% in {FILE}, {100 * recorded:.2f}% in metrics.json")
    return "; ".join(wrong) or None


def concatenated(frames: list[pd.DataFrame | None]) -> pd.DataFrame | None:
    """The frames that are not None, one after the other; None where there are none."""
    kept = [f for f in frames if f is not None]
    return pd.concat(kept, ignore_index=True) if kept else None


def write_predictions(folder: Path, frame: pd.DataFrame) -> Path:
    path = Path(folder) / FILE
    frame.to_parquet(path, index=False)
    return path


def read_predictions(folder: Path) -> pd.DataFrame | None:
    """A run folder's ``predictions.parquet``, or None where it has none (an rrx before it, or no evaluation)."""
    path = Path(folder) / FILE
    return pd.read_parquet(path) if path.is_file() else None
