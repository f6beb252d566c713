"""Challenges (config group ``challenge``): ``create_challenge(cfg)`` by ``cfg.name``.

Every challenge implements ``evaluate(model, dataset, runtime) -> dict`` of results and ``needs()``, the
(variation, masks) pairs it reads, and is registered with the dataclass of its keys (``rrx.config``); the options
that are one challenge with other values (``challenge=mixed_rand``: the background challenge on ``mixed_rand``
alone) are its presets.
"""

from rrx.registry import Registry

CHALLENGES = Registry("challenge", __name__)
register_challenge = CHALLENGES.register


def create_challenge(cfg):
    """The challenge ``cfg.name`` for ``cfg`` (a composed ``challenge`` config, or a dict or config of some of its
    keys: the others take their defaults), after the types, ranges and choices of its keys are checked
    (``rrx.config.typed``; a key it does not have is one RRXError)."""
    from rrx.config import typed

    challenge = CHALLENGES.get(cfg["name"])  # an unknown name lists the known ones
    return challenge(typed("challenge", cfg))


def list_challenges() -> list[str]:
    return CHALLENGES.names()


def check_variations(challenge, dataset, attack_name: str = "none") -> None:
    """List every variation (and mask folder) that ``challenge`` and the accuracy under attack will read, so a
    missing folder or a class mismatch stops the run before training or evaluating, not halfway through."""
    needs = list(challenge.needs())
    if attack_name != "none":
        needs.append(("original", False))
    # with masks first: a dataset that keeps what it read (the IN-9 layouts) then serves the same variation without
    # masks from it, instead of reading (and preloading) it twice
    for variation, masks in sorted(dict.fromkeys(needs), key=lambda need: not need[1]):
        dataset.variation_set(variation, masks=masks)
