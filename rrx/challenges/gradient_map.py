"""The mean absolute input-gradient map of a model (thesis Fig. 21, after Ross et al. 2017's figures)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from rrx.challenges import register_challenge
from rrx.config import ComponentConfig, param
from rrx.plots import pyplot, save_figure
from rrx.record import Record
from rrx.runtime import Runtime
from rrx.tables import Figure, model_name


def mean_gradient_map(
    model, loader, runtime: Runtime, desc: str = "gradient map"
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(mean over images of |d sum_k log p_k / dx| summed over channels, mean object mask), both (H, W), and the
    accuracy, from one pass over ``loader``.

    The gradient is RRR's explanation (thesis Eq. 2.7); the mean mask marks where the signal is (for the toy
    rules, the rule cells)."""
    model.eval()
    total: torch.Tensor | None = None
    masks: torch.Tensor | None = None
    seen, correct = 0, 0
    for x, y, mask in tqdm(loader, desc=desc, leave=False, disable=not runtime.progress):
        x = x.to(runtime.device).requires_grad_(True)
        logits = model(x)
        (grad,) = torch.autograd.grad(F.log_softmax(logits, dim=1).sum(), x)
        batch_map, batch_mask = grad.abs().sum(dim=1).sum(dim=0), mask.float().sum(dim=(0, 1))
        total = batch_map if total is None else total + batch_map
        masks = batch_mask if masks is None else masks + batch_mask
        correct += (logits.argmax(1).cpu() == y).sum().item()
        seen += len(x)
    assert total is not None and masks is not None, "no images to take the gradient map over"
    return (total / seen).cpu(), (masks / seen).cpu(), correct / seen


@dataclass
class GradientMapConfig(ComponentConfig):
    """accuracy and the mean |input gradient| map over the test images, with the signal cells (thesis Fig. 21)"""

    name: str = param("gradient_map", "the registered name of the challenge")
    map_variation: str = param("original", "the test images the map is taken over")


@register_challenge("gradient_map", config=GradientMapConfig)
class GradientMapChallenge:
    """Accuracy on ``cfg.map_variation`` (``original``) and the mean absolute input-gradient map over its images.

    Results: ``{"accuracy": {"original": float}, "gradient_map": {"map": [[float]], "signal": [[float]]}}``, the
    map (H, W) and the mean object mask (H, W) as nested lists; the report draws them as Fig. 21.
    """

    def __init__(self, cfg):
        self.variation = cfg.map_variation
        self.variations = [self.variation]

    def needs(self) -> list[tuple[str, bool]]:
        return [(self.variation, True)]

    def evaluate(self, model, dataset, runtime: Runtime) -> dict:
        loader = runtime.loader(dataset.variation_set(self.variation, masks=True), shuffle=False)
        grad_map, signal, acc = mean_gradient_map(model, loader, runtime)
        return {
            "accuracy": {self.variation: acc},
            "gradient_map": {"map": grad_map.tolist(), "signal": signal.tolist()},
        }


# --- tables and figures (rrx report, and the run's folder) ---------------------------------------------------------
def gradient_maps(runs: list[Record], dataset: str, path: Path) -> Path | None:
    """Fig. 21: each model's mean absolute input-gradient map (mean over seeds), the signal cells outlined."""
    plt = pyplot()
    import matplotlib.patches

    maps: dict[str, list[np.ndarray]] = {}
    signal = None
    for m in runs:
        found = m.challenges.get("gradient_map")
        if found:
            maps.setdefault(model_name(m), []).append(np.asarray(found["map"]))
            signal = np.asarray(found["signal"]) > 0.5
    if not maps:
        return None
    assert signal is not None  # set with each map
    fig, axes = plt.subplots(1, len(maps), figsize=(2.2 * len(maps), 2.6), squeeze=False)
    for ax, (label, found) in zip(axes[0], sorted(maps.items())):
        mean = np.mean(found, axis=0)
        ax.imshow(mean / mean.max() if mean.max() > 0 else mean, cmap="magma", vmin=0, vmax=1)
        for i, j in zip(*np.nonzero(signal)):
            ax.add_patch(matplotlib.patches.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="cyan", lw=1.5))
        ax.set_title(f"{label}\n(n = {len(found)})", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        f"Mean |input gradient| per pixel, scaled to its maximum ({dataset}); outlined: signal cells", fontsize=9
    )
    return save_figure(fig, path)


# placed after Fig. 17b and before Figs. 18-19, where rrx's report has always shown it
FIGURES = [
    Figure(
        "fig21_gradients",
        "Fig. 21: mean absolute input gradients",
        gradient_maps,
        lambda m: bool(m.challenges.get("gradient_map")),
        17.5,
    )
]
