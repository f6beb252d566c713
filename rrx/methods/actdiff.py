"""ActDiff (Viviano et al. 2021, Eq. 5): features should not change when the context is removed."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rrx.config import param
from rrx.methods import register_method
from rrx.methods.base import Method, PenaltyConfig

LAYERS = ("pre_logits", "feature_map")
MASKINGS = ("zero", "shuffle")


@dataclass
class ActDiffConfig(PenaltyConfig):
    """ActDiff (Viviano et al. 2021)"""

    name: str = param("actdiff", "the registered name of the method")
    lam: float | None = param(
        1.0,
        "weight of the ActDiff penalty (thesis range 2^0 .. 2^3, fine-tuning at lr 0.001; a from-scratch ViT "
        "(model=vit_test, lr 0.05) collapses at lam=1: use 0.1 there, issue 23)",
        low=0.0,
    )
    layer: str = param(
        "pre_logits",
        "pre_logits (pooled features the head reads) | feature_map (forward_features output)",
        choices=LAYERS,
    )
    masking: str = param(
        "zero", "zero (context set to 0) | shuffle (context pixels permuted, as the reference code)", choices=MASKINGS
    )


def remove_context(
    x: torch.Tensor, mask: torch.Tensor, masking: str, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``zero``: context pixels set to 0 (x * m). ``shuffle``: each image's context pixels permuted
    among the context positions (the reference code's choice), the object kept."""
    if masking == "zero":
        return x * mask
    out = x.clone()
    for b in range(x.shape[0]):
        where = torch.nonzero(mask[b, 0].flatten() == 0).flatten()  # context positions
        order = where[torch.randperm(len(where), generator=generator).to(where.device)]
        flat = out[b].flatten(1)  # (C, H*W) view
        flat[:, where] = x[b].flatten(1)[:, order]
    return out


def layer_output(model, feature_out: torch.Tensor, layer: str) -> torch.Tensor:
    """(B, D) from a ``forward_features`` output: the pooled pre-logits, or the map flattened."""
    if layer == "pre_logits":
        return model.forward_head(feature_out, pre_logits=True)
    return feature_out.flatten(1)


@register_method("actdiff", config=ActDiffConfig, presets={"actdiff_rrda": ActDiffConfig(rrda=True)})
class ActDiff(Method):
    """Cross-entropy + lam * mean_b ||f_l(x_masked) - f_l(x)||_2 (thesis range of lam: 2^0 .. 2^3).

    ``cfg.layer``: ``pre_logits`` (default; the features the head reads) or ``feature_map``;
    ``cfg.masking``: ``zero`` (default) or ``shuffle``.

    The penalty is zero for any feature that ignores the input, and nothing in it keeps the features informative:
    on a ViT the pre-logits are the class token after the final LayerNorm (norm ~ sqrt(D) for every input), which a
    constant vector satisfies. A from-scratch test ViT at lam=1 (``experiment=embedded``) reaches that constant in
    its first steps (penalty 7.7 against CE 2.2 at init, the total gradient 27x the CE one) and stays a one-class
    predictor (11.11 %), at lr 0.05 and 0.005 and with ``layer=feature_map`` alike; lam=0.1 trains (90 %).
    A BatchNorm CNN cannot make its features constant across a training batch and trains at lam=1.
    Measurements: docs/results.md (issue 23).
    """

    display_name = "ActDiff"
    needs_masks_for_loss = True

    def __init__(self, cfg):
        super().__init__(cfg)
        self.layer, self.masking = cfg.layer, cfg.masking

    def loss(self, model, x, y, mask):
        feature_out = model.forward_features(x)
        logits = model.forward_head(feature_out)
        masked_out = model.forward_features(remove_context(x, mask, self.masking))
        f, f_masked = layer_output(model, feature_out, self.layer), layer_output(model, masked_out, self.layer)
        ce = F.cross_entropy(logits, y)
        penalty = torch.linalg.vector_norm(f_masked - f, dim=1).mean()
        return ce + self.lam * penalty, {"ce": ce.detach(), "penalty": penalty.detach(), "logits": logits.detach()}
