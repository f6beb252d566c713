"""Deep Feature Reweighting (Kirichenko et al. 2023, "Last Layer Re-Training is Sufficient for Robustness to
Spurious Correlations", DFR^Val_Tr): train with ERM, then retrain only the last layer on a group-balanced held-out
set.

After ``trainer.epochs`` of cross-entropy, on the held-out training images (``trainer.val_fraction``; their groups
(object class, background class), ``rrx.methods.groups``), as the reference ``dfr_evaluate_spurious.py``:

1. embeddings z = the model's penultimate features (``forward_head(..., pre_logits=True)``), standardised by the
   held-out set's mean and standard deviation;
2. C is tuned: for each C in ``c_values``, an L1 logistic regression (liblinear, one-vs-rest) fit on a group-
   balanced subsample of one half of the held-out set (every group cut to the smallest group's size) is scored by
   its worst-group accuracy on the other half; the best C is kept (the largest of equals);
3. ``retrains`` such regressions with that C, each on a group-balanced subsample of the whole held-out set, are
   averaged (coefficients and intercepts), and replace the last layer: w' = w / sigma,
   b' = b - sum_d w_d mu_d / sigma_d.
"""

from __future__ import annotations

import logging
from collections.abc import Sized
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from torch import nn

from rrx.config import param
from rrx.errors import RRXError
from rrx.methods import register_method
from rrx.methods.groups import GroupsConfig, grouped_name
from rrx.methods.standard import Standard

log = logging.getLogger(__name__)
C_VALUES = [1.0, 0.7, 0.3, 0.1, 0.07, 0.03, 0.01]  # the reference's grid


def balanced_subset(groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of a group-balanced subsample: every group that occurs cut, at random, to the smallest group's size
    (sorted)."""
    present, counts = np.unique(groups, return_counts=True)
    smallest = int(counts.min())
    picks = [rng.choice(np.flatnonzero(groups == g), smallest, replace=False) for g in present]
    return np.sort(np.concatenate(picks))


def worst_group_accuracy(pred: np.ndarray, y: np.ndarray, groups: np.ndarray) -> float:
    """min over the groups present of the share of correct predictions."""
    return float(min((pred[groups == g] == y[groups == g]).mean() for g in np.unique(groups)))


def _l1() -> dict:
    """An L1 penalty as the installed scikit-learn spells it: ``l1_ratio=1`` from 1.8, ``penalty="l1"`` before."""
    import sklearn

    major, minor = (int(v) for v in sklearn.__version__.split(".")[:2])
    return {"l1_ratio": 1.0} if (major, minor) >= (1, 8) else {"penalty": "l1"}


def fit_last_layer(z, y, groups, c: float, retrains: int, rng: np.random.Generator, num_classes: int):
    """(coef (K, D), intercept (K,)): the mean of ``retrains`` L1 logistic regressions with C = ``c``, each on a
    balanced subsample of (z, y); rows of classes absent from a subsample stay 0 there, as in a K-class fit."""
    from sklearn.linear_model import LogisticRegression  # here: sklearn adds 0.8 s to every command's start
    from sklearn.multiclass import OneVsRestClassifier

    coef, intercept = np.zeros((num_classes, z.shape[1])), np.zeros(num_classes)
    for _ in range(retrains):
        keep = balanced_subset(groups, rng)
        rows = np.unique(y[keep]).astype(int)
        regression = LogisticRegression(C=c, solver="liblinear", **_l1())
        if len(rows) == 2:  # a binary fit has one row: the second class's score, the first's 0
            fit = regression.fit(z[keep], y[keep])
            coef[rows[1]] += fit.coef_[0]
            intercept[rows[1]] += fit.intercept_[0]
        else:  # one-vs-rest, as liblinear fits several classes
            fits = OneVsRestClassifier(regression).fit(z[keep], y[keep]).estimators_
            coef[rows] += np.vstack([f.coef_ for f in fits])
            intercept[rows] += np.concatenate([f.intercept_ for f in fits])
    return coef / retrains, intercept / retrains


def unstandardised(coef, intercept, mu, sigma) -> tuple[np.ndarray, np.ndarray]:
    """(w, b) with w z + b = coef (z - mu) / sigma + intercept for every z: w = coef / sigma,
    b = intercept - sum_d coef_d mu_d / sigma_d."""
    return coef / sigma, intercept - (coef * mu / sigma).sum(1)


def last_layer(net) -> nn.Linear:
    """The linear layer that maps the penultimate features to the logits: timm's ``get_classifier()`` or ``fc``."""
    backbone = getattr(net, "backbone", net)
    layer = backbone.get_classifier() if hasattr(backbone, "get_classifier") else getattr(backbone, "fc", None)
    if not isinstance(layer, nn.Linear):
        raise RRXError(f"method=dfr retrains the last layer, and {type(backbone).__name__} has no linear one")
    return layer


@torch.no_grad()
def embeddings(net, data, runtime) -> tuple[np.ndarray, np.ndarray]:
    """(z (N, D), y (N,)) of ``data``: the penultimate features in evaluation mode."""
    net.eval()
    zs, ys = [], []
    for x, y, *_ in runtime.loader(data, shuffle=False):
        zs.append(net.forward_head(net.forward_features(x.to(runtime.device)), pre_logits=True).float().cpu())
        ys.append(torch.as_tensor(y))
    return torch.cat(zs).numpy(), torch.cat(ys).numpy()


@dataclass
class DFRConfig(GroupsConfig):
    """Deep Feature Reweighting (Kirichenko et al. 2023): ERM, then the last layer retrained on a group-balanced
    held-out set"""

    name: str = param("dfr", "the registered name of the method")
    c_values: list[float] = param(C_VALUES, "the inverse L1 strengths C tuned on half of the held-out set", low=0)
    retrains: int = param(10, "logistic regressions averaged, each on a new balanced subsample", low=1)
    seed: int = param(0, "the seed of the balanced subsamples and the halves")


@register_method("dfr", config=DFRConfig, presets={"dfr_agree": DFRConfig(groups="agree")})
class DFR(Standard):
    display_name = "DFR"
    needs_held_out_groups = True

    def __init__(self, cfg):
        super().__init__(cfg)
        self.display_name = grouped_name(type(self).display_name, cfg)
        self.c_values, self.retrains, self.seed = [float(c) for c in cfg.c_values], int(cfg.retrains), int(cfg.seed)
        self.held_out = None
        self.report: dict | None = None

    def set_held_out(self, data, groups: list[int], names: list[list[str]]) -> None:
        self.held_out, self.held_out_groups = data, np.asarray(groups)

    def end_phase(self, name: str, model, base, runtime) -> None:
        if name != "train":
            return
        assert self.held_out is not None  # the task checked there is a held-out set (trainer.val_fraction)
        z, y = embeddings(model, self.held_out, runtime)
        groups, k = self.held_out_groups, last_layer(model).out_features
        mu, sigma = z.mean(0), z.std(0) + 1e-8
        z = (z - mu) / sigma
        rng = np.random.default_rng(self.seed)
        half = rng.permutation(len(y)) < len(y) // 2
        scores = {}
        for c in self.c_values:
            coef, intercept = fit_last_layer(z[half], y[half], groups[half], c, 1, rng, k)
            pred = (z[~half] @ coef.T + intercept).argmax(1)
            scores[c] = worst_group_accuracy(pred, y[~half], groups[~half])
        best = max(self.c_values, key=lambda c: (scores[c], c))
        coef, intercept = fit_last_layer(z, y, groups, best, self.retrains, rng, k)
        layer = last_layer(model)
        w, b = unstandardised(coef, intercept, mu, sigma)
        with torch.no_grad():
            layer.weight.copy_(torch.as_tensor(w, dtype=layer.weight.dtype))
            layer.bias.copy_(torch.as_tensor(b, dtype=layer.bias.dtype))
        self.report = {
            "held_out": int(len(y)),
            "val_accuracy_is_held_out": False,  # the held-out images fitted the last layer (DFR^Val_Tr)
            "balanced_per_group": int(np.unique(groups, return_counts=True)[1].min()),
            "c": best,
            "tuning_worst_group_accuracy": {f"{c:g}": s for c, s in scores.items()},
        }
        log.info(
            "DFR: the last layer retrained on %d held-out images (%d per group), C = %g (worst group %.2f%% on the "
            "tuning half)",
            len(cast(Sized, self.held_out)),
            self.report["balanced_per_group"],
            best,
            100 * scores[best],
        )

    def record(self) -> dict | None:
        return self.report
