"""Expected Gradients attribution prior (Erion et al. 2021; a Table 10 row, thesis 5.2)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rrx.config import param
from rrx.methods import register_method
from rrx.methods.base import Method, PenaltyConfig
from rrx.methods.cdep import REGIONS, REGIONS_DEFAULT, penalty_regions


@dataclass
class EGConfig(PenaltyConfig):
    """Expected Gradients attribution prior (Erion et al. 2021): |EG| on the penalised regions"""

    name: str = param("eg", "the registered name of the method")
    lam: float | None = param(100.0, "weight of the EG penalty", low=0.0)
    samples: int = param(1, "references (from the batch) per image and step; Erion et al. train with 1", low=1)
    regions: str = param(REGIONS_DEFAULT, "context | pixels (as method=cdep); default: the dataset's", choices=REGIONS)
    num_pixels: int = param(8, "regions=pixels: how many single pixels are penalised", low=1)


def expected_gradients(
    model, x: torch.Tensor, y: torch.Tensor, samples: int = 1, create_graph: bool = False
) -> torch.Tensor:
    """Expected Gradients of the probability of class ``y``, (B, C, H, W):

    EG(x)_i = E_{x' ~ batch, a ~ U(0, 1)} [ (x_i - x'_i) * d p_y(x' + a (x - x')) / dx_i ]

    estimated with ``samples`` (reference x', a) pairs per image, the references drawn from the batch itself
    (as the reference code, CDEP's ``eg_scores_2d``, which differentiates the softmax probability). Integrated
    Gradients with the baseline averaged over the data; the same in pixel and normalised-input units.
    ``create_graph=True`` lets a penalty on it train.
    """
    b = x.shape[0]
    x = x.detach()
    refs = x[torch.randint(b, (samples * b,), device=x.device)]
    alpha = torch.rand(samples * b, 1, 1, 1, device=x.device, dtype=x.dtype)
    x_rep = x.repeat(samples, 1, 1, 1)
    points = (refs + alpha * (x_rep - refs)).requires_grad_(True)
    prob = F.softmax(model(points), dim=1).gather(1, y.repeat(samples)[:, None]).sum()
    (grad,) = torch.autograd.grad(prob, points, create_graph=create_graph)
    return ((x_rep - refs) * grad).view(samples, *x.shape).mean(dim=0)


@register_method("eg", config=EGConfig)
class ExpectedGradientsPenalty(Method):
    """Cross-entropy + lam * mean_b sum_d |EG(x_b)_d| * w_d, w the penalised regions summed (``cfg.regions``,
    as for CDEP: the context by default); ``cfg.samples`` references per image and step (Erion et al.: 1)."""

    display_name = "EG"
    needs_masks_for_loss = True
    double_backprop = True

    def __init__(self, cfg):
        super().__init__(cfg)
        self.samples = int(cfg.samples)
        self.regions, self.num_pixels = cfg.regions, int(cfg.num_pixels)

    def loss(self, model, x, y, mask):
        logits = model(x)
        ce = F.cross_entropy(logits, y)
        weight = penalty_regions(mask, self.regions, self.num_pixels).sum(dim=0)  # (B, 1, H, W)
        attribution = expected_gradients(model, x, y, self.samples, create_graph=True)
        penalty = (attribution.abs() * weight).sum(dim=(1, 2, 3)).mean()
        return ce + self.lam * penalty, {"ce": ce.detach(), "penalty": penalty.detach(), "logits": logits.detach()}
