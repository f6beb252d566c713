"""Attacks (config group ``attack``): ``create_attack(cfg)`` by ``cfg.name``.

Every attack implements ``perturb(model, x, y) -> x_adv`` on [0, 1] images.
"""

from rrx.registry import Registry

ATTACKS = Registry("attack", __name__)
register_attack = ATTACKS.register


def create_attack(cfg):
    return ATTACKS.get(cfg.name)(cfg)


def list_attacks() -> list[str]:
    return ATTACKS.names()
