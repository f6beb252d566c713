"""No attack: training and evaluation on clean inputs."""

from rrx.attacks import register_attack


@register_attack("none")
class NoAttack:
    """Returns the input unchanged."""

    def __init__(self, cfg):
        pass

    def perturb(self, model, x, y):
        return x
