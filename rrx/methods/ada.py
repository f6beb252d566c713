"""Active image Data Augmentation, ADA (thesis ch. 3, Alg. 1, Eq. 3.1-3.4).

Train ``standard_epochs`` on the original data; then, ``cycles`` times: compute an attribution
map for every training image (Eq. 3.2), find the Z x Z window with the largest attribution
that lies wholly in the context (Eq. 3.3), zero it (Eq. 3.4), and train ``ada_epochs`` on the
original images plus these new ones (Alg. 1 lines 4-7; each cycle replaces the previous ADA images).
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch.utils.data import ConcatDataset, Dataset
from tqdm import tqdm

from rrx.attributions import attribution_map
from rrx.errors import check_choice
from rrx.methods import register_method
from rrx.methods.standard import Standard

log = logging.getLogger(__name__)
ATTRIBUTIONS = ("saliency", "input_x_gradient", "guided_backprop", "gradcam", "guided_gradcam")  # of rrx.attributions


def window_sums(values: torch.Tensor, z: int) -> torch.Tensor:
    """Sum of every z x z window of ``values`` (B, H, W) via a summed-area table: (B, H-z+1, W-z+1)."""
    table = F.pad(values.cumsum(1).cumsum(2), (1, 0, 1, 0))  # table[:, i, j] = sum of values[:, :i, :j]
    return table[:, z:, z:] - table[:, :-z, z:] - table[:, z:, :-z] + table[:, :-z, :-z]


def best_context_window(attribution: torch.Tensor, mask: torch.Tensor, z: int) -> torch.Tensor:
    """Top-left corner (row, col) of the z x z window with the largest attribution sum among the windows
    without any object pixel, per image: (B, 2); (-1, -1) where every window touches the object.

    Args:
        attribution (Tensor): (B, H, W), non-negative importance.
        mask (Tensor): (B, 1, H, W), 1 on the object.
        z (int): window side.
    """
    scores = window_sums(attribution.float(), z)
    scores = scores.masked_fill(window_sums(mask[:, 0].float(), z) > 0, float("-inf"))
    best, index = scores.flatten(1).max(dim=1)
    corners = torch.stack([index // scores.shape[2], index % scores.shape[2]], dim=1)
    corners[~torch.isfinite(best)] = -1
    return corners


def erase_windows(x: torch.Tensor, corners: torch.Tensor, z: int) -> torch.Tensor:
    """x * mask, the mask 0 on each image's z x z window (Eq. 3.4); corner (-1, -1) leaves x unchanged."""
    keep = torch.ones_like(x[:, :1])
    for b, (row, col) in enumerate(corners.tolist()):
        if row >= 0:
            keep[b, :, row : row + z, col : col + z] = 0
    return x * keep


class Erased(Dataset):
    """Items of ``base`` (x, y, m) with a z x z window zeroed where ``corners`` has one."""

    def __init__(self, base: Dataset, corners: torch.Tensor, z: int):
        self.base, self.corners, self.z = base, corners, z

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        x, y, m = self.base[index]
        return erase_windows(x[None], self.corners[index : index + 1], self.z)[0], y, m


@register_method("ada")
class ADA(Standard):
    """Cross-entropy on the original images plus the ADA images of the current cycle.

    ``cfg``: ``standard_epochs``, ``cycles``, ``ada_epochs``, ``window`` (Z), ``attribution``
    (one of ATTRIBUTIONS). Runs ``standard_epochs + cycles * ada_epochs`` epochs (``trainer.epochs``
    is not used).
    """

    display_name = "ADA"
    needs_masks_for_loss = True

    def __init__(self, cfg):
        super().__init__(cfg)
        check_choice("method.attribution", cfg.attribution, ATTRIBUTIONS)
        self.standard_epochs, self.cycles, self.ada_epochs = int(cfg.standard_epochs), int(cfg.cycles), int(cfg.ada_epochs)
        self.window, self.attribution = int(cfg.window), cfg.attribution
        self.corners: torch.Tensor | None = None  # the current cycle's windows, (N, 2)

    def total_epochs(self, epochs: int) -> int:
        return self.standard_epochs + self.cycles * self.ada_epochs

    def data_factor(self, epoch: int) -> int:
        """How many times the original training set the data of ``epoch`` is (1, then 2 during cycles)."""
        return 1 if epoch <= self.standard_epochs else 2

    def training_set(self, epoch: int, base: Dataset, model, runtime) -> Dataset | None:
        """At the first epoch of each cycle: the originals plus fresh ADA images; otherwise None."""
        if epoch <= self.standard_epochs or (epoch - self.standard_epochs - 1) % self.ada_epochs:
            return None
        model.eval()
        corners = []
        for x, y, m in tqdm(runtime.loader(base, shuffle=False), desc="ADA windows", leave=False, disable=not runtime.progress):
            x, y = x.to(runtime.device), y.to(runtime.device)
            maps = attribution_map(model, x, y, self.attribution)
            corners.append(best_context_window(maps, m.to(runtime.device), self.window).cpu())
        self.corners = torch.cat(corners)
        log.info("ADA cycle: %d of %d images got a %dx%d window (%s)", int((self.corners[:, 0] >= 0).sum()), len(self.corners),
                 self.window, self.window, self.attribution)
        model.train()
        return self.current_set(base)

    def state_dict(self) -> dict:
        return {"corners": self.corners}

    def load_state_dict(self, state: dict) -> None:
        self.corners = state.get("corners")

    def current_set(self, base: Dataset) -> Dataset | None:
        """The originals plus the current cycle's ADA images; None before the first cycle."""
        return None if self.corners is None else ConcatDataset([base, Erased(base, self.corners, self.window)])
