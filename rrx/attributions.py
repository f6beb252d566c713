"""Attribution maps of a target class, shared by ADA (thesis Eq. 3.2), the SNR challenge (thesis 4.2.7) and the analyses.

Every map is (B, H, W). By default it is non-negative: the absolute attribution summed over channels (captum for
the gradient methods; Grad-CAM on the model's feature grid), or IPHA's binary mask of the important pixels (thesis
7.2, ``rrx.analyses.ipha``; the thesis's "methods combination" with ADA, 8.2). ``signed=True`` gives the signed
form instead, for metrics that read positive and negative relevance apart (Focus, seed 004 Eq. 1).
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
                    generator: torch.Generator | None = None, signed: bool = False) -> torch.Tensor:
    """(B, H, W) attribution of class ``y``, summed over channels: non-negative, or signed with ``signed``.

    Args:
        method (str): saliency, input_x_gradient, guided_backprop, gradcam, guided_gradcam, integrated_gradients
            (from ``baseline``, zeros when None, in ``steps`` steps), or ipha: the hill-climbing mask of important
            pixels, 1 kept / 0 removed (``ipha_iterations`` x ``ipha_neighbours`` scored candidates per image,
            C = ``ipha_constant``, the ``mean`` constant read from the model's ``mean``; random draws from the CPU
            ``generator``).
        signed (bool, optional): the signed map instead of the non-negative one. Default: False, the non-negative
            maps ADA, the SNR challenge, localisation, ObEy and the inspector read.

    The two forms of each method, with A_c the captum attribution of channel c (B, C, H, W):

    ============================  ==============================  ==========================================
    method                        default (non-negative)          ``signed=True``
    ============================  ==============================  ==========================================
    saliency                      sum_c |d y / d x_c|             the same: saliency is |gradient| (Simonyan
                                                                  et al. 2014), it has no sign
    input_x_gradient              sum_c |x_c d y / d x_c|         sum_c x_c d y / d x_c
    integrated_gradients          sum_c |IG_c|                    sum_c IG_c (completeness: the map sums to
                                                                  y(x) - y(baseline))
    guided_backprop               sum_c |GB_c|                    sum_c GB_c
    gradcam                       ReLU(sum_k a_k A^k), upsampled  the same (non-negative after its ReLU)
    guided_gradcam                sum_c |GB_c| x Grad-CAM         sum_c GB_c x Grad-CAM (Grad-CAM >= 0: the
                                                                  sign is guided backprop's)
    ipha                          the binary mask                 the same
    ============================  ==============================  ==========================================

    Example: ``attribution_map(model, x, y, "integrated_gradients", signed=True)`` with x (B, 3, H, W) and y (B,)
    gives (B, H, W), its positive part the relevance Focus sums.
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
        maps = InputXGradient(model).attribute(x, target=y)
    elif method == "integrated_gradients":
        baseline = torch.zeros_like(x) if baseline is None else baseline
        maps = IntegratedGradients(model).attribute(x, baselines=baseline, target=y, n_steps=steps, internal_batch_size=len(x))
    else:  # guided_backprop, guided_gradcam
        maps = GuidedBackprop(model).attribute(x, target=y)
    maps = (maps if signed else maps.abs()).sum(1).detach()  # (B, H, W)
    return maps * grad_cam(model, x, y) if method == "guided_gradcam" else maps
