"""Running the ``rrx`` command as a user types it, in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RRX = [sys.executable, "-m", "rrx"]


def rrx(*args, cwd=REPO, env=None, check=True):
    result = subprocess.run([*RRX, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"rrx {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def one_line_error(result, *fragments: str) -> str:
    """The failed command's last stderr line: ``rrx: error: ...`` containing every fragment."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("rrx: error:"), result.stderr
    for fragment in fragments:
        assert fragment in line, line
    return line
