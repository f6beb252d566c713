"""rrx as a library: its methods, attacks, challenges, attributions, analyses and datasets on your own model, data
and training loop. Everything here is what the commands run (no second implementation); ``import rrx`` exposes it
(``rrx.__all__``), and the documentation's page "rrx as a Python library" (``docs/library.md``) has the worked
examples, which the tests run.

Conventions: images are (B, 3, H, W) float in [0, 1]; masks (B, 1, H, W) are 1 on the object; labels (B,) are class
indices. A model rrx calls takes such images; a model that expects normalised input is wrapped in ``Model`` with its
``mean`` and ``std``, which also gives the methods that differentiate the normalised input (``input_space=
normalized``) its ``std`` and Grad-CAM its layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from rrx.errors import RRXError


class Model(nn.Module):
    """Any classifier as rrx calls it: [0, 1] images in, logits out.

    ``forward(x) = model((x - mean) / std)``, with ``mean`` and ``std`` the per-channel normalisation ``model``
    expects (None: it takes the [0, 1] image itself). ``cam_layer`` names the layer whose output Grad-CAM weighs (a
    CNN's last convolutional block, e.g. ``"layer4"`` of a torchvision ResNet), by its name in
    ``model.named_modules()`` or as the module.

    Args:
        model (nn.Module): the classifier, (B, 3, H, W) -> (B, K).
        mean, std (Sequence[float], optional): its input normalisation. Default: None (no normalisation).
        cam_layer (str | nn.Module, optional): Grad-CAM's layer, whose output is (B, C, h, w). Default: None.

    Example: ``rrx.Model(torchvision.models.resnet18(num_classes=9), mean=(0.485, 0.456, 0.406), std=(0.229,
    0.224, 0.225), cam_layer="layer4")``.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        model: nn.Module,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        cam_layer: str | nn.Module | None = None,
    ):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(list(mean or (0.0, 0.0, 0.0)), dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(list(std or (1.0, 1.0, 1.0)), dtype=torch.float32).view(1, 3, 1, 1))
        self._cam_layer = model.get_submodule(cam_layer) if isinstance(cam_layer, str) else cam_layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)

    def cam_layer(self) -> nn.Module:
        """Grad-CAM's layer (``rrx.attributions.cam``)."""
        if self._cam_layer is None:
            raise RRXError(
                "Grad-CAM needs the layer whose feature maps it weighs: rrx.Model(model, cam_layer=<name>), e.g. "
                "'layer4' for a torchvision ResNet"
            )
        return self._cam_layer

    def feature_grid(self, features: torch.Tensor) -> torch.Tensor:
        if features.ndim != 4:
            raise RRXError(
                f"cam_layer gives features of shape {tuple(features.shape)}: Grad-CAM needs a (B, C, h, w) map"
            )
        return features


def method(name: str, **keys: Any):
    """The training method ``name`` (``rrx train method=<name>``) with ``keys`` set, e.g. ``method("rrr",
    lam=10.0)``; its ``loss(model, x, y, mask)`` returns ``(loss, logs)``: the batch's cross-entropy plus its
    weighted penalty, to back-propagate in your loop (``logs``: ``ce``, ``penalty`` and ``logits``, detached). An
    unknown key or a bad value is one RRXError listing the valid ones."""
    from rrx.config import component
    from rrx.methods import create_method

    return create_method(component("method", name, **keys))


def attack(name: str, **keys: Any):
    """The attack ``name`` (``fgsm``, ``pgd``) with ``keys`` set (``eps``, ``steps``, ...); ``perturb(model, x, y)``
    returns the adversarial images in [0, 1]. ARRR is ``method`` trained on them (thesis Eq. 5.2)."""
    from rrx.attacks import create_attack
    from rrx.config import component

    return create_attack(component("attack", name, **keys))


def dataset(name: str, **keys: Any):
    """The dataset ``name`` (``rrx train dataset=<name>``) with ``keys`` set, e.g. ``dataset("in9", root=...)`` or
    ``dataset("synthetic")`` (the embedded benchmark, generated once into its cache). ``train_set(masks=True)`` and
    ``variation_set(variation, masks=True)`` are ``torch.utils.data.Dataset``\\ s of ``(image, label, mask)``
    (``(image, label)`` without masks); ``variations()`` lists its evaluation variations."""
    from rrx.config import component
    from rrx.data import create_dataset

    return create_dataset(component("dataset", name, **keys))


def _runtime(device: str | torch.device | None, batch_size: int, progress: bool):
    from rrx.runtime import Runtime

    device = torch.device(device) if device is not None else torch.device("cpu")
    return Runtime(device, amp=False, batch_size=batch_size, num_workers=0, progress=progress)


def challenge(
    model: nn.Module,
    data,
    name: str = "background",
    batch_size: int = 64,
    device: str | torch.device | None = None,
    progress: bool = False,
    **keys: Any,
) -> pd.DataFrame:
    """The challenge ``name`` (``rrx evaluate challenge=<name>``, with ``keys`` set) of ``model`` on ``data``
    (a ``dataset(...)``, or the path of a folder in the IN-9 layout), as a one-row DataFrame with the columns of its
    tables in percent (Table 5's Mixed same, Mixed rand, Mixed next, BG Gap, Original; Table 8's; the worst-group
    accuracies). ``df.attrs["results"]`` holds the results as ``metrics.json`` has them and
    ``df.attrs["predictions"]`` the per-image predictions (``rrx.predictions``).

    Example: ``rrx.challenge(rrx.Model(net, mean, std), "/data/bg_challenge")``.
    """
    from rrx.challenges import check_variations, create_challenge
    from rrx.config import component
    from rrx.record import Record
    from rrx.results import table_specs

    if isinstance(data, (str, Path)):
        data = dataset("in9", root=str(data))
    spec = create_challenge(component("challenge", name, **keys))
    check_variations(spec, data, "none")
    runtime = _runtime(device, batch_size, progress)
    model = model.to(runtime.device).eval()
    results = spec.evaluate(model, data, runtime)
    record = Record("evaluate", {"architecture": type(model).__name__, "method": "-", "dataset": data.name})
    record.challenges = results
    row: dict[str, Any] = {}
    for table in table_specs():
        if table.holds(record):
            built = table.build([record])
            row.update({c: built[c].iloc[0] for c in built.columns if c not in ("Architecture", "Method", "Model")})
    frame = pd.DataFrame([row])
    frame.attrs["results"] = results
    frame.attrs["predictions"] = getattr(spec, "predictions", None)
    return frame


def score_predictions(predictions: pd.DataFrame) -> pd.DataFrame:
    """The background challenge's numbers from predictions you computed yourself: ``predictions`` has one row per
    image with ``variation``, ``label`` and ``prediction`` (class indices), and optionally ``label_name`` and
    ``background_class`` for the worst-group accuracy of the mixed variations. Returns one row: the accuracy of each
    variation and BG Gap = Mixed same - Mixed rand (percent), and ``Worst group <variation>`` where the
    backgrounds' classes are given for every image of a mixed variation."""
    from rrx.challenges.groups import group_accuracy
    from rrx.predictions import accuracies

    missing = [c for c in ("variation", "label", "prediction") if c not in predictions.columns]
    if missing:
        raise RRXError(f"predictions: no column {', '.join(missing)} (one row per image: variation, label, prediction)")
    frame = predictions.assign(correct=predictions["label"] == predictions["prediction"])
    found = accuracies(frame)
    row = {variation.replace("_", " ").capitalize(): 100 * acc for variation, acc in found.items()}
    if "mixed_same" in found and "mixed_rand" in found:
        row["BG Gap"] = 100 * (found["mixed_same"] - found["mixed_rand"])
    if "background_class" in frame.columns:
        if "label_name" not in frame.columns:
            frame = frame.assign(label_name=frame["label"].astype(str))
        groups = group_accuracy(frame.assign(background_class=frame["background_class"].astype("string")))
        for variation, found_groups in groups.items():
            row[f"Worst group {variation.replace('_', ' ')}"] = 100 * found_groups["worst_group_accuracy"]
    return pd.DataFrame([row])


def attribute(model: nn.Module, x: torch.Tensor, target: torch.Tensor, method: str, **options: Any) -> torch.Tensor:
    """(B, H, W) attribution maps of classes ``target`` (B,) for images ``x`` by ``method`` (a registered name,
    e.g. ``saliency``, ``integrated_gradients``, ``gradcam``, or ``captum:<ClassName>``); ``options`` as
    ``rrx.attributions.attribution_map`` (``steps``, ``baseline``, ``signed``, ...). Grad-CAM needs
    ``rrx.Model(..., cam_layer=...)``."""
    from rrx.attributions import attribution_map

    return attribution_map(model, x, target, method, **options)


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: Sequence[torch.Tensor],
    rrx_method,
    rrx_attack=None,
    generator: torch.Generator | None = None,
) -> float:
    """One training step as ``rrx train`` takes it (``rrx.tasks.classification.training_step``): ``batch`` is
    ``(x, y, mask)`` (or ``(x, y)`` for a method without masks), with ``rrx_method.rrda`` it gets its RRDA images
    (thesis Alg. 3), ``rrx_attack`` (``attack(...)``; None: none) perturbs it (ARRR), then the method's loss,
    backward and ``optimizer``'s step. ``generator`` draws RRDA's partners. Returns the loss."""
    from rrx.tasks.classification import training_step

    device = next(model.parameters()).device
    runtime = _runtime(device, batch_size=len(batch[0]), progress=False)
    model.train()
    loss, _, _ = training_step(
        model, rrx_method, rrx_attack or attack("none"), None, batch, runtime, generator or torch.Generator()
    )
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())
