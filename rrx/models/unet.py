"""The thesis's U-Net (3.2.3, after Ronneberger et al. 2015), ``model=unet`` for ``task=segmentation``, and the views
of it that attributions need.

Three down-sampling blocks, a bottleneck and three up-sampling blocks; each block is two 3x3 convolutions, each
followed by ReLU, dropout and then batch normalisation (the thesis: "after each convolutional layer, a dropout
regularization layer is used, followed by batch normalization"); the output layer is a 1x1 convolution with a
logistic sigmoid. Up-sampling is bilinear (as Perone et al.'s medicaltorch U-Net, the thesis's reference for its
augmentations), followed by concatenation with the skip connection.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rrx.config import param
from rrx.errors import RRXError
from rrx.models import ModelConfig, register_segmenter
from rrx.models.classifier import clamp_pixels

POOLINGS = 3  # the image side must be a multiple of 2 ** POOLINGS


@dataclass
class UNetConfig(ModelConfig):
    """the thesis's U-Net (3.2.3) for task=segmentation: channels width, 2, 4 width down, 8 width at the bottleneck"""

    name: str = param("unet", "the registered name of the model")
    display_name: str = param("U-Net", "the Architecture column of the tables and figures")
    width: int = param(8, "channels of the first block", low=1)
    dropout: float = param(
        0.5, "dropout probability after each convolution (thesis: 0.5)", low=0.0, high=1.0, high_open=True
    )
    bn_momentum: float = param(
        0.4,
        "batch-norm momentum, torch's convention: the weight of each new batch in the running statistics (thesis: 0.4)",
        low=0.0,
        high=1.0,
    )


class ConvBlock(nn.Sequential):
    """(conv 3x3 -> ReLU -> dropout -> batch norm) x 2."""

    def __init__(self, c_in: int, c_out: int, dropout: float, bn_momentum: float):
        layers = []
        for c in (c_in, c_out):
            layers += [
                nn.Conv2d(c, c_out, 3, padding=1),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.BatchNorm2d(c_out, momentum=bn_momentum),
            ]
        super().__init__(*layers)


class UNet(nn.Module):
    """U-Net with ``width``, 2 ``width``, 4 ``width`` channels on the way down and 8 ``width`` at the bottleneck.

    Args:
        in_channels (int): image channels (3 for RGB, 1 for MRI).
        width (int, optional): channels of the first block. Default: 8.
        dropout (float, optional): dropout probability after each convolution. Default: 0.5 (thesis).
        bn_momentum (float, optional): torch's batch-norm momentum. Default: 0.4 (thesis).

    Example: ``UNet(3)(torch.rand(2, 3, 64, 64))`` is (2, 1, 64, 64) in (0, 1).
    """

    def __init__(self, in_channels: int, width: int = 8, dropout: float = 0.5, bn_momentum: float = 0.4):
        super().__init__()
        w = width
        self.down = nn.ModuleList(
            [
                ConvBlock(in_channels, w, dropout, bn_momentum),
                ConvBlock(w, 2 * w, dropout, bn_momentum),
                ConvBlock(2 * w, 4 * w, dropout, bn_momentum),
            ]
        )
        self.bottleneck = ConvBlock(4 * w, 8 * w, dropout, bn_momentum)
        self.up = nn.ModuleList(
            [
                ConvBlock(12 * w, 4 * w, dropout, bn_momentum),
                ConvBlock(6 * w, 2 * w, dropout, bn_momentum),
                ConvBlock(3 * w, w, dropout, bn_momentum),
            ]
        )
        self.head = nn.Conv2d(w, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for block, skip in zip(self.up, reversed(skips)):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return torch.sigmoid(self.head(x))


class Segmenter(nn.Module):
    """[0, 1] images (B, C, H, W) in, foreground probabilities (B, 1, H, W) out: clamps (straight through) and
    normalises inside, as ``rrx.models.Classifier`` does, so augmentations, ADA's erasing and the robustness set work
    in pixel units."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, net: UNet, mean, std):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((clamp_pixels(x) - self.mean) / self.std)


class ForegroundScore(nn.Module):
    """The segmenter seen as a one-output model: the summed foreground probability, y = sum_ij f(x)_ij (B, 1).

    ADA's attribution for segmentation is taken of this output (Eq. 3.2 with y_c the summed foreground), so
    ``rrx.attributions.attribution_map(ForegroundScore(s), x, zeros, method)`` works for every method but those
    that score a class among several (IPHA); Grad-CAM reads the bottleneck, the U-Net's deepest feature map
    (``cam_layer``, ``feature_grid``).
    """

    def __init__(self, segmenter: Segmenter):
        super().__init__()
        self.segmenter = segmenter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.segmenter(x).sum(dim=(2, 3))

    def cam_layer(self) -> nn.Module:
        return self.segmenter.net.bottleneck

    def feature_grid(self, features: torch.Tensor) -> torch.Tensor:
        return features


@register_segmenter("unet", config=UNetConfig)
def create_unet(cfg, in_channels: int, mean, std, image_size: int) -> Segmenter:
    """The ``model=unet`` config's U-Net for ``in_channels`` images of side ``image_size`` (a multiple of 8)."""
    if image_size % 2**POOLINGS:
        raise RRXError(
            f"dataset.image_size={image_size}: the U-Net pools {POOLINGS} times, so the image side must be a "
            f"multiple of {2**POOLINGS}, e.g. dataset.image_size={max(8, image_size // 8 * 8)}"
        )
    if len(mean) != in_channels or len(std) != in_channels:
        raise RRXError(
            f"dataset.mean and dataset.std need {in_channels} values (the images have {in_channels} channels)"
        )
    net = UNet(in_channels, int(cfg.width), float(cfg.dropout), float(cfg.bn_momentum))
    return Segmenter(net, mean, std)
