"""Balanced ERM: cross-entropy on a training set resampled each epoch so that every group (``by=group``: (object
class, background class), ``rrx.methods.groups``) or every class (``by=class``) is drawn equally often, the
spurious-correlation literature's simplest baseline (Idrissi et al. 2022, "Simple data balancing achieves
competitive worst-group-accuracy": SUBG's sampling with replacement).

Each epoch draws N indices (N the training set's size) with replacement, image i with probability proportional to
1 / n_{g(i)}, n_g the size of its group, from a generator seeded by (``seed``, epoch), so a resumed run draws the
same epoch again.
"""

from __future__ import annotations

from collections.abc import Sized
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch.utils.data import Subset

from rrx.config import param
from rrx.data.base import labels_of
from rrx.errors import RRXError
from rrx.methods import register_method
from rrx.methods.base import Method
from rrx.methods.groups import GroupsConfig, grouped_name


def balanced_indices(groups: list[int], n: int, generator: torch.Generator) -> torch.Tensor:
    """(n,) indices drawn with replacement, each item with probability 1 / (G * n_{g(i)}): every group equally."""
    ids = torch.tensor(groups)
    counts = torch.bincount(ids).float()
    weights = 1.0 / counts[ids]
    return torch.multinomial(weights, n, replacement=True, generator=generator)


@dataclass
class BalancedConfig(GroupsConfig):
    """cross-entropy on a training set resampled each epoch so that every group (or class) is drawn equally often"""

    name: str = param("balanced", "the registered name of the method")
    by: str = param("group", "what is balanced: group ((object, background) pairs) | class", choices=("group", "class"))
    seed: int = param(0, "the seed of the epochs' draws (each epoch: seed and epoch)")


@register_method("balanced", config=BalancedConfig)
class Balanced(Method):
    def __init__(self, cfg):
        super().__init__(cfg)
        self.by, self.seed = cfg.by, int(cfg.seed)
        self.needs_groups = self.by == "group"
        if self.by == "class" and cfg.groups != "pair":
            raise RRXError(f"method.groups={cfg.groups} changes nothing with method.by=class; drop method.groups")
        self.display_name = grouped_name("Balanced ERM", cfg) if self.by == "group" else "Class-balanced ERM"
        self.groups: list[int] | None = None
        self.epoch = 0

    def set_groups(self, groups: list[int], names: list[list[str]]) -> None:
        self.groups = groups

    def _drawn(self, base) -> Subset:
        if self.groups is None:  # by=class: the classes are the groups
            self.groups = labels_of(base)
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return Subset(base, balanced_indices(self.groups, len(cast(Sized, base)), generator).tolist())

    def training_set(self, epoch: int, base, model, runtime):
        self.epoch = epoch
        return self._drawn(base)

    def current_set(self, base):
        return self._drawn(base) if self.epoch else None

    def state_dict(self) -> dict:
        return {"balanced_epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.epoch = int(state.get("balanced_epoch", 0))

    def loss(self, model, x, y, mask, groups=None):
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        return loss, {"ce": loss.detach(), "logits": logits.detach()}
