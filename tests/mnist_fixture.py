"""The four MNIST IDX files, tiny, written byte by byte by the tests."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


def write_mnist(root: Path) -> Path:
    """Image i is (i mod 5) + label with an 8x8 block of 200 in the middle; 20 train, 10 test (gzipped)."""
    for split, prefix, n in (("train", "train", 20), ("test", "t10k", 10)):
        labels = np.arange(n) % 10
        images = np.stack([np.full((28, 28), i % 5 + labels[i]) for i in range(n)])
        images[:, 10:18, 10:18] = 200
        write_idx(root / f"{prefix}-images-idx3-ubyte", images, compress=(split == "test"))
        write_idx(root / f"{prefix}-labels-idx1-ubyte", labels)
    return root
