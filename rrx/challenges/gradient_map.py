"""The mean absolute input-gradient map of a model (thesis Fig. 21, after Ross et al. 2017's figures)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from tqdm import tqdm

from rrx.challenges import register_challenge
from rrx.runtime import Runtime


def mean_gradient_map(model, loader, runtime: Runtime, desc: str = "gradient map") -> tuple[torch.Tensor, torch.Tensor, float]:
    """(mean over images of |d sum_k log p_k / dx| summed over channels, mean object mask), both (H, W), and the
    accuracy, from one pass over ``loader``.

    The gradient is RRR's explanation (thesis Eq. 2.7); the mean mask marks where the signal is (for the toy
    rules, the rule cells)."""
    model.eval()
    total, masks, seen, correct = None, None, 0, 0
    for x, y, mask in tqdm(loader, desc=desc, leave=False, disable=not runtime.progress):
        x = x.to(runtime.device).requires_grad_(True)
        logits = model(x)
        (grad,) = torch.autograd.grad(F.log_softmax(logits, dim=1).sum(), x)
        batch_map, batch_mask = grad.abs().sum(dim=1).sum(dim=0), mask.float().sum(dim=(0, 1))
        total = batch_map if total is None else total + batch_map
        masks = batch_mask if masks is None else masks + batch_mask
        correct += (logits.argmax(1).cpu() == y).sum().item()
        seen += len(x)
    return (total / seen).cpu(), (masks / seen).cpu(), correct / seen


@register_challenge("gradient_map")
class GradientMapChallenge:
    """Accuracy on ``original`` and the mean absolute input-gradient map over its images.

    Results: ``{"accuracy": {"original": float}, "gradient_map": {"map": [[float]], "signal": [[float]]}}``, the
    map (H, W) and the mean object mask (H, W) as nested lists; the report draws them as Fig. 21.
    """

    def __init__(self, cfg):
        self.variation = cfg.get("map_variation", "original")
        self.variations = [self.variation]

    def needs(self) -> list[tuple[str, bool]]:
        return [(self.variation, True)]

    def evaluate(self, model, dataset, runtime: Runtime) -> dict:
        loader = runtime.loader(dataset.variation_set(self.variation, masks=True), shuffle=False)
        grad_map, signal, acc = mean_gradient_map(model, loader, runtime)
        return {"accuracy": {self.variation: acc}, "gradient_map": {"map": grad_map.tolist(), "signal": signal.tolist()}}
