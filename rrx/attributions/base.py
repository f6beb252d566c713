"""The contract every attribution method implements (captum's ``attribute``), and their registry."""

from __future__ import annotations

import torch

from rrx.errors import RRXError
from rrx.registry import Registry

# ordered: the consumers' lists of known names follow the order rrx.attributions imports the methods
ATTRIBUTIONS = Registry("attribution", "rrx.attributions", ordered=True)


def register_attribution(name: str):
    """Class decorator: register an ``Attribution`` subclass under ``name``, which becomes its ``name``."""

    def add(cls: type[Attribution]) -> type[Attribution]:
        cls.name = name
        ATTRIBUTIONS.register(name)(cls)  # registers cls itself
        return cls

    return add


class Attribution:
    """One attribution method: ``attribute(model, x, y, signed=False)`` gives the (B, H, W) map of classes y.

    A subclass implements ``compute`` and declares what it is and what it needs, which consumers read to keep the
    methods they can use (``rrx.attributions.attribution_names(accepts)``):

    - ``display_name`` (str): the name of tables and figures.
    - ``needs_gradients`` (bool): it backpropagates through the model, which must be differentiable in its input
      (every method but IPHA's search, which only runs forward passes and so takes any black box).
    - ``needs_feature_grid`` (bool): it reads a spatial feature map, ``model.cam_layer()`` and
      ``model.feature_grid(features)`` as ``rrx.models.Classifier`` and the segmenter's ``ForegroundScore`` give
      them (Grad-CAM).
    - ``needs_classes`` (bool): it scores the softmax probability of the class among the model's outputs, so a
      one-output model (segmentation's ``ForegroundScore``) leaves it nothing to compare (IPHA).
    - ``per_channel`` (bool): the map is the channel sum of a per-pixel input attribution A (B, C, H, W),
      sum_c |A_c| or sum_c A_c, the a(p) of the SNR challenge (thesis 4.2.7); not Grad-CAM's upsampled feature-grid
      map, guided Grad-CAM's product with it or IPHA's binary mask.

    Settings (Integrated Gradients' steps, IPHA's budget) are keyword arguments of the constructor, each with the
    default ``attribution_map`` uses.
    """

    name: str = ""
    display_name: str = ""
    needs_gradients = True
    needs_feature_grid = False
    needs_classes = False
    per_channel = False

    def attribute(self, model, x: torch.Tensor, y: torch.Tensor, signed: bool = False) -> torch.Tensor:
        """(B, H, W) detached attribution of classes y (B,) for images x (B, C, H, W): the non-negative form, or the
        signed one with ``signed`` (the same for the methods that have no sign)."""
        if self.needs_feature_grid and not (hasattr(model, "cam_layer") and hasattr(model, "feature_grid")):
            raise RRXError(
                f"attribution {self.name} needs a model with a feature grid (cam_layer and feature_grid, "
                f"as rrx.models.Classifier gives); {type(model).__name__} has none"
            )
        return self.compute(model, x, y, signed)

    def compute(self, model, x: torch.Tensor, y: torch.Tensor, signed: bool) -> torch.Tensor:
        raise NotImplementedError


class ChannelAttribution(Attribution):
    """A method with a per-channel attribution A (B, C, H, W) of the input (``channels``), summed over channels:
    sum_c |A_c|, or sum_c A_c with ``signed``."""

    per_channel = True

    def channels(self, model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """A (B, C, H, W) of classes y for images x, which require grad."""
        raise NotImplementedError

    def compute(self, model, x: torch.Tensor, y: torch.Tensor, signed: bool) -> torch.Tensor:
        maps = self.channels(model, x.detach().requires_grad_(True), y)
        return (maps if signed else maps.abs()).sum(1).detach()  # (B, H, W)
