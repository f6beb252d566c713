"""Accuracy under attack (thesis Table 9: test accuracy next to adversarial accuracy)."""

from __future__ import annotations

import logging

from tqdm import tqdm

from rrx.runtime import Runtime

log = logging.getLogger(__name__)


def evaluate_with_attack(challenge, attack_name: str, attack, model, dataset, runtime: Runtime,
                         eval_eps=None) -> dict:
    """The challenge's results, plus ``adversarial_accuracy`` on original when an attack is configured, and with
    ``eval_eps`` (a list) ``adversarial_curve``: {eps: accuracy under the attack at that eps} (thesis Table 9)."""
    results = challenge.evaluate(model, dataset, runtime)
    if attack_name != "none":
        results["adversarial_accuracy"] = {"original": adversarial_accuracy(model, dataset, attack, runtime)}
        if eval_eps:
            results["adversarial_curve"] = {f"{float(eps):g}": adversarial_accuracy(model, dataset, attack.at_eps(float(eps)), runtime)
                                            for eps in eval_eps}
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
    acc = correct / len(loader.dataset)
    log.info("%-10s accuracy under attack %.2f%%", variation, 100 * acc)
    return acc
