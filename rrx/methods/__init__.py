"""Training methods (config group ``method``): ``create_method(cfg)`` by ``cfg.name``.

Every method implements ``loss(model, x, y, mask) -> (loss, logs)`` on a batch x (B, 3, H, W)
in [0, 1], labels y (B,) and object masks (B, 1, H, W) with 1 on the object.
"""

from rrx.registry import Registry

METHODS = Registry("method", __name__)
register_method = METHODS.register


def create_method(cfg):
    """The method ``cfg.name`` for ``cfg`` (a composed ``method`` config, or a dict of some of its keys: the others
    take their defaults), after its keys are checked (``rrx.config.typed``)."""
    from rrx.config import typed

    factory = METHODS.get(cfg["name"])  # an unknown name lists the known ones
    return factory(typed("method", cfg))


def list_methods() -> list[str]:
    return METHODS.names()
