"""Where results go: one run per folder, every file written atomically.

The rule for every command (train, evaluate, report): a folder belongs to one run. A run takes a lock on
its folder (``.rrx.lock``, released when the process ends, also when it is killed) and refuses a folder that
another live process holds or that holds another run's results. Each file is written to a temporary file in
the same folder, flushed to disk and renamed over the target, so a crash or a full disk leaves either the
previous good file or the new one, never a truncated one.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Callable

from omegaconf import OmegaConf

from rrx.errors import RRXError

log = logging.getLogger(__name__)
LOCK = ".rrx.lock"
ERROR = "error.txt"  # a failed sweep job's traceback
STATUS = "status.json"  # a training run's state: running, stopped (and why), finished
# What Hydra and the lock put into any run folder; everything else in a folder is some run's result.
NOT_RESULTS = {".hydra", LOCK}
UMASK = os.umask(0o022)  # read once; files get the permissions a plain open() would give, not mkstemp's 0600
os.umask(UMASK)


def unique_suffix() -> str:
    """Six random hex digits: default run folders are ``<time>-<suffix>``, unique across processes and hosts."""
    return secrets.token_hex(3)


# use_cache: one value per process, so a sweep's folder resolves the same for every job (Hydra copies the cache).
OmegaConf.register_new_resolver("rrx_unique", unique_suffix, use_cache=True, replace=True)


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, fsync it and rename it to ``path``.

    On any failure the temporary file is removed and ``path`` keeps its previous content; an OSError
    (a full disk, a read-only folder) becomes an RRXError naming ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, 0o666 & ~UMASK)
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        reason = os.strerror(err.errno) if err.errno else str(err)
        raise RRXError(f"cannot write {path}: {reason}; the previous file (if any) is unchanged") from err
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json(path: Path, data: dict) -> Path:
    return write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_status(folder: Path, state: str, epoch: int, epochs: int, reason: str | None = None) -> None:
    write_json(Path(folder) / STATUS, {"state": state, "epoch": epoch, "epochs": epochs, "reason": reason, "time": time.time()})


def read_status(folder: Path) -> dict | None:
    """A run folder's ``status.json``, or None when it has none (or an unreadable one)."""
    try:
        return json.loads((Path(folder) / STATUS).read_text())
    except (OSError, ValueError):
        return None


def results_in(folder: Path) -> list[str]:
    """Names of the entries of ``folder`` that are some run's results (not Hydra's config, logs or the lock)."""
    if not Path(folder).is_dir():
        return []
    return sorted(p.name for p in Path(folder).iterdir() if p.name not in NOT_RESULTS and p.suffix != ".log")


class RunFolder:
    """The lock on one run folder, held until ``release()`` or the end of the process.

    Raises RRXError when another live process holds it, or when the folder cannot be created or locked
    (read-only, or a file system without ``flock``).
    """

    def __init__(self, folder: Path):
        self.path = Path(folder)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path / LOCK, "a+")
        except OSError as err:
            raise RRXError(f"cannot use {self.path} as a run folder: {err.strerror or err}") from None
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            self._file.seek(0)
            holder = self._file.read().strip() or "another process"
            self._file.close()
            if err.errno in (errno.EAGAIN, errno.EACCES):
                raise RRXError(f"{self.path} is in use by {holder}; give another hydra.run.dir") from None
            raise RRXError(f"cannot lock {self.path / LOCK}: {err.strerror or err} (a file system without flock?)") from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"pid {os.getpid()} on {os.uname().nodename}\n")
        self._file.flush()

    def release(self) -> None:
        if not self._file.closed:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()

    def __enter__(self) -> "RunFolder":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def claim_new_folder(folder: Path, command: str) -> RunFolder:
    """Lock ``folder`` for a run of ``command`` that writes its results fresh (evaluate, report):
    refused when the folder already holds results."""
    lock = RunFolder(folder)
    found = results_in(folder)
    if found:
        lock.release()
        shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
        raise RRXError(f"{folder} already holds results ({shown}); rrx {command} never writes over them: give a new hydra.run.dir")
    return lock


def record_hydra_config(folder: Path, cfg) -> None:
    """Write Hydra's ``.hydra/{config,hydra,overrides}.yaml`` for the task config ``cfg`` into ``folder``.

    The apps set ``hydra.output_subdir: null``, so Hydra does not write them itself before the folder was
    checked (it would replace another run's). Does nothing outside a Hydra app.
    """
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return
    hydra_cfg = HydraConfig.get()
    files = {"config.yaml": cfg, "hydra.yaml": OmegaConf.create({"hydra": hydra_cfg}), "overrides.yaml": hydra_cfg.overrides.task}
    for name, node in files.items():
        write_text(Path(folder) / ".hydra" / name, OmegaConf.to_yaml(node))
