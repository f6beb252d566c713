"""The wrapper every rrx model shares: [0, 1] images in, logits out, plus where the features are."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def clamp_pixels(x: torch.Tensor) -> torch.Tensor:
    """``x.clamp(0, 1)`` in the forward pass, the identity in the backward pass (a straight-through clamp).

    The reference evaluator's wrapper clamps its input, so the forward value is kept; but ``clamp``'s gradient is 0
    at the bounds, which would make every input-gradient method (FGSM/PGD, RRR, GradMask, EG, saliency, SNR, ADA's
    window search) blind to black and white pixels, the whole context of Decoy/Color MNIST and of RRDA's black holes.
    """
    return x + (x.clamp(0, 1) - x).detach()


class Classifier(nn.Module):
    """Clamp to [0, 1] (straight through, ``clamp_pixels``), normalise, run the backbone (the IN-9 reference
    evaluator's wrapper).

    Keeping normalisation inside the model lets augmentations, masks and attacks work in
    pixel units of the [0, 1] image. The backbone answers timm's two questions,
    ``forward_features(x)`` (a feature map (B, C, h, w), tokens (B, N, C) or a vector) and
    ``forward_head(features, pre_logits=False)``; this wrapper adds the views methods need.

    Args:
        backbone (nn.Module): maps normalised (B, 3, H, W) images to (B, K) logits.
        mean, std (sequence of 3 floats): per-channel normalisation.
        label_map (LongTensor (C,), optional): scores a C-class model (ImageNet-1k) on a dataset's K classes:
            entry i is the dataset class of model class i, -1 for none (``map_logits``).
    """

    backbone: Any  # a timm-style model: forward_features, forward_head and its kind's attributes (patch_embed, ...)
    mean: torch.Tensor
    std: torch.Tensor
    label_map: torch.Tensor | None
    label_map_name: str  # set with label_map by ``rrx.models.pretrained.off_the_shelf`` (a 1000-class model)

    def __init__(self, backbone: nn.Module, mean, std, label_map: torch.Tensor | None = None):
        super().__init__()
        self.backbone = backbone
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("label_map", None if label_map is None else label_map.long(), persistent=False)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_features((clamp_pixels(x) - self.mean) / self.std)

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        out = self.backbone.forward_head(features, pre_logits=pre_logits)
        return out if pre_logits or self.label_map is None else map_logits(out, self.label_map)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def use_plain_attention(self) -> int:
        """Switch timm's fused attention (no double derivative) to its plain form; returns how many modules."""
        modules = [m for m in self.modules() if hasattr(m, "fused_attn")]
        for module in modules:
            setattr(module, "fused_attn", False)  # a plain attribute, which nn.Module's typed __setattr__ rejects
        return len(modules)

    def pooled_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D): the representation the classifier head reads."""
        return self.forward_head(self.forward_features(x), pre_logits=True)

    def cam_layer(self) -> nn.Module | None:
        """The layer whose output Grad-CAM reads on a ViT: the last block's first norm (its patch tokens still matter
        to the class token, unlike ``forward_features``'s output, whose patch tokens a class-token head ignores: their
        gradient is zero). None for CNNs, which use ``forward_features``'s map."""
        blocks = getattr(self.backbone, "blocks", None)
        if blocks is None or not hasattr(self.backbone, "patch_embed"):
            return None
        return blocks[-1].norm1

    def feature_grid(self, features: torch.Tensor) -> torch.Tensor:
        """``forward_features`` output as a spatial map (B, C, h, w).

        A CNN map is returned as is; ViT tokens (B, N, C) lose their prefix (class) tokens and
        are reshaped to the patch grid (timm's ``patch_embed.grid_size``).
        """
        if features.ndim == 4:
            return features
        if features.ndim == 3 and hasattr(self.backbone, "patch_embed"):
            tokens = features[:, getattr(self.backbone, "num_prefix_tokens", 1) :]
            h, w = self.backbone.patch_embed.grid_size
            return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], h, w)
        raise ValueError(
            f"{type(self.backbone).__name__} features of shape {tuple(features.shape)} have no spatial grid"
        )


def map_logits(logits: torch.Tensor, label_map: torch.Tensor) -> torch.Tensor:
    """(B, C) logits of a C-class model -> (B, K + 1): column k is the largest logit of the model classes mapped to
    dataset class k, column K the largest of those mapped to none (-1).

    The argmax is then the dataset class of the model's top-1 class, and K ("none of the dataset's classes")
    is never a label, so such a prediction counts as wrong: the reference evaluator's rule (Xiao et al. 2021,
    ImageNet-1k models on IN-9). Gradients reach the top model class of each dataset class.
    """
    k = int(label_map.max()) + 1
    index = torch.where(label_map < 0, k, label_map).expand(logits.shape[0], -1)
    out = logits.new_full((logits.shape[0], k + 1), float("-inf"))
    return out.scatter_reduce(1, index, logits, reduce="amax", include_self=True)
