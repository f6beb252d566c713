"""No attack: training and evaluation on clean inputs."""

from __future__ import annotations

from dataclasses import dataclass

from rrx.attacks import AttackConfig, register_attack
from rrx.config import param


@dataclass
class NoAttackConfig(AttackConfig):
    """clean inputs"""

    name: str = param("none", "the registered name of the attack")


@register_attack("none", config=NoAttackConfig)
class NoAttack:
    """Returns the input unchanged."""

    def __init__(self, cfg):
        pass

    def perturb(self, model, x, y):
        return x
