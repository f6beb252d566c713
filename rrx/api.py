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
    """The training method ``name`` (``rrx train method=<name>``) with ``keys`` set.

    The methods and their equations (docs' Methods page): ``standard`` (cross-entropy), ``rrr`` (Ross et al. 2017,
    thesis Eq. 3.1: lam * ||(1 - M) * d log p / dx||^2), ``gradmask`` (Simpson et al. 2019), ``actdiff`` (Eq. 5.1),
    ``ada`` (thesis Alg. 4), ``cdep`` (Rieger et al. 2020), ``eg`` (Erion et al. 2021), ``rrda`` and
    ``actdiff_rrda`` (RRDA, thesis Alg. 3, with ``rrda=true`` on any of them).

    Args:
        name (str): a registered method or preset.
        **keys: its config's keys (``rrx train method=<name> --help`` lists them), e.g. ``lam=10.0``,
            ``input_space="normalized"`` (which needs the model wrapped in ``Model`` with its ``std``).

    Returns:
        The method: ``loss(model, x, y, mask)`` with x (B, 3, H, W) in [0, 1], y (B,), mask (B, 1, H, W) returns
        ``(loss, logs)``, the batch's cross-entropy plus its weighted penalty, to back-propagate in your loop
        (``logs``: ``ce``, ``penalty`` and ``logits``, detached).

    Raises:
        RRXError: an unknown name or key, or a value out of its range, naming the valid ones.

    Example: ``rrx.method("rrr", lam=10.0).loss(model, x, y, mask)[0].backward()``.
    """
    from rrx.config import component
    from rrx.methods import create_method

    return create_method(component("method", name, **keys))


def attack(name: str, **keys: Any):
    """The attack ``name`` with ``keys`` set: ``fgsm`` (Goodfellow et al. 2015: x + eps * sign(grad_x CE)) or
    ``pgd`` (Madry et al. 2018: ``steps`` signed steps of ``step_size`` projected onto the L-inf ball of ``eps``).
    ARRR is a ``method`` trained on the attacked images (thesis Eq. 5.2; ``train_step(..., rrx_attack=...)``).

    Args:
        name (str): ``fgsm``, ``pgd`` or ``none``.
        **keys: its config's keys, e.g. ``eps=8 / 255``, ``steps=10``, ``step_size=2 / 255``.

    Returns:
        The attack: ``perturb(model, x, y)`` returns the adversarial images (B, 3, H, W), clipped to [0, 1].
    """
    from rrx.attacks import create_attack
    from rrx.config import component

    return create_attack(component("attack", name, **keys))


def dataset(name: str, **keys: Any):
    """The dataset ``name`` (``rrx train dataset=<name>``) with ``keys`` set.

    Args:
        name (str): e.g. ``"in9"`` (the backgrounds challenge's layout), ``"rival10"``, ``"waterbirds"``, or
            ``"synthetic"`` (the embedded benchmark, generated once into its cache).
        **keys: its config's keys, e.g. ``root="/data/bg_challenge"``, ``image_size=224``.

    Returns:
        The dataset: ``train_set(masks=True)`` and ``variation_set(variation, masks=True)`` are
        ``torch.utils.data.Dataset``\\ s of ``(image, label, mask)``: image (3, H, W) in [0, 1], label an int,
        mask (1, H, W) 1 on the object (``(image, label)`` without masks); ``variations()`` lists its evaluation
        variations and ``classes`` its class names in label order.

    Example: ``rrx.dataset("in9", root="/data/bg_challenge").variation_set("mixed_rand")``.
    """
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
    """The challenge ``name`` (``rrx evaluate challenge=<name>``) of ``model`` on ``data``.

    The background challenge (Xiao et al. 2021; thesis 4.2): the accuracy on each variation and
    BG-Gap = acc(mixed_same) - acc(mixed_rand), with the worst-group accuracy min_g acc(g) over the (object class,
    background class) groups of each mixed variation (``rrx.challenges.groups``); the others as ``rrx evaluate``.

    Args:
        model (nn.Module): a classifier on [0, 1] images, (B, 3, H, W) -> (B, K) (``Model`` adds a normalisation).
        data: a ``dataset(...)``, or the path of a folder in the IN-9 layout.
        name (str): the challenge or preset. Default: ``"background"``.
        batch_size (int): images per forward pass. Default: 64.
        device (str | torch.device, optional): where to run. Default: None (the CPU).
        progress (bool): a progress bar per variation. Default: False.
        **keys: the challenge's config keys, e.g. ``variations=["original", "mixed_rand"]``.

    Returns:
        A one-row DataFrame with the columns of the challenge's tables in percent, not rounded (Table 5's Mixed
        same, Mixed rand, Mixed next, BG Gap, Original; Table 8's; the worst-group accuracies); ``df.attrs["results"]``
        holds the results as ``metrics.json`` has them and ``df.attrs["predictions"]`` the per-image predictions
        (``rrx.predictions``).

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
    """The background challenge's numbers from predictions you computed yourself: acc(v) = #{correct in v} / #v,
    BG-Gap = acc(mixed_same) - acc(mixed_rand) (Xiao et al. 2021), worst-group accuracy = min over the (object
    class, background class) groups g of acc(g) (Sagawa et al. 2020).

    Args:
        predictions (DataFrame): one row per image with ``variation``, ``label`` and ``prediction`` (class
            indices), and optionally ``label_name`` and ``background_class`` for the worst-group accuracy of the
            mixed variations (a ``predictions.parquet`` is such a frame).

    Returns:
        A one-row DataFrame: the accuracy of each variation and ``BG Gap`` (percent), and ``Worst group
        <variation>`` where the backgrounds' classes are given for every image of a mixed variation.

    Raises:
        RRXError: a column is missing.
    """
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
    """Attribution maps by captum: ``saliency`` (Simonyan et al. 2014, thesis Eq. 3.2: sum_c |d f_t / dx_c|),
    ``integrated_gradients`` (Sundararajan et al. 2017: (x - x') * the mean of d f_t / dx along x' -> x),
    ``gradcam`` (Selvaraju et al. 2017), the others registered, or any captum attribution as
    ``captum:<ClassName>``.

    Args:
        model (nn.Module): a classifier on [0, 1] images; Grad-CAM needs ``rrx.Model(..., cam_layer=...)``.
        x (Tensor): images (B, 3, H, W).
        target (Tensor): the classes (B,) attributed.
        method (str): the attribution's name.
        **options: as ``rrx.attributions.attribution_map`` (``steps``, ``baseline``, ``signed``, ...).

    Returns:
        Tensor (B, H, W): one non-negative map per image (signed with ``signed=True``), reduced over the channels
        as each method defines (Grad-CAM's upsampled to H x W).
    """
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
    """One training step as ``rrx train`` takes it (``rrx.tasks.classification.training_step``): the batch gets its
    RRDA images where the method has ``rrda`` (thesis Alg. 3), is perturbed by the attack (ARRR, thesis Eq. 5.2),
    then the method's loss is back-propagated and ``optimizer`` steps.

    Args:
        model (nn.Module): the classifier being trained, on [0, 1] images.
        optimizer (Optimizer): the optimizer of its parameters.
        batch (Sequence[Tensor]): ``(x, y, mask)``: x (B, 3, H, W) in [0, 1], y (B,), mask (B, 1, H, W) 1 on the
            object; ``(x, y)`` for a method without masks.
        rrx_method: a ``method(...)``.
        rrx_attack: an ``attack(...)``. Default: None (clean inputs).
        generator (torch.Generator, optional): draws RRDA's partners. Default: None (a fresh generator).

    Returns:
        float: the batch's loss.
    """
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
