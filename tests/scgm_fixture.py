"""A tiny Spinal Cord Grey Matter challenge training folder in its published layout, written by the tests.

Each subject is a (12, 10, 3) volume (0.5 x 0.5 x 2.5 mm) with four raters' masks (grey matter 1, white matter 2):
GM_MAJORITY (rows 2-3, columns 3-4 of every slice) is grey matter for raters 1-3, GM_MINORITY (rows 6-7, columns
3-4) for raters 1-2 only, WHITE (rows 2-3, columns 6-7) is white matter for all four. The image is 1.0 on
GM_MAJORITY, 0.6 on WHITE and 0.2 elsewhere (times 1000, as raw MRI values), so image and mask line up after any
reorientation. ``flipped`` subjects store the same anatomy with the first axis mirrored and a negative x in their
affine, which ``nibabel.as_closest_canonical`` must undo.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

SHAPE = (12, 10, 3)
ZOOMS = (0.5, 0.5, 2.5)
GM_MAJORITY = (slice(2, 4), slice(3, 5))
GM_MINORITY = (slice(6, 8), slice(3, 5))
WHITE = (slice(2, 4), slice(6, 8))


def _save(data: np.ndarray, path: Path, flipped: bool) -> None:
    affine = np.diag([*ZOOMS, 1.0])
    if flipped:  # voxel i lies at x = -0.5 i: the canonical (RAS) order reverses the first axis
        data, affine[0, 0] = data[::-1], -ZOOMS[0]
    nib.save(nib.Nifti1Image(np.ascontiguousarray(data), affine), str(path))


def write_scgm(
    root: Path, subjects=("site1-sc01", "site1-sc02", "site2-sc01", "site3-sc01", "site4-sc01"), flipped=("site2-sc01",)
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for subject in subjects:
        image = np.full(SHAPE, 200.0, np.float32)
        image[GM_MAJORITY] = 1000.0
        image[WHITE] = 600.0
        _save(image, root / f"{subject}-image.nii.gz", subject in flipped)
        for rater in range(1, 5):
            mask = np.zeros(SHAPE, np.uint8)
            mask[WHITE] = 2
            if rater <= 3:
                mask[GM_MAJORITY] = 1
            if rater <= 2:
                mask[GM_MINORITY] = 1
            _save(mask, root / f"{subject}-mask-r{rater}.nii.gz", subject in flipped)
        (root / f"{subject}-levels.txt").write_text("3\n")
    return root
