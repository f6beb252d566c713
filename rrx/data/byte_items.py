"""Items as uint8 images and bool masks across the loader boundary, made float on the device (issue 13).

A float32 image costs 4 bytes a pixel from the loader workers to the training process, into pinned memory and over
to the device; as uint8 it costs 1. Datasets that can give their items as bytes have ``byte_item(index)`` ->
``(x, y)`` or ``(x, y, m)`` with x uint8 (3, S, S) and m bool (1, S, S): ``IN9Folder`` and ``Preloaded`` (the IN-9
layouts). ``rrx.runtime.Runtime``'s loaders read those through ``ByteItems`` and turn each batch into what
``data[index]`` gives (x / 255 and m as float32) on the device, in ``to_float``; other datasets are loaded as they are.
"""

from __future__ import annotations

from typing import Any, Sized, cast

import torch
from torch.utils.data import Dataset, Subset


class ByteItems(Dataset):
    """``data``'s items as bytes: ``data.byte_item(indices[index])`` (all of ``data`` when ``indices`` is None)."""

    def __init__(self, data: Dataset, indices: list[int] | None = None):
        self.data, self.indices = data, indices

    def __len__(self) -> int:
        return len(cast(Sized, self.data)) if self.indices is None else len(self.indices)

    def __getitem__(self, index: int):
        data: Any = self.data  # has byte_item (``byte_items`` checks)
        return data.byte_item(index if self.indices is None else self.indices[index])


def byte_items(data: Dataset) -> ByteItems | None:
    """``data`` as ``ByteItems`` when it (or the dataset a ``Subset`` of it, such as ``random_split``'s, selects
    from) has ``byte_item``; else None."""
    indices = None
    while isinstance(data, Subset):
        indices = [data.indices[i] for i in indices] if indices is not None else list(data.indices)
        data = data.dataset
    return ByteItems(data, indices) if hasattr(data, "byte_item") else None


def to_float(batch, device: torch.device | None = None, non_blocking: bool = False) -> list:
    """A batch of ``ByteItems`` (or one byte item) as ``data[index]`` gives it, on ``device`` (None: where it is):
    uint8 images -> float32 / 255 and bool masks -> float32 there (bit for bit the float items: k / 255 is one
    float32 division either way); labels are left as they are."""
    out = []
    for t in batch:
        if isinstance(t, torch.Tensor) and t.dtype == torch.uint8:
            t = t.to(device or t.device, non_blocking=non_blocking).float().div_(255)
        elif isinstance(t, torch.Tensor) and t.dtype == torch.bool:
            t = t.to(device or t.device, non_blocking=non_blocking).float()
        out.append(t)
    return out
