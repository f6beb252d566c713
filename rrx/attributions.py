"""Attribution maps of a target class, shared by ADA (thesis Eq. 3.2) and the SNR challenge (thesis 4.2.7).

Every map is (B, H, W) and non-negative: the absolute attribution summed over channels
(captum for the gradient methods; Grad-CAM on the model's feature grid), or IPHA's binary mask of the
important pixels (thesis 7.2, ``rrx.analyses.ipha``; the thesis's "methods combination" with ADA, 8.2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


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


def attribution_map(model, x: torch.Tensor, y: torch.Tensor, method: str, baseline: torch.Tensor | None = None,
                    steps: int = 50, ipha_iterations: int = 50, ipha_neighbours: int = 8, ipha_constant: str = "zero",
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, H, W) non-negative attribution of class ``y``, summed over channels.

    ``method``: saliency, input_x_gradient, guided_backprop, gradcam, guided_gradcam,
    integrated_gradients (from ``baseline``, zeros when None, in ``steps`` steps), or ipha: the hill-climbing
    mask of important pixels, 1 kept / 0 removed (``ipha_iterations`` x ``ipha_neighbours`` scored candidates
    per image, C = ``ipha_constant``, the ``mean`` constant read from the model's ``mean``; random draws from
    the CPU ``generator``).
    """
    if method == "ipha":
        from rrx.analyses.ipha import ipha  # imported here so that analyses may import this module

        mask, _, _ = ipha(model, x.detach(), y, ipha_constant, ipha_iterations, ipha_neighbours, generator,
                          getattr(model, "mean", None))  # (B, 1, H, W)
        return mask[:, 0]
    from captum.attr import GuidedBackprop, InputXGradient, IntegratedGradients, Saliency

    if method == "gradcam":
        return grad_cam(model, x, y)
    x = x.detach().requires_grad_(True)
    if method == "saliency":
        maps = Saliency(model).attribute(x, target=y, abs=True)  # |d y_c / dx|, Eq. 3.2
    elif method == "input_x_gradient":
        maps = InputXGradient(model).attribute(x, target=y).abs()
    elif method == "integrated_gradients":
        baseline = torch.zeros_like(x) if baseline is None else baseline
        maps = IntegratedGradients(model).attribute(x, baselines=baseline, target=y, n_steps=steps, internal_batch_size=len(x)).abs()
    else:  # guided_backprop, guided_gradcam
        maps = GuidedBackprop(model).attribute(x, target=y).abs()
    maps = maps.sum(1).detach()
    return maps * grad_cam(model, x, y) if method == "guided_gradcam" else maps
