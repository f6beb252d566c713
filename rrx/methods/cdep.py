"""Contextual Decomposition Explanation Penalization (CDEP, Rieger et al. 2020; thesis 5.2, Table 10).

Contextual decomposition (CD; Murdoch et al. 2018, Singh et al. 2019 for CNNs) splits every activation of a
network into the part that comes from one region of the input and the part that comes from the rest, layer by
layer, so that the two parts of the logits add up to the logits themselves. CDEP penalises the share of the
logits that comes from a region the model must not use.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rrx.config import param
from rrx.errors import RRXError, check_choice
from rrx.masks import has_context
from rrx.methods import register_method
from rrx.methods.base import Method, PenaltyConfig
from rrx.models.classifier import clamp_pixels

TINY = 1e-20  # keeps the bias shares defined where both parts are exactly zero (then each takes half)
AFFINE = (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d)
POOLS = (nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Flatten)  # linear, no bias: applied to each part
IDENTITIES = (nn.Dropout, nn.Identity)  # CD runs the network in its evaluation form
COVERED = (*AFFINE, nn.ReLU, nn.MaxPool2d, *POOLS, *IDENTITIES)
REGIONS = ("context", "pixels")  # method.regions
REGIONS_DEFAULT = "${oc.select:dataset.penalty_regions,context}"  # a dataset may say where its shortcut lies


@dataclass
class CDEPConfig(PenaltyConfig):
    """Contextual Decomposition Explanation Penalization (Rieger et al. 2020)"""

    name: str = param("cdep", "the registered name of the method")
    lam: float | None = param(100.0, "weight of the CDEP penalty (CDEP's regularizer_rate range 1 .. 1e4)", low=0.0)
    regions: str = param(
        REGIONS_DEFAULT,
        "context (the mask's context) | pixels (num_pixels single pixels: Color MNIST); default: the dataset's",
        choices=REGIONS,
    )
    num_pixels: int = param(8, "regions=pixels: how many single pixels are penalised", low=1)


def _affine_parts(
    layer: nn.Linear | nn.Conv2d | nn.BatchNorm1d | nn.BatchNorm2d, part: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(W part, bias broadcastable to it) of a conv, linear or batch-norm layer; batch norm in its evaluation
    form y = a x + c with a = gamma / sqrt(running_var + eps) and c = beta - a running_mean."""
    bias: torch.Tensor
    if isinstance(layer, nn.Linear):
        bias = layer.bias if layer.bias is not None else part.new_zeros(layer.out_features)
        return F.linear(part, layer.weight), bias.view(1, -1)
    if isinstance(layer, nn.Conv2d):
        bias = layer.bias if layer.bias is not None else part.new_zeros(layer.out_channels)
        return layer._conv_forward(part, layer.weight, None), bias.view(1, -1, 1, 1)
    running_mean, running_var = layer.running_mean, layer.running_var  # both set or both None (track_running_stats)
    if running_mean is None or running_var is None:
        raise RRXError(f"contextual decomposition needs batch norm with running statistics; {layer} has none")
    gamma = layer.weight if layer.weight is not None else torch.ones_like(running_var)
    beta = layer.bias if layer.bias is not None else torch.zeros_like(running_mean)
    a = gamma / torch.sqrt(running_var + layer.eps)
    shape = (1, -1) + (1,) * (part.ndim - 2)
    return part * a.view(shape), (beta - a * running_mean).view(shape)


def cd_layer(layer: nn.Module, rel: torch.Tensor, irrel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Propagate the two parts through one layer; rel' + irrel' = layer(rel + irrel) for every covered layer.

    - conv / linear / batch norm: W rel and W irrel, the bias shared in proportion to |W rel| and |W irrel|;
    - ReLU: rel' = relu(rel), irrel' = relu(rel + irrel) - relu(rel);
    - max pooling: the positions the sum picks, taken from each part;
    - average pooling and flatten: applied to each part.
    """
    if isinstance(layer, AFFINE):
        (w_rel, bias), (w_irrel, _) = _affine_parts(layer, rel), _affine_parts(layer, irrel)
        share = (w_rel.abs() + TINY) / (w_rel.abs() + w_irrel.abs() + 2 * TINY)
        return w_rel + share * bias, w_irrel + (1 - share) * bias
    if isinstance(layer, nn.ReLU):
        return F.relu(rel), F.relu(rel + irrel) - F.relu(rel)
    if isinstance(layer, nn.MaxPool2d):
        _, where = F.max_pool2d(
            rel + irrel,
            layer.kernel_size,
            layer.stride,
            layer.padding,
            layer.dilation,
            layer.ceil_mode,
            return_indices=True,
        )

        def pick(part):
            return part.flatten(2).gather(2, where.flatten(2)).view_as(where)

        return pick(rel), pick(irrel)
    if isinstance(layer, POOLS):
        return layer(rel), layer(irrel)
    if isinstance(layer, IDENTITIES):
        return rel, irrel
    raise RRXError(f"contextual decomposition does not cover {type(layer).__name__}")


def _unnest(layers) -> list[nn.Module]:
    """Nested ``nn.Sequential`` blocks replaced by their layers."""
    flat: list[nn.Module] = []
    for layer in layers:
        flat += _unnest(layer) if isinstance(layer, nn.Sequential) else [layer]
    return flat


def cd_chain(model) -> list[nn.Module]:
    """The backbone's layers in order (its ``cd_layers()``), checked to be covered by CD.

    Raises RRXError naming the first layer CD does not cover, or the first module that is not a plain chain
    (a residual block, attention) when the backbone has no ``cd_layers``.
    """
    backbone = getattr(model, "backbone", model)
    if not hasattr(backbone, "cd_layers"):
        for name, module in backbone.named_modules():
            if name and not isinstance(module, (nn.Sequential, *COVERED)):
                raise RRXError(
                    f"method=cdep: contextual decomposition does not cover layer {name} "
                    f"({type(module).__name__}) of {type(backbone).__name__}; it covers plain chains of "
                    "conv, linear, ReLU, max/avg pooling, batch norm and flatten (model=lenet, mlp, small_cnn)"
                )
        raise RRXError(f"method=cdep: {type(backbone).__name__} does not list its layers as a chain (cd_layers)")
    layers = _unnest(backbone.cd_layers())
    for index, layer in enumerate(layers):
        if not isinstance(layer, COVERED):
            raise RRXError(
                f"method=cdep: contextual decomposition does not cover layer {index} "
                f"({type(layer).__name__}) of {type(backbone).__name__}"
            )
    return layers


def contextual_decomposition(model, x: torch.Tensor, region: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of ``model`` (a ``Classifier``) split into the part from ``region`` and the part from the rest.

    The model's normalised input z = (clamp(x, 0, 1) - mean) / std is split as region * z + (1 - region) * z
    and both parts are propagated layer by layer (``cd_layer``, batch norm in its evaluation form).

    Args:
        model: a Classifier whose backbone has ``cd_layers()``.
        x (Tensor): images (B, C, H, W) in [0, 1].
        region (Tensor): (B, 1 or C, H, W), 1 on the region whose contribution is wanted.

    Returns:
        (rel, irrel): (B, K) each; rel + irrel = the logits of the model in evaluation mode.
    """
    z = (clamp_pixels(x) - model.mean) / model.std
    rel, irrel = region * z, (1 - region) * z
    for layer in cd_chain(model):
        rel, irrel = cd_layer(layer, rel, irrel)
    return rel, irrel


def penalty_regions(mask: torch.Tensor, regions: str, num_pixels: int = 8) -> torch.Tensor:
    """The regions whose contribution is penalised, (R, B, 1, H, W).

    ``context``: one region per image, the context 1 - mask (CDEP's Decoy MNIST and ISIC protocol).
    ``pixels``: ``num_pixels`` single pixels shared by the batch, drawn where objects are (in proportion to
    the batch's mean mask), as CDEP's Color MNIST protocol: a single pixel can carry colour but not shape.
    """
    check_choice("method.regions", regions, REGIONS)
    if regions == "context":
        return (1 - mask)[None]
    b, _, h, w = mask.shape
    where = mask.float().mean(dim=(0, 1)).flatten() + TINY
    picks = torch.multinomial(where, num_pixels, replacement=True)
    pixels = F.one_hot(picks, h * w).to(mask.dtype).view(num_pixels, 1, 1, h, w)
    return pixels.expand(num_pixels, b, 1, h, w)


def cdep_penalty(model, x: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
    """Per image: sum over regions of mean_k softmax([rel_k, irrel_k])_0 -> (B,)  (CDEP's loss; softmax of two
    values = sigmoid of their difference). All regions run as one batch of R * B images."""
    r, b = regions.shape[:2]
    rel, irrel = contextual_decomposition(model, x.repeat(r, 1, 1, 1), regions.flatten(0, 1))
    share = torch.sigmoid(rel - irrel).mean(dim=1)  # (R * B,)
    return share.view(r, b).sum(dim=0)


@register_method("cdep", config=CDEPConfig)
class CDEP(Method):
    """Cross-entropy + lam * mean over the batch of ``cdep_penalty`` (CDEP's regularizer_rate: 1 .. 1e4).

    ``cfg.regions``: ``context`` (the mask's context) or ``pixels`` (``cfg.num_pixels`` single pixels, for
    Color MNIST, where the shortcut lies on the object's own pixels).
    """

    display_name = "CDEP"
    needs_masks_for_loss = True

    def __init__(self, cfg):
        super().__init__(cfg)
        self.regions, self.num_pixels = cfg.regions, int(cfg.num_pixels)

    def check_model(self, model) -> None:
        cd_chain(model)

    def loss(self, model, x, y, mask):
        logits = model(x)
        ce = F.cross_entropy(logits, y)
        per_image = cdep_penalty(model, x, penalty_regions(mask, self.regions, self.num_pixels))
        if self.regions == "context":
            # an empty context (an image without a mask, rrx.masks) has nothing to penalise: sigmoid(rel - irrel) of an
            # empty region is not 0 (the biases stay in irrel), so its term is dropped
            per_image = per_image * has_context(mask)
        penalty = per_image.mean()
        return ce + self.lam * penalty, {"ce": ce.detach(), "penalty": penalty.detach(), "logits": logits.detach()}
