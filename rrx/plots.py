"""Figures as PNG files: matplotlib set up once (headless, the report's style), ``save_figure`` and ``image_strip``.

matplotlib is imported on the first figure (``pyplot()``), so that training, which declares figures through its
challenges but draws none, does not load it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from rrx.outputs import atomic_write

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.typing import RcKeyType

log = logging.getLogger(__name__)
STYLE: dict[RcKeyType, Any] = {
    "font.size": 9,
    "axes.titlesize": 10,
    "figure.dpi": 200,
    "savefig.bbox": "tight",
    "figure.constrained_layout.use": True,
}


def pyplot() -> ModuleType:
    """``matplotlib.pyplot`` on the headless Agg backend, in the report's style."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(STYLE)
    return plt


def save_figure(fig: Figure, path: Path) -> Path:
    """Write ``fig`` to ``path`` (atomically) and close it."""
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    finally:
        pyplot().close(fig)
    log.info("figure %s", path)
    return path


def image_strip(images: list[np.ndarray], titles: list[str], path: Path, caption: str = "") -> Path:
    """Images (H, W, 3) in [0, 1] side by side with a title each, e.g. the three images of a U-occurrence."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(images), figsize=(2.2 * len(images), 2.5), squeeze=False)
    for ax, image, title in zip(axes[0], images, titles):
        ax.imshow(np.clip(image, 0, 1), interpolation="nearest")
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    if caption:
        fig.suptitle(caption, fontsize=9)
    return save_figure(fig, path)


def box_plot(ax: Axes, groups: Mapping[str, pd.Series], ylabel: str, log_scale: bool = False) -> None:
    """Box plot of each group with its points jittered on top and the median written above."""
    names = list(groups)
    ax.boxplot([groups[n].to_numpy() for n in names], showfliers=False, widths=0.5)
    rng = np.random.default_rng(0)
    for i, name in enumerate(names, start=1):
        values = groups[name].to_numpy()
        ax.scatter(
            i + rng.uniform(-0.12, 0.12, len(values)), values, s=6 if len(values) > 50 else 14, alpha=0.5, zorder=3
        )
    ax.set_xticks(range(1, len(names) + 1), names)
    ax.set_ylabel(ylabel)
    if log_scale:
        ax.set_yscale("log")
    ax.grid(axis="y", alpha=0.3)
