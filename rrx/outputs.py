"""Where results go: one run per folder, every file written atomically.

The rule for every command (train, evaluate, report): a folder belongs to one run. A run takes a lock on
its folder (``.rrx.lock``, released when the process ends, also when it is killed) and refuses a folder that
another live process holds or that holds another run's results. Each file is written to a temporary file in
the same folder, flushed to disk and renamed over the target, so a crash or a full disk leaves either the
previous good file or the new one, never a truncated one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

from omegaconf import DictConfig, OmegaConf

from rrx.errors import RRXError

log = logging.getLogger(__name__)
LOCK = ".rrx.lock"
ERROR = "error.txt"  # a failed sweep job's traceback
STATUS = "status.json"  # a training run's state: running, stopped (and why), finished
# What Hydra and the lock put into any run folder; everything else in a folder is some run's result.
TRACKER_DIRS = {"logs", "mlruns", "wandb"}  # what a run's tracker writes (rrx.loggers): its log, not its results
NOT_RESULTS = {".hydra", LOCK, *TRACKER_DIRS}
UMASK = os.umask(0o022)  # read once; files get the permissions a plain open() would give, not mkstemp's 0600
os.umask(UMASK)


_SUFFIXES: list[str] = []  # the suffixes this process drew: a default run folder named with one is this command's own
_STARTED: set[Path] = (
    set()
)  # the run folders this process recorded its config in (record_hydra_config): runs that started


def unique_suffix() -> str:
    """Six random hex digits: default run folders are ``<time>-<suffix>``, unique across processes and hosts."""
    _SUFFIXES.append(secrets.token_hex(3))
    return _SUFFIXES[-1]


# use_cache: one value per process, so a sweep's folder resolves the same for every job (Hydra copies the cache).
OmegaConf.register_new_resolver("rrx_unique", unique_suffix, use_cache=True, replace=True)


def atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, fsync it and rename it to ``path`` (what ``write``
    returns is ignored).

    On any failure the temporary file is removed and ``path`` keeps its previous content; an OSError
    (a full disk, a read-only folder) becomes an RRXError naming ``path``.
    """
    path, tmp = Path(path), None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(name)
        os.chmod(tmp, 0o666 & ~UMASK)
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        reason = os.strerror(err.errno) if err.errno else str(err)
        raise RRXError(f"cannot write {path}: {reason}; the previous file (if any) is unchanged") from err
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise
    return path


def write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json(path: Path, data: dict) -> Path:
    return write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_status(folder: Path, state: str, epoch: int, epochs: int, reason: str | None = None) -> None:
    write_json(
        Path(folder) / STATUS, {"state": state, "epoch": epoch, "epochs": epochs, "reason": reason, "time": time.time()}
    )


def read_status(folder: Path) -> dict | None:
    """A run folder's ``status.json``, or None when it has none (or an unreadable one)."""
    try:
        return json.loads((Path(folder) / STATUS).read_text())
    except (OSError, ValueError):
        return None


def is_temporary(name: str) -> bool:
    """Whether ``name`` is one of ``atomic_write``'s temporary files (``.<name>.<random>.tmp``) or
    ``save_checkpoint``'s links (``.<name>.<pid>.link``), left by a process killed while writing: never a result."""
    return name.startswith(".") and name.endswith((".tmp", ".link"))


def results_in(folder: Path) -> list[str]:
    """Names of the entries of ``folder`` that are some run's results (not Hydra's config, logs, the lock or a
    temporary file)."""
    if not Path(folder).is_dir():
        return []
    return sorted(
        p.name
        for p in Path(folder).iterdir()
        if p.name not in NOT_RESULTS and p.suffix != ".log" and not is_temporary(p.name)
    )


def command_of(folder: Path) -> str | None:
    """The rrx command (Hydra job) that wrote ``folder``, from the ``.hydra/hydra.yaml`` that ``record_hydra_config``
    wrote there; None where there is none or it cannot be read (an old or edited one)."""
    try:
        return str(OmegaConf.load(Path(folder) / ".hydra" / "hydra.yaml").hydra.job.name)
    except Exception:  # noqa: BLE001 - a missing, unreadable or foreign hydra.yaml
        return None


def unfinished_run_of(folder: Path, command: str) -> list[Path] | None:
    """The files of an unfinished ``rrx <command>`` in ``folder`` (killed before its ``metrics.json``: its
    ``.hydra/hydra.yaml`` names the command and it holds only files), which a rerun may replace (its log stays and
    goes on); None when the folder holds anything else."""
    folder = Path(folder)
    job = command_of(folder)
    if job is None:
        return None
    entries = [p for p in folder.iterdir() if p.name not in NOT_RESULTS and p.suffix != ".log"]  # its log goes on
    if job != command or (folder / "metrics.json").exists() or any(p.is_dir() for p in entries):
        return None
    return sorted(entries)


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
            raise RRXError(
                f"cannot lock {self.path / LOCK}: {err.strerror or err} (a file system without flock?)"
            ) from None
        try:  # unbuffered: a write that fails (a full disk) leaves nothing to flush at close
            os.ftruncate(self._file.fileno(), 0)
            os.write(self._file.fileno(), f"pid {os.getpid()} on {os.uname().nodename}\n".encode())
        except OSError as err:
            self.release()
            raise RRXError(f"cannot write {self.path / LOCK}: {err.strerror or err}") from None

    def release(self) -> None:
        if not self._file.closed:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()

    def __enter__(self) -> "RunFolder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def claim_new_folder(folder: Path, command: str, replace_unfinished: bool = False) -> RunFolder:
    """Lock ``folder`` for a run of ``command`` that writes its results fresh (evaluate, analyze, report):
    refused when the folder already holds results. With ``replace_unfinished``, the files of an unfinished run of
    the same command (``unfinished_run_of``: killed before its ``metrics.json``) are removed first, with a warning,
    so the same command run again completes it."""
    lock = RunFolder(folder)
    partial = unfinished_run_of(folder, command) if replace_unfinished else None
    if partial:
        log.warning(
            "%s holds an unfinished rrx %s (no metrics.json: killed or failed); replacing its %d files (%s)",
            folder,
            command,
            len(partial),
            ", ".join(p.name for p in partial[:5]) + (", ..." if len(partial) > 5 else ""),
        )
        for path in partial:
            path.unlink(missing_ok=True)
    found = results_in(folder)
    if found:
        lock.release()
        shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
        raise RRXError(
            f"{folder} already holds results ({shown}); rrx {command} never writes over them: give a new hydra.run.dir"
        )
    return lock


def record_hydra_config(folder: Path, cfg: DictConfig) -> None:
    """Write Hydra's ``.hydra/{config,hydra,overrides}.yaml`` for the task config ``cfg`` into ``folder``.

    The apps set ``hydra.output_subdir: null``, so Hydra does not write them itself before the folder was
    checked (it would replace another run's). Does nothing outside a Hydra app.
    """
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return
    _STARTED.add(Path(os.path.abspath(folder)))
    hydra_cfg = HydraConfig.get()
    files = {
        "config.yaml": cfg,
        "hydra.yaml": OmegaConf.create({"hydra": hydra_cfg}),
        "overrides.yaml": hydra_cfg.overrides.task,
    }
    for name, node in files.items():
        write_text(Path(folder) / ".hydra" / name, OmegaConf.to_yaml(node))


class QuietFileHandler(logging.FileHandler):
    """A command's log file, Hydra's ``<run folder>/<command>.log`` (``hydra.job_logging.handlers.file`` in
    conf/*.yaml), opened at its first record: a command that logs nothing leaves no empty file.

    A record it cannot write (a full disk, a read-only folder) turns it off with one line on stderr, where
    ``logging`` would print a traceback for every record; the console log goes on.
    """

    def __init__(self, filename: str, mode: str = "a", encoding: str | None = None, errors: str | None = None):
        super().__init__(filename, mode, encoding, delay=True, errors=errors)
        self.created = False  # whether this handler created its file (forget_unstarted_runs removes it then)
        self.failed = False

    def _open(self):
        existed = os.path.lexists(self.baseFilename)
        stream = super()._open()
        self.created = not existed
        return stream

    def emit(self, record: logging.LogRecord) -> None:
        if self.failed:
            return
        try:
            super().emit(record)
        except Exception:  # FileHandler opens the file outside the handling of write errors
            self.handleError(record)

    def handleError(self, record: logging.LogRecord) -> None:
        err = sys.exc_info()[1]
        if not isinstance(err, OSError):  # a record that cannot be formatted: logging's own report
            return super().handleError(record)
        self.failed = True
        sys.stderr.write(
            f"rrx: warning: cannot write {self.baseFilename}: {err.strerror or err}; logging to the console only\n"
        )
        stream, self.stream = self.stream, None
        if stream is not None:
            with contextlib.suppress(OSError):  # closing flushes what could not be written
                stream.close()


def log_to_files(message: str) -> None:
    """Put ``message`` (the error that ends a command, which the console gets as its last line) into the command's
    log file too, so a run folder's log says why the run ended."""
    record = logging.LogRecord("rrx", logging.ERROR, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:  # a run that did not start loses its log anyway
        if isinstance(handler, QuietFileHandler) and Path(handler.baseFilename).parent in _STARTED:
            handler.handle(record)


def _new_folders(folder: Path) -> list[Path]:
    """``folder`` and those of its parents that do not exist, deepest first."""
    missing, folder = [], folder.absolute()
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


@contextlib.contextmanager
def leave_no_trace_if_refused(args: list[str]) -> Iterator[None]:
    """Run a command so that, refused before its run started (a config value, a folder that holds other
    results, a missing file; ``record_hydra_config`` marks the start), it leaves nothing behind.

    ``args`` is the command line after the command word. The folder ``hydra.run.dir=<path>`` names is created
    here, before Hydra does, so that one that cannot be created (a read-only or full disk, a file in its path)
    is an RRXError naming it. A command that fails before its run started loses the log file it created
    (``forget_unstarted_runs``), then the folders it created if they are empty: those made here and a default
    run folder (named with this process's unique suffix). Folders made here that stay empty whatever the
    outcome (``--cfg job``) are removed too; a folder that existed before never is.
    """
    made = []
    folder = _run_dir_given(args)
    if folder is not None:
        made = _new_folders(folder)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise RRXError(f"cannot use {folder} as a run folder: {err.strerror or err}") from None
    try:
        yield
    except BaseException:
        made += forget_unstarted_runs()
        raise
    finally:
        for folder in sorted(set(made), key=lambda f: len(f.parts), reverse=True):
            with contextlib.suppress(OSError):  # only an empty folder is removed
                folder.rmdir()


def forget_unstarted_runs() -> list[Path]:
    """Close the log files of run folders whose run did not start and remove those the handlers created; returns
    the default run folders among them that this process named (to remove when empty)."""
    unstarted = []
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, QuietFileHandler)]:
        log_file = Path(handler.baseFilename)
        if log_file.parent in _STARTED:
            continue
        root.removeHandler(handler)
        handler.close()
        if handler.created:
            with contextlib.suppress(OSError):  # a folder that became read-only keeps it
                log_file.unlink(missing_ok=True)
        if any(f"-{suffix}" in log_file.parent.name for suffix in _SUFFIXES):
            unstarted.append(log_file.parent)
    return unstarted


def _run_dir_given(args: list[str]) -> Path | None:
    """The folder a single run's command line names with ``hydra.run.dir=<path>``; None for a sweep (``-m``), a
    folder left to the config, or one given by an interpolation."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    given = [a for a in args if a.lstrip("+").startswith("hydra.run.dir=")]
    if not given or {"-m", "--multirun"} & set(args):
        return None
    try:
        value = OverridesParser.create().parse_overrides(given[-1:])[0].value()
    except Exception:  # Hydra reports a malformed override
        return None
    return Path(value) if isinstance(value, str) and "${" not in value else None
