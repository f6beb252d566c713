"""The input-gradient methods, through captum: saliency, input x gradient and Integrated Gradients.

captum is imported where a map is computed: ``captum.attr`` brings matplotlib with it.
"""

from __future__ import annotations

import torch

from rrx.attributions.base import ChannelAttribution, register_attribution


@register_attribution("saliency")
class Saliency(ChannelAttribution):
    """Vanilla gradient, sum_c |d y / d x_c| (Simonyan et al. 2014; thesis Eq. 3.2), captum's ``Saliency``.

    Saliency is the absolute gradient: its signed form is the same map.
    """

    display_name = "Vanilla Gradient"

    def channels(self, model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        from captum import attr

        return attr.Saliency(model).attribute(x, target=y, abs=True)


@register_attribution("input_x_gradient")
class InputXGradient(ChannelAttribution):
    """Input x gradient, x_c d y / d x_c per channel (Shrikumar et al. 2016), captum's ``InputXGradient``."""

    display_name = "Input × Gradient"

    def channels(self, model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        from captum import attr

        return attr.InputXGradient(model).attribute(x, target=y)


@register_attribution("integrated_gradients")
class IntegratedGradients(ChannelAttribution):
    """Integrated Gradients (Sundararajan et al. 2017), captum's ``IntegratedGradients``: the signed map sums to
    y(x) - y(baseline) (completeness).

    Args:
        baseline (Tensor, optional): (B, C, H, W) the path starts from. Default: None, the all-zero image.
        steps (int, optional): integration steps (captum's ``n_steps``), all images of a batch in one pass per step.
            Default: 50.
    """

    display_name = "Integrated Gradients"

    def __init__(self, baseline: torch.Tensor | None = None, steps: int = 50):
        self.baseline, self.steps = baseline, steps

    def channels(self, model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        from captum import attr

        baseline = torch.zeros_like(x) if self.baseline is None else self.baseline
        return attr.IntegratedGradients(model).attribute(
            x, baselines=baseline, target=y, n_steps=self.steps, internal_batch_size=len(x)
        )
