r"""Attribution maps of a target class (config values such as ``method.attribution``): one class per method,
registered by name, shared by ADA (thesis Eq. 3.2), segmentation ADA, the SNR challenge (thesis 4.2.7), the analyses,
the inspector and the report.

Every method implements one call, ``attribute(model, x, y, signed=False)`` -> (B, H, W) (``base.Attribution``),
and declares its display name and what it needs (input gradients, a feature grid, several classes), from which a
consumer keeps the methods it can use: ``attribution_names(accepts)``, ``check_attribution(key, name, accepts)``.
By default a map is non-negative: the absolute attribution summed over channels (captum for the gradient
methods; Grad-CAM on the model's feature grid), or IPHA's binary mask of the important pixels (thesis 7.2; the
thesis's "methods combination" with ADA, 8.2). ``signed=True`` gives the signed form instead, for metrics that
read positive and negative relevance apart (Focus, seed 004 Eq. 1). With A_c the attribution of channel c
(B, C, H, W):

| method | default (non-negative) | ``signed=True`` |
| --- | --- | --- |
| saliency | sum_c \|d y / d x_c\| | the same: saliency is \|gradient\| (Simonyan et al. 2014), it has no sign |
| input_x_gradient | sum_c \|x_c d y / d x_c\| | sum_c x_c d y / d x_c |
| integrated_gradients | sum_c \|IG_c\| | sum_c IG_c (completeness: the map sums to y(x) - y(baseline)) |
| guided_backprop | sum_c \|GB_c\| | sum_c GB_c |
| gradcam | ReLU(sum_k a_k A^k), upsampled | the same (non-negative after its ReLU) |
| guided_gradcam | sum_c \|GB_c\| x Grad-CAM | sum_c GB_c x Grad-CAM (Grad-CAM >= 0: the sign is guided backprop's) |
| ipha | the binary mask | the same |
| ``captum:<ClassName>`` | sum_c \|A_c\| | sum_c A_c |

``captum:<ClassName>`` is any captum attribution of the input built from the model alone and called as
``attribute(x, target=y)`` with its defaults (``captum_method.CaptumMethod``), e.g. ``captum:Deconvolution``.

Example:
    >>> maps = attribution_map(model, x, y, "integrated_gradients", signed=True)  # x (B, 3, H, W), y (B,)
    >>> maps.shape  # (B, H, W), its positive part the relevance Focus sums
    >>> create_attribution("gradcam").attribute(model, x, y)  # the same call, one method
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import cast

import torch

# isort: off
# the order of these imports is the registry's order (ATTRIBUTIONS is ordered): the names in listings and errors
from rrx.attributions.base import ATTRIBUTIONS, Attribution, ChannelAttribution, register_attribution
from rrx.attributions.gradients import InputXGradient, IntegratedGradients, Saliency
from rrx.attributions.backprop import GuidedBackprop
from rrx.attributions.cam import GradCAM, GuidedGradCAM, grad_cam
from rrx.attributions.ipha import IPHASearch
from rrx.attributions.captum_method import CAPTUM, CaptumMethod

# isort: on
from rrx.errors import RRXError

__all__ = [
    "ATTRIBUTIONS",
    "Attribution",
    "ChannelAttribution",
    "register_attribution",
    "attribution_names",
    "create_attribution",
    "check_attribution",
    "display_name",
    "attribution_map",
    "grad_cam",
    "Saliency",
    "InputXGradient",
    "IntegratedGradients",
    "GuidedBackprop",
    "GradCAM",
    "GuidedGradCAM",
    "IPHASearch",
    "CaptumMethod",
]


def attribution_names(accepts: Callable[[type[Attribution] | Attribution], bool] | None = None) -> list[str]:
    """The registered names, in the order of the module docstring's table; with ``accepts``, those whose class it
    accepts (it reads the declared needs, e.g. ``lambda a: a.per_channel``)."""
    return [
        name
        for name in ATTRIBUTIONS.names()
        if accepts is None or accepts(cast(type[Attribution], ATTRIBUTIONS.get(name)))  # registered: the classes
    ]


def _unknown(key: str, name: str, known: list[str]) -> RRXError:
    return RRXError(f"{key}={name}; known: {', '.join(known)}, or {CAPTUM}<ClassName> (a captum.attr method)")


def create_attribution(name: str, **options) -> Attribution:
    """The attribution ``name`` (registered, or ``captum:<ClassName>``) with its settings from ``options``; options
    it does not take are left out, so one set serves every method (``attribution_map``'s)."""
    if name.startswith(CAPTUM):
        return CaptumMethod(name)
    if name not in ATTRIBUTIONS.names():
        raise _unknown("attribution", name, attribution_names())
    cls = ATTRIBUTIONS.get(name)
    takes = inspect.signature(cls).parameters
    return cls(**{key: value for key, value in options.items() if key in takes})


def check_attribution(
    key: str, name: str, accepts: Callable[[type[Attribution] | Attribution], bool] | None = None
) -> None:
    """Raise ``RRXError("<key>=<name>; known: ...")`` unless ``name`` is a registered name ``accepts`` keeps or a
    ``captum:<ClassName>`` it keeps (``accepts`` is given the method itself, whose needs follow its captum class);
    the message lists the names the consumer takes."""
    known = attribution_names(accepts)
    if name in known:
        return
    if isinstance(name, str) and name.startswith(CAPTUM):
        method = CaptumMethod(name)
        if accepts is None or accepts(method):
            return
    raise _unknown(key, name, known)


def display_name(name: str) -> str:
    """The name tables and figures give the attribution ``name``."""
    return create_attribution(name).display_name


def attribution_map(
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    method: str,
    baseline: torch.Tensor | None = None,
    steps: int = 50,
    ipha_iterations: int = 50,
    ipha_neighbours: int = 8,
    ipha_fill: str = "zeros",
    generator: torch.Generator | None = None,
    signed: bool = False,
) -> torch.Tensor:
    """(B, H, W) attribution of classes ``y`` (B,) for images x (B, C, H, W) by ``method``: non-negative, or signed
    with ``signed`` (the module docstring's table).

    Args:
        method (str): a registered name or ``captum:<ClassName>``.
        baseline, steps: Integrated Gradients' start image (zeros when None) and steps.
        ipha_iterations, ipha_neighbours, ipha_fill, generator: IPHA's search (``rrx.attributions.ipha``): the
            most steps, the candidates per image and step, C (one of ``rrx.attributions.ipha.IPHA_FILLS``), and the
            CPU generator of its random draws.
        signed (bool, optional): the signed map instead of the non-negative one. Default: False, the non-negative
            maps ADA, the SNR challenge, localisation, ObEy and the inspector read.

    The settings a method does not read are left out.
    """
    attribution = create_attribution(
        method,
        baseline=baseline,
        steps=steps,
        ipha_iterations=ipha_iterations,
        ipha_neighbours=ipha_neighbours,
        ipha_fill=ipha_fill,
        generator=generator,
    )
    return attribution.attribute(model, x, y, signed)
