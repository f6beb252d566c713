"""Saving a view of the Inspector: its figure as PNG and its numbers as JSON, in the run's output folder.

Each save gets new names, ``<view>-<n>.png`` and ``<view>-<n>.json`` with the first n that neither file has, so an
earlier save is never written over; both files are written atomically (``rrx.outputs``).
"""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from rrx.outputs import atomic_write, write_json

if TYPE_CHECKING:
    from rrx.inspector.views import View

_LOCK = threading.Lock()  # the browser sessions of one server save from their own threads


def save_view(folder: Path, view: View, extra: dict | None = None) -> tuple[Path, Path]:
    """Write ``view`` (a ``rrx.inspector.views.View``) into ``folder``; ``extra`` is added to its JSON (the image's
    source, the model). Returns the PNG and JSON paths."""
    folder = Path(folder)
    buffer = io.BytesIO()
    view.figure.savefig(buffer, format="png")
    with _LOCK:
        n = 1
        while (folder / f"{view.name}-{n}.png").exists() or (folder / f"{view.name}-{n}.json").exists():
            n += 1
        png, data = folder / f"{view.name}-{n}.png", folder / f"{view.name}-{n}.json"
        atomic_write(png, lambda tmp: tmp.write_bytes(buffer.getvalue()))
        write_json(data, {"view": view.name, **(extra or {}), **view.numbers})
    return png, data
