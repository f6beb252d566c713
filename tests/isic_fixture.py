"""ISIC in the layout of CDEP's scripts, tiny, written by the tests."""

from __future__ import annotations

import numpy as np
from PIL import Image


def write_isic(root, n_benign=6, n_malignant=4, patched=(0, 1, 2), folders=("benign", "malignant")):
    """CDEP's layout: processed/<benign>/<id>.jpg, processed/<malignant>/<id>.jpg (299 px), segmentation/<id>.jpg."""
    rng = np.random.default_rng(0)
    for folder, n, prefix in ((folders[0], n_benign, "ISIC_00000"), (folders[1], n_malignant, "ISIC_00100")):
        (root / "processed" / folder).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (299, 299, 3), dtype=np.uint8)).save(
                root / "processed" / folder / f"{prefix}{i:02d}.jpg"
            )
    (root / "segmentation").mkdir(parents=True, exist_ok=True)
    for i in patched:
        seg = np.zeros((299, 299, 3), dtype=np.uint8)
        seg[:100, :100] = 255  # the patch: the top left ninth
        Image.fromarray(seg).save(root / "segmentation" / f"ISIC_00000{i:02d}.jpg")
    return root
