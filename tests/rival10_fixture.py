"""A tiny RIVAL10 root in the published layout, written by the tests.

Images are 96 wide and 80 high (not square, as ImageNet images). Image n of class k has a
uniform grey background of value BG[n] and a rectangle of colour COLOURS[k] at rows 20..50,
cols 30..70; the object mask is that rectangle. Side files are written as the release has them.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ["truck", "car", "plane", "ship", "cat", "dog", "equine", "deer", "frog", "bird"]
WNIDS = [f"n0{k}000000" for k in range(10)]
BG = [60, 120, 180]
COLOURS = [
    (230, 30, 30),
    (30, 230, 30),
    (30, 30, 230),
    (230, 230, 30),
    (230, 30, 230),
    (30, 230, 230),
    (250, 130, 20),
    (130, 20, 250),
    (250, 250, 250),
    (20, 20, 20),
]
HEIGHT, WIDTH = 80, 96
TOP, BOTTOM, LEFT, RIGHT = 20, 50, 30, 70


def object_mask() -> np.ndarray:
    mask = np.zeros((HEIGHT, WIDTH), bool)
    mask[TOP:BOTTOM, LEFT:RIGHT] = True
    return mask


def write_rival10(base: Path, per_class: int = 2, meta: bool = True) -> Path:
    root = base / "RIVAL10"
    for split in ("train", "test"):
        ordinary, masks = root / split / "ordinary", root / split / "entire_object_masks"
        ordinary.mkdir(parents=True)
        masks.mkdir(parents=True)
        for k, wnid in enumerate(WNIDS):
            for n in range(per_class):
                name = f"{wnid}_{n}"
                img = np.full((HEIGHT, WIDTH, 3), BG[n], np.uint8)
                img[object_mask()] = COLOURS[k]
                Image.fromarray(img).save(ordinary / f"{name}.JPEG", quality=95)
                Image.fromarray((object_mask() * 255).astype(np.uint8)).convert("RGB").save(
                    masks / f"{name}.JPEG", quality=95
                )
                Image.fromarray(np.zeros((HEIGHT, WIDTH, 3), np.uint8)).save(ordinary / f"{name}_merged_mask.JPEG")
                np.save(ordinary / f"{name}_attr_labels.npy", np.zeros((2, 18)))
                (ordinary / f"{name}_attr_dict.pkl").write_bytes(pickle.dumps({}))
    if meta:
        (root / "meta").mkdir()
        names = {wnid: f"imagenet class {k}" for k, wnid in enumerate(WNIDS)}
        (root / "meta" / "wnid_to_class.json").write_text(json.dumps(names))
        mappings = {f"imagenet class {k}": [CLASSES[k], k] for k in range(10)}
        (root / "meta" / "label_mappings.json").write_text(json.dumps(mappings))
    return root
