"""Finding finished runs' ``metrics.json`` files."""

from __future__ import annotations

import glob
import json
import logging
from pathlib import Path

from rrx.errors import RRXError

log = logging.getLogger(__name__)


def find_metrics(patterns: list[str]) -> list[dict]:
    """Every readable ``metrics.json`` under the given folders or globs, in path order.

    Files that cannot be read or lack results are logged as skipped with the reason.
    """
    files: set[Path] = set()
    for pattern in patterns:
        matches = glob.glob(str(Path(pattern).expanduser()))
        if not matches:
            raise RRXError(f"runs={pattern}: no such folder or file")
        for match in map(Path, matches):
            files.update(match.rglob("metrics.json") if match.is_dir() else [match])
    runs = []
    for file in sorted(files):
        try:
            metrics = json.loads(file.read_text())
        except (OSError, ValueError) as err:
            log.warning("skipped %s: %s", file, err)
            continue
        missing = [key for key in ("run", "challenges") if key not in metrics]
        if missing:
            log.warning("skipped %s: no %s", file, " or ".join(missing))
            continue
        metrics["path"] = str(file.parent)
        runs.append(metrics)
    if not runs:
        raise RRXError(f"runs={','.join(patterns)}: no finished runs (no readable metrics.json) found")
    return runs
