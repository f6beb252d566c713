"""Challenges (config group ``challenge``): ``create_challenge(cfg)`` by ``cfg.name``.

Every challenge implements ``evaluate(model, dataset, runtime) -> dict`` of results.
"""

from rrx.registry import Registry

CHALLENGES = Registry("challenge", __name__)
register_challenge = CHALLENGES.register


def create_challenge(cfg):
    return CHALLENGES.get(cfg.name)(cfg)


def list_challenges() -> list[str]:
    return CHALLENGES.names()

