"""``captum:<ClassName>``: any captum attribution method a user names, beside the registered ones."""

from __future__ import annotations

import inspect
from typing import Any, TypeGuard

import torch

from rrx.attributions.base import ChannelAttribution
from rrx.errors import RRXError

CAPTUM = "captum:"  # the prefix of these names


class CaptumMethod(ChannelAttribution):
    """captum's ``captum.attr.<ClassName>(model).attribute(x, target=y)`` with its defaults, summed over channels.

    The class must be one of captum's attributions of the input (not a layer or neuron attribution) that needs
    nothing but the model to be built and nothing but the inputs and the target to attribute: e.g.
    ``captum:Deconvolution``, ``captum:DeepLift``, ``captum:FeatureAblation``, ``captum:ShapleyValueSampling``
    (captum's perturbation methods draw from torch's global generator). Its needs follow its captum family:
    ``needs_gradients`` for captum's ``GradientAttribution``.

    Args:
        name (str): ``captum:<ClassName>``.
    """

    def __init__(self, name: str):
        from captum import attr

        method = getattr(attr, name.removeprefix(CAPTUM), None)
        if not _attributes_the_input(method, attr):
            raise RRXError(
                f"attribution {name}: captum.attr has no attribution of the input with that name that is "
                f"built from the model alone and called as attribute(x, target=y) (e.g. captum:Deconvolution)"
            )
        self.method, self.name, self.display_name = method, name, method.get_name()
        self.needs_gradients = issubclass(method, attr.GradientAttribution)

    def channels(self, model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.method(model).attribute(x, target=y)


def _attributes_the_input(method, attr) -> TypeGuard[type[Any]]:
    """Whether ``method`` is a captum attribution of the input, built from the model alone (every other constructor
    argument has a default) and called with the inputs and the target alone (likewise)."""
    if not (inspect.isclass(method) and issubclass(method, attr.Attribution)) or issubclass(
        method, (attr.LayerAttribution, attr.NeuronAttribution)
    ):
        return False
    attribute = getattr(method, "attribute", None)
    if not callable(attribute):  # the abstract families (Attribution, GradientAttribution)
        return False
    built = list(inspect.signature(method.__init__).parameters.values())[2:]  # after self and the model
    called = list(inspect.signature(attribute).parameters.values())[1:]  # after self
    if [p.name for p in called[:1]] != ["inputs"] or "target" not in [p.name for p in called]:
        return False
    return all(
        p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        for p in built + [p for p in called if p.name not in ("inputs", "target")]
    )
