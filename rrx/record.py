"""A run's record: what ``rrx train``, ``rrx evaluate`` and ``rrx analyze`` found, typed and versioned.

``metrics.json`` is a ``Record``'s serialisation (``Record.write``, ``Record.read``). Every command builds one and
everything that reads results (resume, ``rrx report``, the tables of a run's folder) reads one. Files of an older
format still read: ``Record.from_dict`` upgrades them (``UPGRADES``).

The sections:

- ``run``: what names the model in the tables (architecture, method, dataset, seed, lambda, ...).
- ``challenges``: each challenge's results under its own keys (``accuracy``, ``bg_gap``, ``edge``, ``snr``, ...),
  owned and read by the challenge's module (its ``TABLES`` and ``FIGURES``).
- ``analyses``: ``{analysis name: {settings key: result}}`` (``rrx analyze``).
- ``train``: the training's epochs, images and wall time (training runs; a segmentation evaluation keeps the run's).
- ``data``: what was skipped as unreadable.
- ``provenance``: the code, libraries, weights, device, command line and times behind the numbers
  (``rrx.provenance.collect``; files written before it have none).
- ``sections``: a task's or a command's own blocks, serialised at the top level under their names: ``segmentation``
  (the forks' results), ``analysis`` (the analysis's settings and timing), ``model`` (an off-the-shelf model).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from rrx.errors import RRXError
from rrx.outputs import write_json

RECORD_VERSION = 2
FILE = "metrics.json"
COMMANDS = ("train", "evaluate", "analyze")
# version -> what changed from the version before; a file without ``version`` is version 1
UPGRADES = {2: "the record names its version, command and task; older files: inferred from their sections"}


@dataclass
class Record:
    """One run's results. ``source`` and ``checkpoint_path`` are where ``rrx report`` read it, ``merged`` the
    evaluations it added to it (``rrx.report.collect.merge_evaluations``); ``predictions`` the per-image predictions
    the command writes beside it (``rrx.predictions``); none of these is in ``metrics.json``."""

    command: str
    run: dict
    task: str = "classification"
    challenges: dict = field(default_factory=dict)
    analyses: dict = field(default_factory=dict)
    train: dict | None = None
    data: dict = field(default_factory=dict)
    checkpoint: str | None = None  # the checkpoint a run wrote (its file name) or read (an absolute path)
    checkpoint_state: dict | None = None  # whether the checkpoint read had finished, and its epochs
    started: float | None = None  # Unix times; with ``finished``, a training run's wall time with data and evaluation
    finished: float | None = None
    sections: dict = field(default_factory=dict)
    provenance: dict | None = None
    version: int = RECORD_VERSION
    source: str | None = field(default=None, compare=False)
    checkpoint_path: str | None = field(default=None, compare=False)
    merged: list[Record] = field(default_factory=list, compare=False)  # evaluations rrx report added to this run
    predictions: Any = field(default=None, compare=False)  # a pandas DataFrame: predictions.parquet (rrx.predictions)

    def __post_init__(self) -> None:
        if self.command not in COMMANDS:
            raise ValueError(f"Record.command={self.command!r}: one of {', '.join(COMMANDS)}")

    @property
    def dataset(self) -> str:
        return self.run["dataset"]

    @property
    def evaluated_unfinished(self) -> bool:
        """Whether the checkpoint behind these results had not finished training."""
        return (self.checkpoint_state or {}).get("finished") is False

    def to_dict(self) -> dict:
        """The ``metrics.json`` form: the sections at the top level, empty optional ones left out."""
        out = {
            "version": self.version,
            "command": self.command,
            "task": self.task,
            "run": self.run,
            "challenges": self.challenges,
        }
        if self.analyses:
            out["analyses"] = self.analyses
        for name in ("train", "checkpoint", "checkpoint_state", "started", "finished"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        out["data"] = self.data
        if self.provenance is not None:
            out["provenance"] = self.provenance
        return out | self.sections

    # the metrics.json view, read-only, for code (and tests) written against the file: record["challenges"] is
    # record.to_dict()["challenges"]; rrx itself reads the attributes
    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __contains__(self, key: str) -> bool:
        return key in self.to_dict()

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)

    @classmethod
    def from_dict(cls, data: dict) -> Record:
        """A record from its ``metrics.json`` form, of this version or an older one (``UPGRADES``)."""
        version = data.get("version", 1)
        if not isinstance(version, int) or version > RECORD_VERSION:
            raise RRXError(
                f"a record of version {version!r}: written by a newer rrx (this one reads up to "
                f"{RECORD_VERSION}); upgrade rrx"
            )
        missing = [key for key in ("run", "challenges") if key not in data]
        if missing:
            raise RRXError(f"no {' or '.join(missing)}")
        known = {
            f.name
            for f in fields(cls)
            if f.name not in ("source", "checkpoint_path", "merged", "predictions", "sections")
        }
        values = {k: v for k, v in data.items() if k in known}
        sections = {k: v for k, v in data.items() if k not in known}
        if version == 1:  # no command or task: what the sections say
            values["command"] = (
                "analyze"
                if "analyses" in data
                else "train"
                if "train" in data and "checkpoint_state" not in data
                else "evaluate"
            )
            values["task"] = data["run"].get("task", "classification")
            values["version"] = RECORD_VERSION
        return cls(**values, sections=sections)

    def write(self, folder: Path) -> Path:
        return write_json(Path(folder) / FILE, self.to_dict())

    @classmethod
    def read(cls, path: Path) -> Record:
        """The record in ``path`` (a ``metrics.json`` or its folder); an unreadable one is an ``RRXError`` naming it."""
        path = Path(path)
        if path.is_dir():
            path = path / FILE
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as err:
            raise RRXError(f"{path}: not a readable rrx record ({err})") from err
        except RRXError as err:
            raise RRXError(f"{path}: {err}") from err
