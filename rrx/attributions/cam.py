"""Grad-CAM (Selvaraju et al. 2017) on the model's feature grid, and guided Grad-CAM."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rrx.attributions.backprop import GuidedBackprop
from rrx.attributions.base import Attribution, register_attribution


def grad_cam(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Grad-CAM of class ``y`` at the model's feature grid, upsampled to (B, H, W).

    CNNs: the ``forward_features`` map. ViTs: the tokens of ``model.cam_layer()`` (the last block's first norm, as
    pytorch-grad-cam's ViT recipe), reshaped to the patch grid by ``model.feature_grid`` (prefix tokens dropped);
    the final tokens would not do, since a class-token head gives their patch tokens no gradient.
    """
    layer = model.cam_layer()
    if layer is None:
        features = model.forward_features(x)
        score = model.forward_head(features).gather(1, y[:, None]).sum()
    else:
        seen = []
        handle = layer.register_forward_hook(lambda module, args, out: seen.append(out))
        try:
            score = model(x).gather(1, y[:, None]).sum()
        finally:
            handle.remove()
        features = seen[-1]  # (B, N, C) tokens
    (grads,) = torch.autograd.grad(score, features)
    grid, grid_grads = model.feature_grid(features), model.feature_grid(grads)
    cam = F.relu((grid_grads.mean(dim=(2, 3), keepdim=True) * grid).sum(1, keepdim=True))
    return F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0].detach()


@register_attribution("gradcam")
class GradCAM(Attribution):
    """ReLU(sum_k a_k A^k) of the feature maps A^k weighted by their mean gradient a_k, upsampled bilinearly
    (``grad_cam``). Non-negative after its ReLU: the signed form is the same map."""

    display_name = "Grad-CAM"
    needs_feature_grid = True

    def compute(self, model, x: torch.Tensor, y: torch.Tensor, signed: bool) -> torch.Tensor:
        return grad_cam(model, x, y)


@register_attribution("guided_gradcam")
class GuidedGradCAM(GuidedBackprop):
    """Guided backprop times Grad-CAM, sum_c |GB_c| x Grad-CAM; signed, sum_c GB_c x Grad-CAM (Grad-CAM >= 0: the
    sign is guided backprop's)."""

    display_name = "Guided Grad-CAM"
    needs_feature_grid = True
    per_channel = False

    def compute(self, model, x: torch.Tensor, y: torch.Tensor, signed: bool) -> torch.Tensor:
        return super().compute(model, x, y, signed) * grad_cam(model, x, y)
