"""What the analysis runners share: the attribution methods, the test images, the target class, summaries."""

from __future__ import annotations

import math
import statistics

import torch
from torch.utils.data import Subset
from tqdm import tqdm

from rrx.attributions import attribution_map
from rrx.errors import RRXError, check_choice

ATTRIBUTIONS = ("saliency", "input_x_gradient", "guided_backprop", "gradcam", "guided_gradcam", "integrated_gradients")
TARGETS = ("label", "prediction")  # the class an attribution explains


def attribution_list(key: str, value) -> list[str]:
    """``analysis.attribution`` as a list (one name or several), each a method of ``rrx.attributions``."""
    names = [value] if isinstance(value, str) else list(value)
    if not names:
        raise RRXError(f"{key} is empty; give one or more of {', '.join(ATTRIBUTIONS)}")
    for name in names:
        check_choice(key, name, ATTRIBUTIONS)
    return names


def analysis_images(dataset, variation: str, masks: bool, max_images: int | None):
    """The test images of ``variation`` (with masks when ``masks``), all of them or ``max_images`` evenly spaced (the
    split is listed class by class, so every class stays in)."""
    data = dataset.variation_set(variation, masks=masks)
    if len(data) == 0:
        raise RRXError(f"dataset {dataset.name}: variation {variation} has no images to analyse")
    if max_images is not None and max_images < len(data):
        data = Subset(data, torch.linspace(0, len(data) - 1, int(max_images)).round().long().tolist())
    return data


def batches(data, runtime, desc: str):
    """(x, y, mask or None) on the device, batch by batch, with a progress bar."""
    for batch in tqdm(runtime.loader(data, shuffle=False), desc=desc, leave=False, disable=not runtime.progress):
        x, y = batch[0].to(runtime.device), batch[1].to(runtime.device)
        yield x, y, batch[2].to(runtime.device) if len(batch) > 2 else None


def explain(model, x: torch.Tensor, target: torch.Tensor, method: str, ig_steps: int = 50) -> torch.Tensor:
    """(B, H, W) attribution of ``target`` in float32 (no autocast: gradients of a bf16 model are too coarse here)."""
    return attribution_map(model, x, target, method, steps=ig_steps).float()


@torch.no_grad()
def predict(model, x: torch.Tensor) -> torch.Tensor:
    return model(x).argmax(1)


def summary(values: list[float]) -> dict:
    """Mean, sample std and count of the defined values; ``undefined`` counts the NaNs left out."""
    defined = [float(v) for v in values if not math.isnan(v)]
    mean = statistics.fmean(defined) if defined else math.nan
    std = statistics.stdev(defined) if len(defined) > 1 else math.nan
    return {"mean": mean, "std": std, "n": len(defined), "undefined": len(values) - len(defined)}
