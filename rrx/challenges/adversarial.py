"""Accuracy under attack (thesis Table 9: test accuracy next to adversarial accuracy)."""

from __future__ import annotations

import logging

import pandas as pd
import torch
from tqdm import tqdm

from rrx.predictions import concatenated, decide, gathered, prediction_frame, share_correct
from rrx.record import Record
from rrx.runtime import Runtime
from rrx.tables import Table, model_name, percent

log = logging.getLogger(__name__)


def evaluate_with_attack(
    challenge, attack_name: str, attack, model, dataset, runtime: Runtime, eval_eps=None
) -> tuple[dict, pd.DataFrame | None]:
    """The challenge's results, plus ``adversarial_accuracy`` on original when an attack is configured, and with
    ``eval_eps`` (a list) ``adversarial_curve``: {eps: accuracy under the attack at that eps} (thesis Table 9);
    with the per-image predictions they come from (``rrx.predictions``: the challenge's, then the attacked images'
    under condition ``attack`` and ``attack eps=<e>``), None where the challenge predicts nothing."""
    results = challenge.evaluate(model, dataset, runtime)
    frames = [getattr(challenge, "predictions", None)]
    if attack_name != "none":
        found = attacked_predictions(model, dataset, attack, runtime)
        results["adversarial_accuracy"] = {"original": share_correct(found)}
        frames.append(prediction_frame(dataset, "original", found["data"], found, "attack", "attack"))
        if eval_eps:
            results["adversarial_curve"] = {}
            for eps in eval_eps:
                key = f"{float(eps):g}"
                found = attacked_predictions(model, dataset, attack.at_eps(float(eps)), runtime)
                results["adversarial_curve"][key] = share_correct(found)
                frames.append(
                    prediction_frame(dataset, "original", found["data"], found, "attack", f"attack eps={key}")
                )
    return results, concatenated(frames)


def attacked_predictions(model, dataset, attack, runtime: Runtime, variation: str = "original") -> dict:
    """``rrx.predictions.predict``'s ``{"label", "prediction", "confidence"}`` on ``attack.perturb``-ed images of
    ``variation`` (under ``"data"`` the variation's dataset)."""
    data = dataset.variation_set(variation)
    model.eval()
    parts = []
    for x, y in tqdm(
        runtime.loader(data, shuffle=False), desc=f"attack {variation}", leave=False, disable=not runtime.progress
    ):
        x, y = x.to(runtime.device), y.to(runtime.device)
        x_adv = attack.perturb(model, x, y)
        with torch.no_grad():
            prediction, confidence = decide(model(x_adv))
        parts.append({"label": y, "prediction": prediction, "confidence": confidence})
    found: dict = gathered(parts)
    log.info("%-10s accuracy under attack %.2f%%", variation, 100 * share_correct(found))
    return found | {"data": data}


# --- tables and figures (rrx report, and the run's folder) ---------------------------------------------------------
# Thesis Table 9: accuracy on the test set and under the run's attack, in percent.
TABLE9_COLUMNS = ["Model", "Test Accuracy", "Adversarial Accuracy"]


def table9(runs: list[Record]) -> pd.DataFrame:
    """Plus one column ``eps=<e>`` per eps of the runs' ``adversarial_curve`` (``attack.eval_eps``), where any."""
    rows, curve = [], set()
    for metrics in runs:
        challenges = metrics.challenges
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
    return pd.DataFrame(rows, columns=columns).astype({c: float for c in columns[1:]})


TABLES = [
    Table(
        "table9", "Accuracy under attack (Table 9 shape)", table9, lambda m: "adversarial_accuracy" in m.challenges, 9
    )
]
