"""Guided backpropagation (Springenberg et al. 2015), through captum."""

from __future__ import annotations

import torch

from rrx.attributions.base import ChannelAttribution, register_attribution


@register_attribution("guided_backprop")
class GuidedBackprop(ChannelAttribution):
    """The input gradient with every ReLU passing back only positive gradients, captum's ``GuidedBackprop``."""

    display_name = "Guided Backprop"

    def channels(self, model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        from captum import attr

        return attr.GuidedBackprop(model).attribute(x, target=y)
