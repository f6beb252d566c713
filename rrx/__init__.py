"""rrx: right-for-the-right-reasons experiments for image classifiers.

As a library (``rrx.__all__``; the worked examples are in the docs' API page): a model is any ``nn.Module`` on
[0, 1] images (``rrx.Model`` adds a model's normalisation and Grad-CAM's layer); ``rrx.method``, ``rrx.attack``
and ``rrx.train_step`` train it in your own loop; ``rrx.challenge`` and ``rrx.score_predictions`` give the
challenges' tables; ``rrx.attribute`` and the analyses' scores (ObEy, the pointing game, relevance mass and rank,
Focus, the Feature Impact Index) read it; ``rrx.dataset`` gives the datasets as ``(image, label, mask)``
Datasets. The names are imported on first use, so ``import rrx`` (and the CLI) stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> the module that defines it (imported on first access)
_EXPORTS = {
    "Model": "rrx.api",
    "method": "rrx.api",
    "attack": "rrx.api",
    "dataset": "rrx.api",
    "train_step": "rrx.api",
    "challenge": "rrx.api",
    "score_predictions": "rrx.api",
    "attribute": "rrx.api",
    "rrda": "rrx.methods.rrda",
    "pointing_game": "rrx.analyses.localisation",
    "relevance_mass": "rrx.analyses.localisation",
    "relevance_rank": "rrx.analyses.localisation",
    "obey": "rrx.analyses.localisation",
    "focus": "rrx.analyses.focus",
    "feature_impact_index": "rrx.analyses.ipha",
    "RRXError": "rrx.errors",
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rrx' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
