"""Where a result came from: the ``provenance`` block of every ``metrics.json``.

A number in a paper should say which code, which libraries, which weights and which machine made it (the demo's
numbers once changed with a torch release alone). ``collect`` gathers, at the end of a command:

- ``rrx``: its version, and the git commit of its source tree with whether that tree had uncommitted changes
  (an editable install in a checkout; ``None`` for an installed wheel);
- ``versions``: Python's and the libraries' that change numbers (``LIBRARIES``; ``None`` where not installed);
- ``weights``: what the model's weights were (``weights``): a checkpoint or weights file by its SHA-256, timm's
  pretrained tag, a Hugging Face model's revision, torchvision's weights name, or random;
- ``device``: the device's name (the GPU's, or the CPU's model name, whose kernel set changes CPU results);
- ``command``: the command line; ``started``/``finished``: ISO 8601 times (UTC).

``rrx report`` compares the blocks of the runs it reads (``rrx.report.provenance``).
"""

from __future__ import annotations

import hashlib
import platform
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import torch

import rrx

# the distributions whose version can change a result, by their PyPI names
LIBRARIES = ("torch", "torchvision", "timm", "captum", "transformers", "hydra-core", "omegaconf", "numpy", "lightning")


def library_versions() -> dict[str, str | None]:
    """``{"python": ..., library: version or None}`` for ``LIBRARIES`` (torch's and torchvision's with their build)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    for name in ("torch", "torchvision"):  # their own version names the build too (2.4.1+cu121): imported already
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = str(module.__version__)
    return versions


@lru_cache(maxsize=1)
def source_tree() -> dict:
    """rrx's version, and the git commit and dirtiness of the tree its package was imported from (``git_state``)."""
    return {"version": rrx.__version__, **git_state(Path(rrx.__file__).resolve().parent)}


def git_state(folder: Path, tracked: str = "__init__.py") -> dict:
    """``{"commit", "dirty"}`` of the git work tree holding ``folder``, where it tracks ``folder/tracked`` (not a
    checkout that merely holds a virtual environment); both None outside one, or without git."""
    git = ["git", "-C", str(folder)]
    try:
        subprocess.run([*git, "ls-files", "--error-unmatch", tracked], capture_output=True, timeout=10, check=True)
        head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True)
        status = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}


def device_name(device: torch.device | str | None) -> str | None:
    """``"cuda:0 (NVIDIA H100 80GB HBM3)"``, ``"cpu (AMD EPYC 9R14)"``; None for no device."""
    if device is None:
        return None
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({cpu_model()})"
    return str(device)


@lru_cache(maxsize=1)
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file, or of a folder's files in name order (their relative names included)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def weights(model_cfg: dict | None, model: torch.nn.Module | None = None, checkpoint: str | None = None) -> dict:
    """What a model's weights were: ``{"checkpoint": path, "sha256"}`` for a trained run's checkpoint, else from its
    config ``{"file": path, "sha256"}`` (``weights_path``), the pretrained weights' name (timm's
    ``architecture.tag``, a Hugging Face model's ``name_or_path`` and revision, torchvision's default weights) or
    ``{"pretrained": False}`` (random initial weights: a training run from scratch)."""
    if checkpoint is not None:
        return {"checkpoint": str(checkpoint), "sha256": file_sha256(checkpoint)}
    cfg = model_cfg or {}
    if cfg.get("weights_path"):
        file = Path(str(cfg["weights_path"])).expanduser().resolve()
        return {"file": str(file), "sha256": file_sha256(file) if file.exists() else None}
    if not cfg.get("pretrained") and not cfg.get("hf_name"):
        return {"pretrained": False}
    found: dict = {"pretrained": True, "model": cfg.get("name")}
    for module in model.modules() if model is not None else ():
        pretrained_cfg = getattr(module, "pretrained_cfg", None)
        if isinstance(pretrained_cfg, dict) and pretrained_cfg.get("architecture"):  # timm
            tag = pretrained_cfg.get("tag")
            found["timm"] = f"{pretrained_cfg['architecture']}.{tag}" if tag else pretrained_cfg["architecture"]
            found["hf_hub_id"] = pretrained_cfg.get("hf_hub_id") or None
            return found
        config = getattr(module, "config", None)
        if config is not None and hasattr(config, "_name_or_path"):  # transformers
            found["hf_model"] = config._name_or_path
            found["revision"] = getattr(config, "_commit_hash", None)
            return found
    if cfg.get("name") == "torchvision" and cfg.get("arch"):
        from torchvision.models import get_model_weights

        found["torchvision"] = str(get_model_weights(str(cfg["arch"])).DEFAULT)
    return found


def iso(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")


def collect(
    started: float | None,
    device: torch.device | str | None,
    weights_block: dict | None = None,
    finished: float | None = None,
) -> dict:
    """The ``provenance`` block (see the module's docstring); ``started``/``finished`` are Unix times (``finished``
    None: now)."""
    # the program by its name (rrx's CLI names it "rrx <command>"), its arguments quoted for a shell
    argv = " ".join(part for part in (Path(sys.argv[0]).name if sys.argv else "", shlex.join(sys.argv[1:])) if part)
    return {
        "rrx": source_tree(),
        "versions": library_versions(),
        "weights": weights_block,
        "device": device_name(device),
        "command": argv,
        "started": iso(started),
        "finished": iso(finished if finished is not None else datetime.now(timezone.utc).timestamp()),
    }
