"""Training checkpoints that say what they are, and the run folder they live in.

``checkpoint.pt`` is written atomically after every epoch; the one it replaces stays as ``checkpoint.prev.pt``,
which a resume uses (and logs) when ``checkpoint.pt`` cannot be read. It holds the model, optimizer and scheduler
states, the epoch and step, every random state (torch, CUDA, NumPy, Python, the run's generator that
shuffles batches and pairs RRDA images), the method's state (ADA's erased windows), the per-epoch history,
the training class names, and ``finished``: true only once the last epoch and the evaluation are done.
``status.json`` beside it (``rrx.outputs.write_status``) says in a few bytes what the run is doing
(running, stopped and why, finished), so ``rrx report`` need not load checkpoints.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import pickle
import random
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, cast

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from rrx.errors import RRXError, one_line_reason
from rrx.fills import OLD_SPELLINGS
from rrx.guard import all_finite
from rrx.outputs import ERROR, STATUS, RunFolder, atomic_write, results_in, write_status
from rrx.record import FILE as METRICS
from rrx.record import Record
from rrx.signals import Stopped

log = logging.getLogger(__name__)
CHECKPOINT = "checkpoint.pt"
PREVIOUS = "checkpoint.prev.pt"  # the epoch before CHECKPOINT's, kept for a CHECKPOINT that cannot be read
RETRIABLE = {
    STATUS,
    ERROR,
}  # a folder holding only these (a run that failed or died before its first epoch) starts afresh
RESUME_RULES = ("auto", "never")  # trainer.resume
# Keys that may differ between the attempts of one run: where things are, how they are shown, how fast (the ranks
# of data-parallel training share each global batch, so a run preempted on 4 GPUs may go on on 2), and how an
# ImageNet-1k model would be scored (dataset.label_map, not used in training).
SAME_RUN_IGNORES = (
    "trainer.progress",
    "trainer.resume",
    "trainer.device",
    "trainer.devices",
    "trainer.num_nodes",
    "trainer.strategy",
    "trainer.channels_last",
    "trainer.compile",
    "dataset.root",
    "dataset.cache_dir",
    "dataset.meta_dir",
    "dataset.num_workers",
    "dataset.preload_gb",
    "dataset.label_map",
)
SAME_RUN_IGNORES_PREFIXES = ("logger.",)  # where a run is tracked changes nothing it computes
# Keys a later rrx added, each with the value that means what a run saved before it did: a checkpoint whose config
# lacks one reads as having this value, so an unfinished run of an older rrx still resumes.
ADDED_KEYS = {
    "task": "classification",
    "dataset.augment": "none",
    "dataset.augment_scale": [0.35, 1.0],
    "dataset.augment_ratio": [0.75, 1.3333],
    "mask.name": "labelled",  # the mask sources (issue 29): before them every run trained on the labelled masks
}
# Keys a later rrx renamed (issue 27: one key, one meaning), each with its new name and the new spelling of its old
# values (a value not listed keeps its spelling): a checkpoint's config reads in today's keys, so its run resumes and
# its model rebuilds. A key today's component does not have at all (``method.lam`` of ``method=standard``, which
# weighed nothing) is not compared: it never had an effect.
RENAMED_KEYS: dict[str, tuple[str, dict]] = {
    "method.ipha_constant": ("method.ipha_fill", OLD_SPELLINGS),  # IPHA's C in the one fill vocabulary
    "dataset.augment": ("dataset.augment", {True: "crop_flip", False: "none"}),
    "model.timm_name": ("model.arch", {}),  # vit_b16 and vit_test are presets of model=timm
}


def renamed(flat: dict) -> dict:
    """A flat config (``{"method.lam": 1.0, ...}``) of any rrx in today's keys and spellings (``RENAMED_KEYS``)."""
    out = dict(flat)
    for old, (new, values) in RENAMED_KEYS.items():
        if old in out:
            value = out.pop(old)
            out[new] = values.get(value, value) if isinstance(value, (str, bool, int, float)) else value
    return out


def upgrade_saved_config(saved: dict) -> dict:
    """A checkpoint's nested config in today's keys: renamed (``RENAMED_KEYS``), and without the keys the typed config
    of its component no longer has (they had no effect), so the component rebuilds from it."""
    from rrx.config import GROUPS, config_class

    flat = renamed(flat_config(saved))
    nested: dict = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    for group in GROUPS:
        found = nested.get(group)
        if not isinstance(found, dict):
            continue
        schema = config_class(group, OmegaConf.create(found))
        if schema is not None:
            known = {f.name for f in dataclasses.fields(schema)}
            nested[group] = {k: v for k, v in found.items() if k in known}
    return nested


def saved_config(saved: dict, upgrade: Callable[[dict], dict] | None = None) -> DictConfig:
    """A checkpoint's config to rebuild its run from: the task's ``upgrade`` first (an older loop's layout), then
    today's keys (``upgrade_saved_config``), each component's node typed (``rrx.config.typed``: the keys it lacks
    take today's defaults)."""
    from rrx.config import GROUPS, typed

    cfg = OmegaConf.create(upgrade_saved_config(saved if upgrade is None else upgrade(saved)))
    for group in GROUPS:
        if isinstance(cfg.get(group), DictConfig):
            cfg[group] = typed(group, cfg[group])
    return cfg


def rng_states(generator: torch.Generator) -> dict:
    """Every random state, as tensors and plain values only (a checkpoint loads with ``weights_only=True``):
    NumPy's MT19937 key is kept as an int64 tensor, Python's state as its tuple of ints."""
    # the legacy state (the default): a tuple, never the dict of get_state(legacy=False)
    kind, key, pos, has_gauss, gauss = cast(tuple[str, np.ndarray, int, int, float], np.random.get_state())
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "numpy": (kind, torch.from_numpy(key.astype(np.int64)), int(pos), int(has_gauss), float(gauss)),
        "python": random.getstate(),
        "generator": generator.get_state(),
    }


def restore_rng_states(states: dict, generator: torch.Generator) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    kind, key, *rest = states["numpy"]  # key: a tensor, or the ndarray of a checkpoint written before rrx 0.x
    np.random.set_state((kind, np.asarray(key, dtype=np.uint32), *rest))
    random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in states["python"]))
    generator.set_state(states["generator"])


class Stateful(Protocol):
    """What saves and restores its state as a dict: a scheduler, a method."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


@dataclass
class TrainingParts:
    """What a checkpoint saves and a resume restores besides the run's identity: the model, optimizer,
    scheduler (or None), the method's state and every random state including ``generator``'s."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Stateful | None
    method: Stateful
    generator: torch.Generator

    def state_dict(self) -> dict:
        return {
            "state_dict": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "method": self.method.state_dict(),
            "rng": rng_states(self.generator),
        }

    def load_state_dict(self, ckpt: dict) -> None:
        self.model.load_state_dict(ckpt["state_dict"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        self.method.load_state_dict(ckpt["method"])
        restore_rng_states(ckpt["rng"], self.generator)


def record_stop(folder: Path, err: BaseException, saved: int, epochs: int) -> None:
    """Log why a run stopped and put it into ``status.json``, with the epoch the checkpoint keeps; a
    ``status.json`` that cannot be written (a full disk) is logged and left as it was, so that ``err`` stays
    the error the run reports."""
    kept = f"checkpoint.pt keeps epoch {saved} of {epochs}" if saved else "no epoch finished, no checkpoint"
    resumable = "; run the same command again to resume" if isinstance(err, (KeyboardInterrupt, Stopped)) else ""
    reason = f"{one_line_reason(err)} ({kept}{resumable})"
    log.error("run stopped: %s", reason)
    try:
        write_status(folder, "stopped", saved, epochs, reason)
    except RRXError as unwritten:
        log.error("%s not updated: %s", STATUS, unwritten)


def save_checkpoint(path: Path, payload: dict) -> None:
    """Write ``payload`` atomically; refuses non-finite parameters (a checkpoint on disk is always usable).

    The checkpoint it replaces becomes ``checkpoint.prev.pt`` (a hard link, swapped in atomically, so some
    checkpoint is on disk at every moment); a failed write (a full disk) leaves both as they were and is an
    RRXError naming ``path``, also where torch reports it as a RuntimeError.
    """
    if not all_finite(payload["state_dict"].values()):
        raise RRXError(f"refusing to save {path}: the parameters are not finite")
    path = Path(path)
    if path.is_file():
        previous = path.with_name(PREVIOUS)
        try:
            link = previous.with_name(f".{PREVIOUS}.{os.getpid()}.link")
            link.unlink(missing_ok=True)
            os.link(path, link)
            os.replace(link, previous)
        except OSError:  # a file system without hard links: a copy
            atomic_write(previous, lambda tmp: tmp.write_bytes(path.read_bytes()))

    def write(tmp: Path) -> None:
        try:
            torch.save(payload, tmp)
        except RuntimeError as err:  # torch's zip writer says only that a write failed; no block left: a full disk
            if os.statvfs(tmp.parent).f_bavail == 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)) from err
            raise OSError(f"torch.save failed: {one_line_reason(err)}") from err

    atomic_write(path, write)


# What a checkpoint of an rrx before weights-only checkpoints holds besides tensors and plain values: NumPy's random
# state as an ndarray. Only such a file is read with full unpickling, and only when the caller allows it (the CLI).
OLDER_RRX_GLOBALS = {
    "numpy.dtype",
    "numpy.ndarray",
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
}
OLDER_RRX_GLOBALS |= {f"numpy.dtypes.{name}DType" for name in ("UInt32", "Int64", "Float64")}


def read_checkpoint(file: Path, unpickle_older: bool = True) -> dict:
    """The checkpoint dict in ``file``, read with ``torch.load(weights_only=True)``: tensors and plain Python values
    only, so reading a file never runs code from it.

    A checkpoint written by an rrx before that (its NumPy random state is an ndarray, ``OLDER_RRX_GLOBALS``) is read
    with full unpickling after a one-line warning naming the file, when ``unpickle_older`` (the command line); the
    Inspector's page passes False and never does. Anything else is an RRXError naming the file; its message never
    quotes the file's bytes (the Inspector shows it in the page).
    """
    file = Path(file)
    if not zipfile.is_zipfile(file):  # torch.save has written zip archives since torch 1.6; rrx never wrote another
        raise RRXError(f"cannot read checkpoint {file}: it is not a PyTorch checkpoint file")
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        pass  # objects other than tensors and plain values: examined below, without unpickling them
    except Exception as err:  # torch raises several types for a damaged archive
        raise RRXError(f"cannot read checkpoint {file}: a damaged PyTorch checkpoint ({type(err).__name__})") from None
    try:
        found = set(torch.serialization.get_unsafe_globals_in_checkpoint(file))
    except Exception:  # noqa: BLE001 - a damaged archive
        found = {"?"}
    if found - OLDER_RRX_GLOBALS:
        shown = ", ".join(sorted(found - OLDER_RRX_GLOBALS)[:3])
        raise RRXError(
            f"cannot read checkpoint {file}: it holds Python objects ({shown}), not only tensors and plain "
            "values, and rrx never unpickles those"
        )
    if not unpickle_older:
        raise RRXError(
            f"cannot read checkpoint {file} here: it was written by an older rrx and needs full unpickling; "
            "open it from the command line"
        )
    log.warning(
        "%s was written by an older rrx: reading it with full unpickling (weights_only=False), which can run "
        "code; load only files you trust",
        file,
    )
    try:
        return torch.load(file, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001
        raise RRXError(f"cannot read checkpoint {file}: a damaged PyTorch checkpoint ({type(err).__name__})") from None


def describe(ckpt: dict) -> str:
    """``finished``, ``unfinished (epoch 2 of 4)``, or ``from an older rrx (no epoch count)``."""
    if "finished" not in ckpt:
        return "from an older rrx (no epoch count)"
    return "finished" if ckpt["finished"] else f"unfinished (epoch {ckpt['epoch']} of {ckpt['epochs']})"


def flat_config(cfg: dict, prefix: str = "") -> dict:
    """A nested config as ``{"method.lam": 100.0, ...}``."""
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        out.update(flat_config(value, f"{name}.") if isinstance(value, dict) else {name: value})
    return out


def config_differences(saved: dict, cfg: DictConfig, upgrade: Callable[[dict], dict] | None = None) -> list[str]:
    """The keys (``key: saved -> now``) whose values differ between a checkpoint's config and ``cfg``; what names
    a run first (``model.name``, ``method.name``, ``dataset.name``, ...), then the rest in order. ``upgrade`` (the
    task's ``upgrade_config``) says first what a config of an older rrx means in today's keys."""
    new = flat_config(cast(dict, OmegaConf.to_container(cfg, resolve=True)))
    saved = saved if upgrade is None else upgrade(saved)
    old = {**{k: v for k, v in ADDED_KEYS.items() if k in new}, **renamed(flat_config(saved))}
    from rrx.config import GROUPS

    def dropped(key: str) -> bool:
        """A key of a component that today's typed config of the same component no longer has (RENAMED_KEYS)."""
        group = key.split(".", 1)[0]
        return key not in new and group in GROUPS and old.get(f"{group}.name") == new.get(f"{group}.name")

    keys = sorted(
        (k for k in set(old) | set(new) if k not in SAME_RUN_IGNORES and not k.startswith(SAME_RUN_IGNORES_PREFIXES)),
        key=lambda k: (not k.endswith(".name"), k),
    )
    keys = [k for k in keys if not dropped(k)]
    return [f"{k}: {old.get(k)} -> {new.get(k)}" for k in keys if old.get(k) != new.get(k)]


def read_latest(out_dir: Path) -> tuple[dict, Path]:
    """The newest readable checkpoint of a run folder and its file: ``checkpoint.pt``, or, when that cannot be
    read (a disk error, a copy cut short), ``checkpoint.prev.pt`` with a warning; when neither can be read, one
    RRXError naming both."""
    file, previous = out_dir / CHECKPOINT, out_dir / PREVIOUS
    try:
        return read_checkpoint(file), file
    except RRXError as err:
        if not previous.is_file():
            raise
        log.warning("%s; resuming from the previous epoch's %s", err, previous)
        try:
            return read_checkpoint(previous), previous
        except RRXError as err_previous:
            raise RRXError(f"{err}, and {err_previous}; give a new hydra.run.dir") from err_previous


@dataclass
class OpenRun:
    """A locked training folder: ``checkpoint`` to resume from (None for a new run) read from ``file``,
    ``metrics``, its record, when finished."""

    folder: RunFolder | None
    checkpoint: dict | None = None
    metrics: Record | None = None
    file: Path | None = None


def open_run(out_dir: Path, cfg: DictConfig, upgrade: Callable[[dict], dict] | None = None) -> OpenRun:
    """Lock ``out_dir`` for training ``cfg``: a new run, the same run to resume, or the same run already finished.

    Refused (RRXError) when another process holds the folder, when it holds results of another run
    (a different config, or files without a checkpoint), or when ``trainer.resume=never`` and it holds
    an unfinished run.
    """
    folder = RunFolder(out_dir)
    try:
        run = examine_run(out_dir, cfg, upgrade)
    except BaseException:
        folder.release()
        raise
    run.folder = folder
    unreadable = out_dir / CHECKPOINT
    if run.file is not None and run.file.name == PREVIOUS and unreadable.is_file():  # aside: never linked as previous
        os.replace(unreadable, unreadable.with_name(f"{CHECKPOINT}.unreadable"))
    return run


def examine_run(out_dir: Path, cfg: DictConfig, upgrade: Callable[[dict], dict] | None = None) -> OpenRun:
    """What ``open_run`` finds in ``out_dir``, without the lock (``folder`` None): what a rank other than
    rank 0 reads of the folder rank 0 holds."""
    run = OpenRun(None)
    found = results_in(out_dir)
    if not set(found) - RETRIABLE:
        return run
    if not (out_dir / CHECKPOINT).is_file() and not (out_dir / PREVIOUS).is_file():
        raise RRXError(
            f"{out_dir} already holds results of another run ({', '.join(found[:5])}); give a new hydra.run.dir"
        )
    ckpt, file = read_latest(out_dir)
    differences = config_differences(ckpt.get("config", {}), cfg, upgrade)
    if differences:
        shown = "; ".join(differences[:3]) + ("; ..." if len(differences) > 3 else "")
        raise RRXError(f"{out_dir} holds another run (its config differs: {shown}); give a new hydra.run.dir")
    if ckpt.get("finished") and (out_dir / METRICS).is_file():
        run.metrics = Record.read(out_dir / METRICS)
        return run
    if "finished" not in ckpt:
        raise RRXError(
            f"{out_dir} holds a checkpoint {describe(ckpt)} that cannot be resumed; give a new hydra.run.dir"
        )
    if cfg.trainer.resume == "never":
        raise RRXError(
            f"{out_dir} holds an {describe(ckpt)} run; resume it with trainer.resume=auto or give a new hydra.run.dir"
        )
    run.checkpoint, run.file = ckpt, file
    return run


def load_checkpoint(path: str, unpickle_older: bool = True, segmentation: bool = False) -> tuple[dict, Path]:
    """Read ``path`` (a ``.pt`` file or a run folder holding ``checkpoint.pt``) with ``read_checkpoint`` (weights only;
    an older rrx's checkpoint with full unpickling only when ``unpickle_older``); refuses non-finite parameters, and
    a ``task=segmentation`` checkpoint unless ``segmentation`` (``rrx evaluate`` re-scores one; analyze and the
    Inspector read classifiers)."""
    if path in (None, "", "???"):
        raise RRXError(
            "evaluate needs checkpoint=<run folder or .pt file>, or model=<name> for an off-the-shelf or "
            "zero-shot model (e.g. model=timm model.arch=resnet50 model.pretrained=true, model=clip)"
        )
    file = Path(path).expanduser()
    if file.is_dir():
        file = file / CHECKPOINT
    if not file.is_file():
        raise RRXError(
            f"checkpoint={path}: {file} does not exist (give a run folder with checkpoint.pt, or a .pt file)"
        )
    ckpt = read_checkpoint(file, unpickle_older)
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "config" not in ckpt:
        raise RRXError(f"checkpoint={path}: {file} is not an rrx checkpoint (no state_dict/config)")
    if ckpt.get("task") == "segmentation" and not segmentation:
        raise RRXError(
            f"checkpoint={path}: {file} is a task=segmentation run, and this command reads classifiers; "
            "score it again with rrx evaluate checkpoint=<its folder>"
        )
    bad = [name for name, t in ckpt["state_dict"].items() if t.is_floating_point() and not all_finite([t])]
    if bad:
        raise RRXError(f"checkpoint={path}: {file} has non-finite parameters ({', '.join(bad[:3])}); its run diverged")
    return ckpt, file
