"""What every rrx process pays before it works: the import of the package, of the configs' package (every
component's module: what each command and each test subprocess loads) and `rrx --help`, next to `import torch` and
`import torchvision` alone, each the median of --repeat fresh interpreters. Prints seconds and the ratio to torch.

    .venv/bin/python scripts/bench_startup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

CASES = {
    "import torch": [sys.executable, "-c", "import torch"],
    "import torchvision": [sys.executable, "-c", "import torchvision"],
    "import rrx": [sys.executable, "-c", "import rrx"],
    "import rrx.conf (every component)": [sys.executable, "-c", "import rrx.conf"],
    "rrx --help": [str(Path(sys.executable).with_name("rrx")), "--help"],
}


def seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    seconds(CASES["import torch"])  # warm the file cache once
    medians = {name: statistics.median(seconds(cmd) for _ in range(args.repeat)) for name, cmd in CASES.items()}
    torch_s = medians["import torch"]
    for name, value in medians.items():
        print(f"{name:36s} {value:6.2f} s   {value / torch_s:5.2f} x import torch")


if __name__ == "__main__":
    main()
