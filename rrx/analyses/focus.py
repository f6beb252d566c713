"""Focus (Arias-Duart et al., seed 004): how much of an explanation of a mosaic falls on its target-class images.

A mosaic is a 2 x 2 grid of test images (never training images): two of the target class and two of other
classes, at random positions (§3.3). Quadrants are numbered 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right.
Focus(m) = positive relevance in the target quadrants / all positive relevance of the mosaic (§3.4, Eqs. 1-2), read
from the signed attribution (``rrx.attributions.attribution_map(..., signed=True)``): negative relevance is left out,
not counted as its absolute value. A class-agnostic explanation scores about 0.5. ``rrx analyze analysis=focus`` runs
it (``Focus``), with the sanity checks of §4 on randomised copies of the model: every layer re-initialised
(``randomised_copy``) or the layers re-initialised one by one from the output down (``cascading_copies``).
"""

from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm import trange

from rrx.analyses import register_analysis
from rrx.analyses.common import (
    ATTRIBUTIONS_HELP,
    AnalysisConfig,
    attribution_list,
    batches,
    entries,
    explain,
    frame,
    holding,
    pct,
    summary,
)
from rrx.config import param
from rrx.errors import RRXError, check_choice
from rrx.record import Record
from rrx.tables import Table, thesis_order

RANDOMISE = ("none", "full", "cascading")  # analysis.randomise: the model-randomisation sanity check (§4)


def mosaic_plan(
    labels: np.ndarray, per_class: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``per_class`` mosaics per class: (members (M, 4) image indices by quadrant, target (M,), flags (M, 4) bool,
    True on the target-class quadrants). Two distinct target images, two distinct images of other classes."""
    labels = np.asarray(labels)
    classes = np.unique(labels)
    if len(classes) < 2:
        raise RRXError(f"Focus needs images of at least two classes; the data has {len(classes)}")
    members, targets, flags = [], [], []
    for c in classes:
        own, other = np.flatnonzero(labels == c), np.flatnonzero(labels != c)
        if len(own) < 2 or len(other) < 2:
            raise RRXError(
                f"Focus: class {c} has {len(own)} image(s) and the others {len(other)}; a mosaic needs 2 and 2"
            )
        for _ in range(per_class):
            images = np.concatenate([rng.choice(own, 2, replace=False), rng.choice(other, 2, replace=False)])
            is_target = np.array([True, True, False, False])
            order = rng.permutation(4)
            members.append(images[order])
            flags.append(is_target[order])
            targets.append(c)
    return np.stack(members), np.asarray(targets), np.stack(flags)


def build_mosaics(images: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
    """(M, C, 2H, 2W) mosaics from images (N, C, H, W) and the quadrant members (M, 4), on the images' device."""
    q = images[members]  # (M, 4, C, H, W)
    top = torch.cat([q[:, 0], q[:, 1]], dim=-1)
    bottom = torch.cat([q[:, 2], q[:, 3]], dim=-1)
    return torch.cat([top, bottom], dim=-2)


def focus(maps: torch.Tensor, flags: torch.Tensor) -> torch.Tensor:
    """Focus (Arias-Duart et al. 2022, seed 004) of relevance maps of 2 x 2 mosaics: the share of the positive
    relevance that lies on the quadrants of the target class.

    Eq. 1: R_m^+ = sum_i g(r_i), g(x) = x if x > 0 else 0; Eq. 2: Focus = (R_m^+(img_1) + R_m^+(img_2)) / R_m^+, with
    img_1, img_2 the target-class quadrants and R_m^+ the sum over all four ("for XAI methods providing both positive
    and negative relevance, only the positive relevance is used").

    Args:
        maps (Tensor): signed relevance of M mosaics, (M, 2H, 2W), or (M, C, 2H, 2W) summed over C first.
        flags (Tensor): (M, 4) 1 on each target-class quadrant, in the order top left, top right, bottom left,
            bottom right.

    Returns:
        Tensor (M,): Focus in [0, 1]; NaN where a map has no positive relevance.
    """
    if maps.ndim == 4:
        maps = maps.sum(1)
    positive = maps.float().clamp(min=0)  # g(r_i) of Eq. 1
    h, w = positive.shape[-2] // 2, positive.shape[-1] // 2
    quadrants = torch.stack(
        [
            positive[:, :h, :w].sum((1, 2)),
            positive[:, :h, w:].sum((1, 2)),
            positive[:, h:, :w].sum((1, 2)),
            positive[:, h:, w:].sum((1, 2)),
        ],
        dim=1,
    )
    total = positive.sum((1, 2))
    score = (quadrants * flags.float()).sum(1) / total
    return torch.where(total > 0, score, torch.full_like(score, float("nan")))


def randomise_choice(value) -> str:
    """A randomisation as one of ``RANDOMISE``; ``True`` / ``False`` / ``None`` (an older rrx's configs; a config takes
    today's names only) are ``full`` / ``none`` / ``none``."""
    if value is None or isinstance(value, bool):
        return "full" if value else "none"
    check_choice("analysis.randomise", value, RANDOMISE)
    return value


def reinitialisable_layers(model: torch.nn.Module) -> list[str]:
    """The names of the layers a randomisation re-initialises, from the output down: every module other than the model
    with a ``reset_parameters`` and parameters or buffers of its own, in the reverse of their registration order
    (rrx's models register their layers in the order ``forward`` uses them)."""
    return [
        name
        for name, module in reversed(list(model.named_modules()))
        if module is not model
        and hasattr(module, "reset_parameters")
        and any(True for _ in (*module.parameters(recurse=False), *module.buffers(recurse=False)))
    ]


def randomised_copy(model: torch.nn.Module, seed: int, depth: int | None = None) -> torch.nn.Module:
    """A copy of ``model`` with its top ``depth`` layers of ``reinitialisable_layers`` re-initialised (every one when
    None): the cascading randomisation of Adebayo et al. (2018) stopped at ``depth``, or its end, the fully random
    model the Focus paper checks (§4.2). Seeded with ``seed`` and drawn in the same order at every depth, so a layer
    gets the same new weights at every depth that reaches it. Its explanations should score about 0.5."""
    copy = deepcopy(model).eval()
    modules = dict(copy.named_modules())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for name in reinitialisable_layers(copy)[:depth]:
            modules[name].reset_parameters()
    return copy


def cascading_copies(model: torch.nn.Module, seed: int):
    """The cascading randomisation (Adebayo et al. 2018; the Focus paper §4.2, "starting with only the top layer, and
    increasingly randomizing more layers one by one until obtaining a fully randomized model"): (layer, copy) for
    each layer of ``reinitialisable_layers`` from the output down, the copy with that layer and every one above it
    re-initialised. One copy at a time; the last is ``randomised_copy(model, seed)``."""
    for depth, layer in enumerate(reinitialisable_layers(model), start=1):
        yield layer, randomised_copy(model, seed, depth)


@dataclass
class FocusConfig(AnalysisConfig):
    """Focus (seed 004): share of positive relevance on the target-class quadrants of 2 x 2 mosaics of test images"""

    name: str = param("focus", "the registered name of the analysis")
    attribution: Any = param(["gradcam", "saliency", "integrated_gradients"], ATTRIBUTIONS_HELP)
    per_class: int = param(10, "mosaics per class (two images of the class, two of others, random positions)", low=1)
    randomise: str = param(
        "full",
        "sanity check (§4), also scored on a copy of the model: full (every layer re-initialised: about 0.5) "
        "| cascading (the layers re-initialised one by one from the output down, Focus after each step; the last "
        "is full) | none",
        choices=RANDOMISE,
    )
    mosaic_size: Optional[int] = param(
        None, "null: 2H x 2W; a side in pixels for models with a fixed input size (ViT: the image size)", low=1
    )
    max_images: Optional[int] = param(None, "the images the mosaics are drawn from; null: all", low=1)
    seed: int = param(0, "the mosaics' images and positions, and the randomised copies' weights", low=0)


@register_analysis("focus", config=FocusConfig)
class Focus:
    """Focus of each attribution in ``cfg.attribution`` on ``cfg.per_class`` mosaics per class built from the test
    images of ``cfg.variation`` (the test split: never training images), for the model and, by ``cfg.randomise``,
    for randomised copies of it: ``full`` every layer re-initialised, ``cascading`` the layers re-initialised one by
    one from the output down (one Focus per step, the last step the ``full`` copy), ``none`` neither.

    The images are held on the CPU; each chunk of ``trainer.batch_size`` mosaics is built on the device from its own
    quadrant images. A mosaic is 2H x 2W, or resized to ``cfg.mosaic_size`` for a model with a fixed input size (a
    ViT). The explained class is the mosaic's target class; the relevance is the positive part of the signed map.

    Results: ``{attribution: {"mosaics": M, "model" | "randomised": {"mean", "std", "n", "undefined"}, "cascading":
    [{"layers": k, "layer": name, "mean", "std", "n", "undefined"}, ...]}}``; ``randomised`` with ``full`` and
    ``cascading``, ``cascading`` (k = 1, 2, ... layers re-initialised, ``layer`` the last of them) with ``cascading``.
    """

    needs_masks = False
    keyed = ("attribution",)  # the settings its result keys name

    def __init__(self, cfg):
        self.attributions = attribution_list("analysis.attribution", cfg.attribution)
        self.per_class, self.randomise = int(cfg.per_class), randomise_choice(cfg.randomise)
        self.mosaic_size, self.seed, self.ig_steps = cfg.mosaic_size, int(cfg.seed), int(cfg.ig_steps)

    def run(self, model, data, dataset, runtime, out_dir) -> dict:
        parts = [(x.cpu(), y.cpu()) for x, y, _ in batches(data, runtime, "focus: images")]
        images = torch.cat([x for x, _ in parts])  # (N, C, H, W), kept on the CPU: only a chunk's quadrants move
        labels = torch.cat([y for _, y in parts])
        plan_arrays = mosaic_plan(labels.numpy(), self.per_class, np.random.default_rng(self.seed))
        members, targets, flags = (torch.as_tensor(a) for a in plan_arrays)
        self._check_input_size(model, self._mosaics(images, members[:1], runtime.device))
        plan = images, members, targets, flags, runtime  # what every Focus of this run reads
        results: dict[str, dict[str, Any]] = {
            name: {"mosaics": len(members), "model": self._focus(model, name, "model", *plan)}
            for name in self.attributions
        }
        if self.randomise == "full":
            copy = randomised_copy(model, self.seed)
            for name in self.attributions:
                results[name]["randomised"] = self._focus(copy, name, "randomised", *plan)
        elif self.randomise == "cascading":
            for depth, (layer, copy) in enumerate(cascading_copies(model, self.seed), start=1):
                for name in self.attributions:
                    step = {"layers": depth, "layer": layer, **self._focus(copy, name, f"down to {layer}", *plan)}
                    results[name].setdefault("cascading", []).append(step)
            for name in self.attributions:  # the last step re-initialised every layer: the full randomisation
                results[name]["randomised"] = {
                    k: v for k, v in results[name]["cascading"][-1].items() if k not in ("layers", "layer")
                }
        return results

    def _focus(self, model, name: str, which: str, images, members, targets, flags, runtime) -> dict:
        """The summary of the Focus of attribution ``name`` of ``model`` on every mosaic, chunk by chunk."""
        scores = []
        for start in trange(
            0,
            len(members),
            runtime.batch_size,
            desc=f"focus {name} ({which})",
            leave=False,
            disable=not runtime.progress,
        ):
            chunk = slice(start, start + runtime.batch_size)
            mosaics = self._mosaics(images, members[chunk], runtime.device)
            target, flag = targets[chunk].to(runtime.device), flags[chunk].to(runtime.device)
            scores += focus(explain(model, mosaics, target, name, self.ig_steps, signed=True), flag).tolist()
        return summary(scores)

    def _mosaics(self, images: torch.Tensor, members: torch.Tensor, device) -> torch.Tensor:
        """The mosaics of ``members`` (M, 4), built on ``device`` from the quadrant images,
        resized to ``mosaic_size``."""
        used = members.unique()  # the chunk's images, sorted
        mosaics = build_mosaics(images[used].to(device), torch.searchsorted(used, members).to(device))
        if not self.mosaic_size:
            return mosaics
        # area averaging: at a whole-number factor no pixel mixes two quadrants
        return F.interpolate(mosaics, size=int(self.mosaic_size), mode="area")

    @torch.no_grad()
    def _check_input_size(self, model, mosaic: torch.Tensor) -> None:
        """One clear error, before any work, for a model that cannot take the mosaics' size (a ViT built for H x W)."""
        try:
            model(mosaic)
        except torch.cuda.OutOfMemoryError:
            raise
        except (AssertionError, RuntimeError, ValueError) as err:
            raise RRXError(
                f"the model cannot take {mosaic.shape[-2]} x {mosaic.shape[-1]} px mosaics "
                f"({str(err).strip().splitlines()[0]}); set analysis.mosaic_size to its input size"
            ) from err


# --- tables and figures (rrx report, and the run's folder) ---------------------------------------------------------
def table_focus(runs: list[Record]) -> pd.DataFrame:
    """Focus of the model and of its randomised copy per attribution, percent (50 is class-agnostic); after a
    cascading randomisation one column per step, "Cascade to <layer>": the Focus with that layer and every layer
    above it re-initialised."""
    return frame(
        [
            row
            | {
                "Attribution": key,
                "Focus": pct(r["model"]),
                "Focus std": 100 * r["model"]["std"],
                "Randomised": pct(r.get("randomised")),
            }
            | {f"Cascade to {step['layer']}": pct(step) for step in r.get("cascading", [])}
            | {"Mosaics": r["mosaics"]}
            for row, key, r in entries(runs, "focus")
        ]
    )


TABLES = [
    Table(
        "focus",
        "Focus on 2 x 2 mosaics (seed 004), percent; about 50 for a class-agnostic explanation",
        lambda runs: thesis_order(table_focus(runs)),
        holding("focus"),
        102,
        mark_best=False,
    )
]
