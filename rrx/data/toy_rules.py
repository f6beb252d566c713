"""The toy colour-rules problem of Ross et al. (2017), thesis Table 9 and Fig. 20.

5x5 images whose cells take one of ``num_colours`` colours. Class 0 ("class 1" in the
thesis): the four corners share one colour and the three top-middle cells differ pairwise.
Class 1 ("class 2"): neither condition holds. The rule mask marks the cells of the rules.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from typing import List

import numpy as np
import torch

from rrx.config import param
from rrx.data import register_dataset
from rrx.data.base import DatasetConfig, image_size_key, mean_key, num_classes_key, num_workers_key, std_key
from rrx.data.tensor_task import TensorTask
from rrx.errors import RRXError

CORNERS = [(0, 0), (0, 4), (4, 0), (4, 4)]
TOP_MIDDLE = [(0, 1), (0, 2), (0, 3)]
RULE_CELLS = {"both": CORNERS + TOP_MIDDLE, "corners": CORNERS, "top_middle": TOP_MIDDLE}


def corners_agree(cells: np.ndarray) -> bool:
    return len({cells[r, c] for r, c in CORNERS}) == 1


def top_middle_differ(cells: np.ndarray) -> bool:
    return len({cells[r, c] for r, c in TOP_MIDDLE}) == 3


def sample_cells(n: int, num_colours: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` colour-index grids (n, 5, 5), half of each class, by rejection sampling."""
    grids, labels = [], []
    wanted = {0: (n + 1) // 2, 1: n // 2}
    while wanted[0] or wanted[1]:
        cells = rng.integers(0, num_colours, (5, 5))
        if wanted[0] and rng.random() < 0.5:  # class 0 is rare by chance: impose its rules
            colour = rng.integers(0, num_colours)
            for r, c in CORNERS:
                cells[r, c] = colour
            top = rng.permutation(num_colours)[:3]
            for (r, c), value in zip(TOP_MIDDLE, top):
                cells[r, c] = value
        a, b = corners_agree(cells), top_middle_differ(cells)
        label = 0 if (a and b) else 1 if not (a or b) else None
        if label is not None and wanted[label]:
            grids.append(cells)
            labels.append(label)
            wanted[label] -= 1
    order = rng.permutation(n)
    return np.stack(grids)[order], np.array(labels)[order]


def palette(num_colours: int) -> np.ndarray:
    return np.array([colorsys.hsv_to_rgb(k / num_colours, 0.9, 0.9) for k in range(num_colours)], dtype=np.float32)


def to_images(cells: np.ndarray, num_colours: int) -> torch.Tensor:
    """(n, 5, 5) colour indices -> (n, 3, 5, 5) RGB in [0, 1]."""
    return torch.from_numpy(palette(num_colours)[cells]).permute(0, 3, 1, 2).contiguous()


def rule_mask(rule: str) -> torch.Tensor:
    """(1, 5, 5), 1 on the cells of ``rule`` (both, corners or top_middle)."""
    mask = torch.zeros(1, 5, 5)
    for r, c in RULE_CELLS[rule]:
        mask[0, r, c] = 1
    return mask


@dataclass
class ToyRulesConfig(DatasetConfig):
    """Ross et al.'s 5x5 colour rules (thesis Fig. 20): corners agree and top-middle differ vs neither"""

    name: str = param("toy_rules", "the registered name of the dataset")
    num_colours: int = param(4, "colours a cell can take (the top-middle rule needs at least 3)", low=2)
    rule: str = param(
        "both", "cells marked as signal in the mask: both | corners | top_middle", choices=tuple(RULE_CELLS)
    )
    train_size: int = param(2000, "training images", low=1)
    test_size: int = param(1000, "test images", low=1)
    seed: int = param(0, "the images drawn")
    num_classes: int = num_classes_key(2)
    image_size: int = image_size_key(5, "the grid's side (5x5 cells, one pixel each)")
    mean: List[float] = mean_key([0.5, 0.5, 0.5])
    std: List[float] = std_key([0.5, 0.5, 0.5])
    num_workers: int = num_workers_key(0)


@register_dataset("toy_rules", config=ToyRulesConfig)
def toy_rules(cfg) -> TensorTask:
    if cfg.num_colours < 3:
        raise RRXError(f"dataset.num_colours={cfg.num_colours}: the top-middle rule needs at least 3 colours")
    rng = np.random.default_rng(cfg.seed)
    splits = []
    for n in (cfg.train_size, cfg.test_size):
        cells, labels = sample_cells(n, cfg.num_colours, rng)
        mask = rule_mask(cfg.rule).expand(n, 1, 5, 5).clone()
        splits.append((to_images(cells, cfg.num_colours), torch.from_numpy(labels).long(), mask))
    return TensorTask(cfg.name, splits[0], splits[1], 2, cfg.mean, cfg.std)
