"""Writing results without ever replacing an earlier file."""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def new_path(path: Path) -> Path:
    """``path`` if free, else ``stem-1.suffix``, ``stem-2.suffix``, ... (logged)."""
    path = Path(path)
    if not path.exists():
        return path
    n = 1
    while (candidate := path.with_name(f"{path.stem}-{n}{path.suffix}")).exists():
        n += 1
    log.warning("%s exists; writing %s instead", path, candidate)
    return candidate


def write_text(path: Path, text: str) -> Path:
    path = new_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def write_json(path: Path, data: dict) -> Path:
    return write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")
