"""Focus (Arias-Duart et al., seed 004): how much of an explanation of a mosaic falls on its target-class images.

A mosaic is a 2 x 2 grid of test images (never training images): two of the target class and two of other
classes, at random positions (§3.3). Quadrants are numbered 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right.
Focus(m) = positive relevance in the target quadrants / all positive relevance of the mosaic (§3.4, Eqs. 1-2).
A class-agnostic explanation scores about 0.5. ``rrx analyze analysis=focus`` runs it (``Focus``), with the sanity
check on a randomised copy of the model (``randomised_copy``).
"""

from __future__ import annotations

from copy import deepcopy

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import trange

from rrx.analyses import register_analysis
from rrx.analyses.common import attribution_list, batches, explain, summary
from rrx.errors import RRXError


def mosaic_plan(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
            raise RRXError(f"Focus: class {c} has {len(own)} image(s) and the others {len(other)}; a mosaic needs 2 and 2")
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
    """(M,) Focus of relevance maps (M, 2H, 2W) (or (M, C, 2H, 2W), summed) given the target quadrants (M, 4);
    NaN where a map has no positive relevance."""
    if maps.ndim == 4:
        maps = maps.sum(1)
    positive = maps.float().clamp(min=0)
    h, w = positive.shape[-2] // 2, positive.shape[-1] // 2
    quadrants = torch.stack([positive[:, :h, :w].sum((1, 2)), positive[:, :h, w:].sum((1, 2)),
                             positive[:, h:, :w].sum((1, 2)), positive[:, h:, w:].sum((1, 2))], dim=1)
    total = positive.sum((1, 2))
    score = (quadrants * flags.float()).sum(1) / total
    return torch.where(total > 0, score, torch.full_like(score, float("nan")))


def randomised_copy(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """A copy of ``model`` with every layer that can be re-initialised (``reset_parameters``) re-initialised, from the
    output layer down: the end of the cascading randomisation of Adebayo et al. (2018), the sanity check the Focus
    paper runs (§4.2). Its explanations should score about 0.5."""
    copy = deepcopy(model).eval()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in reversed(list(copy.modules())):
            if module is not copy and hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return copy


@register_analysis("focus")
class Focus:
    """Focus of each attribution in ``cfg.attribution`` on ``cfg.per_class`` mosaics per class built from the test
    images of ``cfg.variation`` (the test split: never training images), for the model and for its randomised copy.

    The images are held on the CPU; each chunk of ``trainer.batch_size`` mosaics is built on the device from its own
    quadrant images. A mosaic is 2H x 2W, or resized to ``cfg.mosaic_size`` for a model with a fixed input size (a
    ViT). The explained class is the mosaic's target class.

    Results: ``{attribution: {"model" | "randomised": {"mean", "std", "n", "undefined"}, "mosaics": M}}``.
    """

    needs_masks = False
    keyed = ("attribution",)  # the settings its result keys name

    def __init__(self, cfg):
        self.attributions = attribution_list("analysis.attribution", cfg.attribution)
        self.per_class, self.randomise = int(cfg.per_class), bool(cfg.randomise)
        self.mosaic_size, self.seed, self.ig_steps = cfg.get("mosaic_size"), int(cfg.seed), int(cfg.ig_steps)

    def run(self, model, data, dataset, runtime, out_dir) -> dict:
        parts = [(x.cpu(), y.cpu()) for x, y, _ in batches(data, runtime, "focus: images")]
        images = torch.cat([x for x, _ in parts])  # (N, C, H, W), kept on the CPU: only a chunk's quadrants move
        labels = torch.cat([y for _, y in parts])
        members, targets, flags = mosaic_plan(labels.numpy(), self.per_class, np.random.default_rng(self.seed))
        members, targets, flags = torch.as_tensor(members), torch.as_tensor(targets), torch.as_tensor(flags)
        self._check_input_size(model, self._mosaics(images, members[:1], runtime.device))
        models = {"model": model}
        if self.randomise:
            models["randomised"] = randomised_copy(model, self.seed)
        results = {name: {"mosaics": len(members)} for name in self.attributions}
        for name in self.attributions:
            for which, m in models.items():
                scores = []
                for start in trange(0, len(members), runtime.batch_size, desc=f"focus {name} ({which})", leave=False,
                                    disable=not runtime.progress):
                    chunk = slice(start, start + runtime.batch_size)
                    mosaics = self._mosaics(images, members[chunk], runtime.device)
                    target, flag = targets[chunk].to(runtime.device), flags[chunk].to(runtime.device)
                    scores += focus(explain(m, mosaics, target, name, self.ig_steps), flag).tolist()
                results[name][which] = summary(scores)
        return results

    def _mosaics(self, images: torch.Tensor, members: torch.Tensor, device) -> torch.Tensor:
        """The mosaics of ``members`` (M, 4), built on ``device`` from the quadrant images, resized to ``mosaic_size``."""
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
            raise RRXError(f"the model cannot take {mosaic.shape[-2]} x {mosaic.shape[-1]} px mosaics "
                           f"({str(err).strip().splitlines()[0]}); set analysis.mosaic_size to its input size") from err
