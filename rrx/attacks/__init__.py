"""Attacks (config group ``attack``): ``create_attack(cfg)`` by ``cfg.name``.

Every attack implements ``perturb(model, x, y) -> x_adv`` on [0, 1] images.
"""

from __future__ import annotations

from dataclasses import dataclass

from rrx.config import ComponentConfig, param
from rrx.registry import Registry

ATTACKS = Registry("attack", __name__)
register_attack = ATTACKS.register


@dataclass
class AttackConfig(ComponentConfig):
    """what every attack has: its name in the tables and how training mixes clean and attacked inputs"""

    display_name: str | None = param(None, "the attack's name in the tables (null: clean inputs)")
    mix: float | None = param(
        None,
        "null: train on x_adv only; a number alpha: alpha * L(x) + (1 - alpha) * L(x_adv) (thesis Eq. 2.5)",
        low=0.0,
        high=1.0,
    )


def create_attack(cfg):
    """The attack ``cfg.name`` for ``cfg`` (a composed ``attack`` config or a dict of some of its keys), after its
    keys are checked (``rrx.config.typed``)."""
    from rrx.config import typed

    factory = ATTACKS.get(cfg["name"])
    return factory(typed("attack", cfg))


def list_attacks() -> list[str]:
    return ATTACKS.names()
