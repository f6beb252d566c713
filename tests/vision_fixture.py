"""Tiny CIFAR-10, STL-10 and image-folder roots in the real on-disk formats, written by the tests.

Pixels come from a seeded generator. Each writer returns what it wrote, images as (N, H, W, 3) uint8 arrays in
the usual row-major HWC order, so the tests compare the loaders with these arrays and not with a second decoding
of the files. The encodings follow the formats' own descriptions: a CIFAR row is the red, green and blue
32x32 planes, each row-major (cs.toronto.edu/~kriz/cifar.html); an STL-10 image is the three 96x96 planes,
each column-major (the STL-10 README), with labels 1..10.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image

CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
STL_NAMES = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]
FOLDER_CLASSES = ["cat", "dog", "fish"]


def write_cifar10(root: Path, per_batch: int = 4, protocol: int = 2, seed: int = 0) -> dict:
    """``root/cifar-10-batches-py`` with five training batches and a test batch of ``per_batch`` images each, and
    batches.meta, pickled with bytes keys as the Python 2 originals read. Returns {"folder", "classes",
    "train": (images, labels), "test": (images, labels)}."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    written = {"train": ([], []), "test": ([], [])}
    names = [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]
    for b, name in enumerate(names):
        images = rng.integers(0, 256, (per_batch, 32, 32, 3), dtype=np.uint8)
        labels = [(3 * b + i) % 10 for i in range(per_batch)]
        rows = np.stack([np.concatenate([img[:, :, c].reshape(-1) for c in range(3)]) for img in images])  # (N, 3072)
        batch = {
            b"batch_label": f"batch {b}".encode(),
            b"labels": labels,
            b"data": rows,
            b"filenames": [f"img_{b}_{i}.png".encode() for i in range(per_batch)],
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=protocol))
        split = "test" if name == "test_batch" else "train"
        written[split][0].append(images)
        written[split][1].extend(labels)
    meta = {b"num_cases_per_batch": per_batch, b"label_names": [n.encode() for n in CIFAR_NAMES], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=protocol))
    out = {split: (np.concatenate(images), np.array(labels)) for split, (images, labels) in written.items()}
    return {"folder": folder, "classes": CIFAR_NAMES, **out}


def write_stl10(root: Path, n_train: int = 6, n_test: int = 4, seed: int = 0) -> dict:
    """``root/stl10_binary`` with the labelled splits and class_names.txt. Returns {"folder", "classes",
    "train": (images, labels 0..9), "test": ...}."""
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    out = {"folder": folder, "classes": STL_NAMES}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, (n, 96, 96, 3), dtype=np.uint8)
        labels = (np.arange(n) * 7 + (split == "test")) % 10
        planes = b"".join(img[:, :, c].ravel(order="F").tobytes() for img in images for c in range(3))
        (folder / f"{split}_X.bin").write_bytes(planes)
        (folder / f"{split}_y.bin").write_bytes((labels + 1).astype(np.uint8).tobytes())
        out[split] = (images, labels)
    (folder / "class_names.txt").write_text("\n".join(STL_NAMES) + "\n")
    return out


def write_image_folder(
    root: Path, per_class: dict | None = None, size: int = 16, masks: bool = True, seed: int = 0
) -> dict:
    """``root/<split>/<class>/img<i>.png`` (img1 of each class as .jpg) for the classes FOLDER_CLASSES, with
    ``root/masks/<split>/<class>/img<i>.{png,npy}`` (even i: PNG of 0/255; odd i: .npy of 0/1) when ``masks``,
    plus files to ignore (a hidden image, a text file, a hidden folder). Returns {split: [(image (size, size, 3),
    label, mask (size, size) bool, path)]} in sorted class-then-file order."""
    per_class = per_class or {"train": 3, "val": 2}
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in per_class.items():
        out[split] = []
        for label, name in enumerate(FOLDER_CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                path = folder / f"img{i}.{'jpg' if i == 1 else 'png'}"
                Image.fromarray(image).save(path, **({"quality": 100, "subsampling": 0} if i == 1 else {}))
                mask = np.zeros((size, size), bool)
                top, left = rng.integers(0, size // 2, 2)
                mask[top : top + size // 2, left : left + size // 3] = True
                if masks:
                    mask_folder = root / "masks" / split / name
                    mask_folder.mkdir(parents=True, exist_ok=True)
                    if i % 2:
                        np.save(mask_folder / f"img{i}.npy", mask.astype(np.uint8))
                    else:
                        Image.fromarray(mask.astype(np.uint8) * 255).save(mask_folder / f"img{i}.png")
                out[split].append((image, label, mask, path))
            Image.fromarray(np.zeros((size, size, 3), np.uint8)).save(folder / ".hidden.png")
            (folder / "notes.txt").write_text("not an image")
        (root / split / ".ipynb_checkpoints").mkdir()
    return out
