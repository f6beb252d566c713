"""The Model Inspector's views (thesis 7.3.1-7.3.3): each computes its numbers from rrx's science and draws them.

Every view returns a ``View``: a matplotlib figure (the page shows it; "save" writes it as PNG) and its numbers
(written beside it as JSON). Images are (3, H, W) in [0, 1]; masks (H, W), 1 on the signal.

- Image processing (7.3.1): ``transform_view``: top-k class probabilities of the original and the transformed
  image (``rrx.inspector.transforms``).
- Interpretability (7.3.2): ``attribution_view``: any rrx attribution (``rrx.attributions``: captum methods,
  Grad-CAM for CNNs and ViTs) over the image; ``u_view``: U Analysis of the image (``rrx.analyses.u_analysis``) with
  the attribution of the first component, and its counter-intuitive (U) images when found.
- Signal (7.3.3): ``signal_view``: predictions on the signal only and on the context only; ``snr_view``: the
  signal-to-noise ratio of attributions (``rrx.challenges.snr``); ``background_view``: every texture transform
  applied to the background only (the signal kept), with the predictions (after Moayeri et al. 2022's noise
  analysis).

The model is shared by the browser sessions of one server: every call holds ``inspected.lock``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure

from rrx.analyses.common import fill_mean
from rrx.analyses.u_analysis import ORDERS, U_FILLS, sequence_images, u_analysis
from rrx.attributions import attribution_map, attribution_names, check_attribution
from rrx.challenges.snr import signal_to_noise
from rrx.data.variations import paste
from rrx.errors import RRXError, check_choice
from rrx.inspector.model import Inspected
from rrx.inspector.transforms import TEXTURES, TRANSFORMS, apply_transform

TOP_K = 5


@dataclass
class View:
    """What one view shows: ``figure`` and ``numbers`` (JSON-ready); ``name`` names its saved files."""

    name: str
    figure: Figure
    numbers: dict


@torch.no_grad()
def probabilities(inspected: Inspected, x: torch.Tensor) -> torch.Tensor:
    """(B, K) softmax class probabilities of images x (B, 3, H, W), float64 on the CPU."""
    with inspected.lock:
        logits = inspected.model(x.to(inspected.device))
    return torch.softmax(logits.double(), dim=1).cpu()


def top_k(probs: torch.Tensor, classes: list[str], k: int = TOP_K) -> list[dict]:
    """The ``k`` most probable classes of probs (K,): [{"index", "class", "probability"}], most probable first
    (ties: the lower index first)."""
    order = sorted(range(len(probs)), key=lambda c: (-float(probs[c]), c))[:k]
    return [{"index": c, "class": classes[c], "probability": float(probs[c])} for c in order]


def check_class(index: int, classes: list[str]) -> int:
    """``index`` if it names one of the model's classes, else an RRXError naming the range."""
    if not isinstance(index, (int, np.integer)) or isinstance(index, bool) or not 0 <= index < len(classes):
        raise RRXError(
            f"class index {index} is out of range: the model has {len(classes)} classes, 0 .. {len(classes) - 1}"
        )
    return int(index)


def _image(ax, x: torch.Tensor, title: str) -> None:
    ax.imshow(x.detach().permute(1, 2, 0).clamp(0, 1).cpu().numpy(), interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def _bars(ax, ranked: list[dict], title: str) -> None:
    names = [f"{r['index']}: {r['class']}" for r in ranked][::-1]
    ax.barh(names, [r["probability"] for r in ranked][::-1], color="tab:blue")
    ax.set_xlim(0, 1)
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=7)


def _figure(width: float, height: float) -> Figure:
    """A figure outside pyplot (pyplot's global state is not safe across the server's session threads)."""
    return Figure(figsize=(width, height), dpi=120, layout="constrained")


def _predicted(inspected: Inspected, x: torch.Tensor) -> tuple[int, float]:
    probs = probabilities(inspected, x[None])[0]
    c = int(probs.argmax())
    return c, float(probs[c])


def transform_view(
    inspected: Inspected, x: torch.Tensor, name: str, value: float, seed: int, k: int = TOP_K
) -> tuple[View, torch.Tensor]:
    """Image processing (7.3.1): the top-k classes of x and of ``name``(x) with parameter ``value`` and ``seed``;
    and the transformed image."""
    transformed = apply_transform(name, x, value, seed)
    probs = probabilities(inspected, torch.stack([x, transformed]))
    original, changed = top_k(probs[0], inspected.classes, k), top_k(probs[1], inspected.classes, k)
    transform = TRANSFORMS[name]
    fig = _figure(8, 4.2)
    axes = fig.subplots(2, 2, height_ratios=[3, 2])
    _image(axes[0, 0], x, "original")
    _image(axes[0, 1], transformed, f"{transform.label}, {transform.parameter.name} {value:g}, seed {seed}")
    _bars(axes[1, 0], original, "original: top classes")
    _bars(axes[1, 1], changed, "transformed: top classes")
    numbers = {
        "transform": name,
        "parameter": transform.parameter.name,
        "value": value,
        "seed": seed,
        "original": original,
        "transformed": changed,
    }
    return View("transform", fig, numbers), transformed


def explain_one(inspected: Inspected, x: torch.Tensor, target: int, method: str) -> torch.Tensor:
    """(H, W) non-negative attribution of class ``target`` for image x (rrx.attributions, float32)."""
    check_attribution("attribution", method)
    check_class(target, inspected.classes)
    with inspected.lock:
        y = torch.tensor([target], device=inspected.device)
        return attribution_map(inspected.model, x[None].to(inspected.device), y, method)[0].float().cpu()


def overlay(x: torch.Tensor, heat: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
    """(3, H, W): the image blended with the jet colours of ``heat`` (H, W) scaled to [0, 1] by its maximum
    (an all-zero map stays dark blue)."""
    top = float(heat.max())
    scaled = heat / top if top > 0 else torch.zeros_like(heat)
    colours = torch.from_numpy(colormaps["jet"](scaled.numpy())[..., :3]).permute(2, 0, 1).float()
    return (1 - alpha) * x + alpha * colours


def target_class(inspected: Inspected, x: torch.Tensor, chosen: int | None) -> tuple[int, str]:
    """The class explained: ``chosen``, or the predicted class when None; and how it was picked."""
    if chosen is None:
        return _predicted(inspected, x)[0], "predicted"
    return check_class(chosen, inspected.classes), "chosen"


def attribution_view(
    inspected: Inspected, x: torch.Tensor, method: str, chosen: int | None = None
) -> tuple[View, torch.Tensor]:
    """Interpretability (7.3.2), first component: the attribution of the predicted (or ``chosen``) class; and the
    map (H, W) for U Analysis."""
    target, how = target_class(inspected, x, chosen)
    heat = explain_one(inspected, x, target, method)
    probs = probabilities(inspected, x[None])[0]
    fig = _figure(6, 3.2)
    left, right = fig.subplots(1, 2)
    name = inspected.classes[target]
    _image(left, x, f"image: p({name}) = {float(probs[target]):.3f}")
    _image(right, overlay(x, heat), f"{method} of {target}: {name} ({how})")
    numbers = {
        "attribution": method,
        "target": target,
        "class": name,
        "target_from": how,
        "probability": float(probs[target]),
        "map_max": float(heat.max()),
        "map_sum": float(heat.sum()),
    }
    return View(f"attribution_{method}", fig, numbers), heat


def u_view(
    inspected: Inspected,
    x: torch.Tensor,
    heat: torch.Tensor,
    target: int,
    window_fraction: float,
    order: str,
    fill: str,
    seed: int,
) -> View:
    """Interpretability (7.3.2), second component: U Analysis (thesis Alg. 4) of x for class ``target`` with the
    attribution ``heat`` (H, W) of the first component (patch side ``window_fraction`` of the image side, patches
    removed in ``order`` and filled with ``fill``, as ``analysis.*`` of U Analysis); the first U's images when one is
    found."""
    check_choice("order", order, ORDERS)
    check_choice("fill", fill, U_FILLS)
    check_class(target, inspected.classes)
    generator = torch.Generator().manual_seed(int(seed))
    mean = fill_mean(inspected.model, inspected.dataset)
    with inspected.lock:
        device = inspected.device
        r = u_analysis(
            inspected.model,
            x[None].to(device),
            torch.tensor([target], device=device),
            heat[None].to(device),
            window_fraction,
            order,
            fill,
            generator,
            mean,
        )
    predictions = r.predictions[0].tolist()
    triples = [list(t) for t in r.triples[0]]
    fig = _figure(8, 3.2 if triples else 2.0)
    grid = fig.subplots(2 if triples else 1, 1, squeeze=False, height_ratios=[1, 2] if triples else [1])[:, 0]
    steps = np.arange(len(predictions))
    correct = np.array(predictions) == target
    grid[0].scatter(steps[correct], np.ones(correct.sum()), s=8, color="tab:green", label=f"predicts {target}")
    grid[0].scatter(steps[~correct], np.zeros((~correct).sum()), s=8, color="tab:red", label="another class")
    grid[0].set_yticks([0, 1], ["wrong", "correct"])
    grid[0].set_xlabel(f"patches removed ({order}, {fill}, {r.size} px patches)", fontsize=8)
    grid[0].tick_params(labelsize=7)
    if triples:
        grid[1].axis("off")
        shown = sequence_images(x[None], r.fill.cpu(), r.order.cpu(), r.size, 0, triples[0])
        for k, (image, step) in enumerate(zip(shown, triples[0])):
            ax = grid[1].inset_axes([k / 3 + 0.02, 0, 0.3, 1])
            _image(ax, image, f"x_{step}: {inspected.classes[predictions[step]]}")
    numbers = {
        "target": target,
        "class": inspected.classes[target],
        "window_fraction": window_fraction,
        "order": order,
        "fill": fill,
        "seed": seed,
        "patch_size": r.size,
        "patches": int(r.order.shape[1]),
        "predictions": predictions,
        "has_u": bool(r.has_u[0]),
        "triples": triples,
    }
    return View("u_analysis", fig, numbers)


def signal_context(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The signal only (context black) and the context only (signal black), as IN-9's only_fg and no_fg."""
    m = mask[None].to(x.dtype)
    return x * m, x * (1 - m)


def signal_view(inspected: Inspected, x: torch.Tensor, mask: torch.Tensor, k: int = TOP_K) -> View:
    """Signal (7.3.3): the top-k classes of the image, of its signal only and of its context only."""
    signal, context = signal_context(x, mask)
    probs = probabilities(inspected, torch.stack([x, signal, context]))
    ranked = {name: top_k(p, inspected.classes, k) for name, p in zip(("image", "signal", "context"), probs)}
    fig = _figure(9, 4.2)
    axes = fig.subplots(2, 3, height_ratios=[3, 2])
    for column, (name, image) in enumerate((("image", x), ("signal only", signal), ("context only", context))):
        _image(axes[0, column], image, name)
        _bars(axes[1, column], list(ranked.values())[column], f"{name}: top classes")
    numbers = {**ranked, "signal_pixels": int(mask.sum()), "pixels": int(mask.numel())}
    return View("signal", fig, numbers)


def snr_view(
    inspected: Inspected, x: torch.Tensor, mask: torch.Tensor, methods: list[str], chosen: int | None = None
) -> View:
    """Signal (7.3.3): SNR = mean attribution on the signal / mean on the context (thesis 4.2.7) per method."""
    if not methods:
        raise RRXError(f"choose at least one attribution; known: {', '.join(attribution_names())}")
    target, how = target_class(inspected, x, chosen)
    ratios = {}
    for method in methods:
        heat = explain_one(inspected, x, target, method)
        ratio = float(signal_to_noise(heat[None], mask[None, None].float())[0])
        ratios[method] = None if math.isnan(ratio) else ratio  # undefined: no attribution on the context
    fig = _figure(5, 2.8)
    ax = fig.subplots()
    ax.bar(list(ratios), [0 if v is None else v for v in ratios.values()], color="tab:purple")
    ax.axhline(1.0, color="gray", linestyle="--", linewidth=1)
    ax.set_ylabel("SNR (signal / context)")
    ax.set_title(f"class {target}: {inspected.classes[target]} ({how}); SNR > 1: the signal matters more", fontsize=8)
    ax.tick_params(labelsize=7)
    numbers = {"target": target, "class": inspected.classes[target], "target_from": how, "snr": ratios}
    return View("snr", fig, numbers)


def background_view(
    inspected: Inspected, x: torch.Tensor, mask: torch.Tensor, values: dict[str, float], seed: int
) -> View:
    """Signal (7.3.3): every texture transform applied to the background only (the signal kept), with the top-1
    class and the probability of the original prediction."""
    missing = [name for name in TEXTURES if name not in values]
    if missing:
        raise RRXError(f"background transforms need a value for {', '.join(missing)}")
    m = mask[None].to(x.dtype)
    images = [x] + [paste(x, m, apply_transform(name, x, values[name], seed)) for name in TEXTURES]
    probs = probabilities(inspected, torch.stack(images))
    original = int(probs[0].argmax())
    rows = []
    for name, p in zip(("original", *TEXTURES), probs):
        c = int(p.argmax())
        rows.append(
            {
                "transform": name,
                "value": values.get(name),
                "top1": c,
                "class": inspected.classes[c],
                "probability": float(p[c]),
                "original_class_probability": float(p[original]),
            }
        )
    fig = _figure(10, 2.6)
    for ax, image, row in zip(fig.subplots(1, len(images)), images, rows):
        label = TRANSFORMS[row["transform"]].label if row["transform"] in TRANSFORMS else "original"
        _image(ax, image, f"{label}\n{row['class']} ({row['probability']:.2f})")
    numbers = {"seed": seed, "original_class": original, "rows": rows}
    return View("background", fig, numbers)
