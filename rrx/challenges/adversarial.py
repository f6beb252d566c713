"""Accuracy under attack (thesis Table 9: test accuracy next to adversarial accuracy)."""

from __future__ import annotations

import logging
from collections.abc import Sized
from typing import cast

import pandas as pd
from tqdm import tqdm

from rrx.record import Record
from rrx.runtime import Runtime
from rrx.tables import Table, model_name, percent

log = logging.getLogger(__name__)


def evaluate_with_attack(challenge, attack_name: str, attack, model, dataset, runtime: Runtime, eval_eps=None) -> dict:
    """The challenge's results, plus ``adversarial_accuracy`` on original when an attack is configured, and with
    ``eval_eps`` (a list) ``adversarial_curve``: {eps: accuracy under the attack at that eps} (thesis Table 9)."""
    results = challenge.evaluate(model, dataset, runtime)
    if attack_name != "none":
        results["adversarial_accuracy"] = {"original": adversarial_accuracy(model, dataset, attack, runtime)}
        if eval_eps:
            results["adversarial_curve"] = {
                f"{float(eps):g}": adversarial_accuracy(model, dataset, attack.at_eps(float(eps)), runtime)
                for eps in eval_eps
            }
    return results


def adversarial_accuracy(model, dataset, attack, runtime: Runtime, variation: str = "original") -> float:
    """Correct predictions on ``attack.perturb``-ed images of ``variation`` / its size."""
    loader = runtime.loader(dataset.variation_set(variation), shuffle=False)
    model.eval()
    correct = 0
    for x, y in tqdm(loader, desc=f"attack {variation}", leave=False, disable=not runtime.progress):
        x, y = x.to(runtime.device), y.to(runtime.device)
        x_adv = attack.perturb(model, x, y)
        correct += (model(x_adv).argmax(1) == y).sum().item()
    acc = correct / len(cast(Sized, loader.dataset))
    log.info("%-10s accuracy under attack %.2f%%", variation, 100 * acc)
    return acc


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
    return pd.DataFrame(rows, columns=columns).astype({c: float for c in columns[1:]}).round(2)


TABLES = [
    Table(
        "table9", "Accuracy under attack (Table 9 shape)", table9, lambda m: "adversarial_accuracy" in m.challenges, 9
    )
]
