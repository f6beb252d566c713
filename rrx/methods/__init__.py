"""Training methods (config group ``method``): ``create_method(cfg)`` by ``cfg.name``.

Every method implements ``loss(model, x, y, mask) -> (loss, logs)`` on a batch x (B, 3, H, W)
in [0, 1], labels y (B,) and object masks (B, 1, H, W) with 1 on the object.
"""

from rrx.registry import Registry

METHODS = Registry("method", __name__)
register_method = METHODS.register


def create_method(cfg):
    return METHODS.get(cfg.name)(cfg)


def list_methods() -> list[str]:
    return METHODS.names()
