"""Just Train Twice (Liu et al. 2021, "Just Train Twice: Improving Group Robustness without Training Group
Information", Algorithm 1): no group labels in training.

1. Identification: train an ERM model for T epochs (``identification_epochs``); its error set is
   E = {i : argmax f_id(x_i) != y_i} over the training images.
2. Upweighting: train again from the same initialisation (model and optimizer) on the training set with every
   image of E present lambda_up times (``upweight``; the reference upsamples, as here), for ``trainer.epochs``.

In one run these are three phases (``rrx.tasks.base.Phase``): ``init`` (no epoch: it keeps the initial model and
optimizer), ``identify`` (T epochs) and ``train``, which forks from ``init``. The error set is taken when
``identify`` ends, in evaluation mode on the training images as they are (no augmentation), and is kept with the
checkpoint. Like the reference, which trains at a constant learning rate, the run needs ``trainer.scheduler=none``:
one cosine schedule cannot restart with the second model.
"""

from __future__ import annotations

import logging
from collections.abc import Sized
from dataclasses import dataclass
from typing import cast

from torch.utils.data import ConcatDataset, Subset

from rrx.config import param
from rrx.methods import register_method
from rrx.methods.base import MethodConfig
from rrx.methods.standard import Standard

log = logging.getLogger(__name__)


def upsampled(base, errors: list[int], upweight: int):
    """``base`` with each item of ``errors`` present ``upweight`` times in all (once in ``base``, ``upweight - 1``
    copies after it)."""
    return ConcatDataset([base, *[Subset(base, errors) for _ in range(upweight - 1)]]) if errors else base


@dataclass
class JTTConfig(MethodConfig):
    """Just Train Twice (Liu et al. 2021): ERM for T epochs, then again from the start with its errors upweighted"""

    name: str = param("jtt", "the registered name of the method")
    identification_epochs: int = param(1, "T: the epochs of the ERM identification model", low=1)
    upweight: int = param(6, "lambda_up: how often each error of the identification model is in the data", low=1)


@register_method("jtt", config=JTTConfig)
class JTT(Standard):
    display_name = "JTT"

    def __init__(self, cfg):
        super().__init__(cfg)
        self.identification_epochs, self.upweight = int(cfg.identification_epochs), int(cfg.upweight)
        self.errors: list[int] | None = None
        self.given = False

    def phases(self, epochs: int) -> list:
        from rrx.tasks.base import FORK, Phase

        return [
            Phase("init", 0, label="initial model"),
            Phase("identify", self.identification_epochs, label="JTT identification"),
            Phase("train", epochs, label="JTT upweighted", start=FORK, fork_of="init"),
        ]

    def end_phase(self, name: str, model, base, runtime) -> None:
        if name != "identify":
            return
        from rrx.predictions import predict

        found = predict(model, runtime.loader(base, shuffle=False), runtime, desc="JTT error set")
        self.errors = (found["prediction"] != found["label"]).nonzero().flatten().tolist()
        log.info(
            "JTT: the identification model misclassifies %d of %d training images; each is seen %d times",
            len(self.errors),
            len(cast(Sized, base)),
            self.upweight,
        )

    def training_set(self, epoch: int, base, model, runtime):
        if self.errors is None or self.given:
            return None
        self.given = True
        return upsampled(base, self.errors, self.upweight)

    def current_set(self, base):
        return None if self.errors is None else upsampled(base, self.errors, self.upweight)

    def record(self) -> dict | None:
        if self.errors is None:
            return None
        return {
            "errors": len(self.errors),
            "upweight": self.upweight,
            "identification_epochs": self.identification_epochs,
        }

    def state_dict(self) -> dict:
        return {} if self.errors is None else {"jtt_errors": self.errors}

    def load_state_dict(self, state: dict) -> None:
        if "jtt_errors" in state:
            self.errors, self.given = list(state["jtt_errors"]), True
