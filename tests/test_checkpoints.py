"""Checkpoints that load without running code, and the dataset a checkpoint is evaluated on.

Each test fails on rrx before checkpoints were weights-only (issue 24, point 1) or before ``dataset.<key>=`` changed
only that key of a checkpoint's own dataset (point 5).
"""

import json
import os
import shutil

import numpy as np
import pytest
import torch
from conftest import TINY, Marker
from fixtures.in9 import write_in9
from fixtures.runner import one_line_error, rrx
from hydra import compose, initialize_config_module

from rrx.checkpoint import read_checkpoint
from rrx.errors import RRXError
from rrx.subject import DatasetChoice, open_subject
from rrx.train import train


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished tiny training run (Standard, synthetic 32 px) written by today's rrx."""
    folder = tmp_path_factory.mktemp("ckpt") / "run"
    cache = tmp_path_factory.mktemp("ckpt-cache")
    with initialize_config_module("rrx.conf", version_base="1.3"):
        cfg = compose("train", overrides=[*TINY, f"dataset.cache_dir={cache}"])
    train(cfg, folder)
    return folder


def _evaluate_cfg(*overrides):
    with initialize_config_module("rrx.conf", version_base="1.3"):
        return compose("evaluate", overrides=["trainer.progress=false", "challenge=original", *overrides])


def test_checkpoints_hold_only_tensors_and_plain_values(run):
    ckpt = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)  # raised before: numpy's state
    assert torch.serialization.get_unsafe_globals_in_checkpoint(run / "checkpoint.pt") == []
    kind, key, pos, *_ = ckpt["rng"]["numpy"]
    assert kind == "MT19937" and key.dtype == torch.int64 and key.shape == (624,) and isinstance(pos, int)


def test_the_random_states_round_trip_through_a_weights_only_checkpoint(tmp_path):
    from rrx.checkpoint import restore_rng_states, rng_states

    generator = torch.Generator().manual_seed(3)
    np.random.seed(7)
    torch.save(rng_states(generator), tmp_path / "rng.pt")
    expected = np.random.rand(5), torch.rand(5, generator=generator)
    np.random.seed(8)
    generator.manual_seed(4)
    restore_rng_states(torch.load(tmp_path / "rng.pt", weights_only=True), generator)
    assert np.array_equal(np.random.rand(5), expected[0]) and torch.equal(
        torch.rand(5, generator=generator), expected[1]
    )


def test_a_file_whose_unpickling_runs_code_is_refused_and_never_unpickled(tmp_path, run):
    marker = tmp_path / "marker"
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    torch.save({**ckpt, "extra": Marker(marker)}, tmp_path / "evil.pt")
    result = rrx(
        "evaluate",
        f"checkpoint={tmp_path / 'evil.pt'}",
        "challenge=original",
        f"hydra.run.dir={tmp_path / 'e'}",
        check=False,
    )
    one_line_error(result, str(tmp_path / "evil.pt"), "never unpickles")
    assert not marker.exists()
    for unpickle_older in (True, False):
        with pytest.raises(RRXError, match="never unpickles"):
            read_checkpoint(tmp_path / "evil.pt", unpickle_older)
    assert not marker.exists()


def test_a_text_file_is_refused_without_quoting_its_bytes(tmp_path):
    (tmp_path / "notes.pt").write_text("SECRET-TOKEN 1234\n")
    with pytest.raises(RRXError) as caught:
        read_checkpoint(tmp_path / "notes.pt")
    assert "not a PyTorch checkpoint" in str(caught.value) and "SECRET" not in str(caught.value)


def test_an_older_rrx_checkpoint_loads_on_the_command_line_after_a_warning(tmp_path, run):
    """What rrx wrote before: NumPy's random state as an ndarray (it needs full unpickling)."""
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    ckpt["rng"]["numpy"] = np.random.get_state()
    older = tmp_path / "older"
    older.mkdir()
    torch.save(ckpt, older / "checkpoint.pt")
    with pytest.raises(RRXError, match="older rrx and needs full unpickling"):
        read_checkpoint(older / "checkpoint.pt", unpickle_older=False)
    result = rrx(
        "evaluate",
        f"checkpoint={older}",
        "challenge=original",
        "trainer.progress=false",
        f"dataset.cache_dir={ckpt['config']['dataset']['cache_dir']}",
        f"hydra.run.dir={tmp_path / 'e'}",
    )
    warnings = [line for line in result.stderr.splitlines() + result.stdout.splitlines() if "full unpickling" in line]
    assert len(warnings) == 1 and str(older / "checkpoint.pt") in warnings[0]
    assert (tmp_path / "e" / "metrics.json").is_file()


def test_the_stored_cache_folder_never_decides_where_rrx_writes(tmp_path, run, monkeypatch):
    """A copied checkpoint names a cache folder of the machine it was trained on: $RRX_CACHE wins."""
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    stored = tmp_path / "their-cache"
    ckpt["config"]["dataset"]["cache_dir"] = str(stored)
    (tmp_path / "copy").mkdir()
    torch.save(ckpt, tmp_path / "copy" / "checkpoint.pt")
    monkeypatch.setenv("RRX_CACHE", str(tmp_path / "mine"))
    open_subject(_evaluate_cfg(f"checkpoint={tmp_path / 'copy'}"), DatasetChoice())
    assert not stored.exists()
    assert [p.name.startswith("synthetic-") for p in (tmp_path / "mine").iterdir()] == [True]


@pytest.fixture(scope="module")
def in9_run(tmp_path_factory):
    """SmallCNN trained on the IN-9 fixture at 48 px (root A), and a copy of the data elsewhere (root B)."""
    base = tmp_path_factory.mktemp("in9run")
    root = write_in9(base / "a", per_class=1)
    with initialize_config_module("rrx.conf", version_base="1.3"):
        tiny = [o for o in TINY if not o.startswith(("dataset.train_per_class", "dataset.val_per_class"))]
        cfg = compose(
            "train",
            overrides=[
                *tiny,
                "dataset=in9",
                f"dataset.root={root}",
                "dataset.image_size=48",
                "dataset.num_workers=0",
                "challenge=original",
            ],
        )
    train(cfg, base / "run")
    shutil.copytree(root, base / "b")
    return base / "run", base / "b"


def test_a_dataset_key_changes_that_key_of_the_checkpoints_own_dataset(in9_run, tmp_path):
    folder, other_root = in9_run
    out = tmp_path / "eval"
    rrx(
        "evaluate",
        f"checkpoint={folder}",
        f"dataset.root={other_root}",
        "challenge=original",
        "trainer.progress=false",
        f"hydra.run.dir={out}",
    )
    assert json.loads((out / "metrics.json").read_text())["run"]["dataset"] == "in9"  # was synthetic, at 64 px
    subject = open_subject(
        _evaluate_cfg(f"checkpoint={folder}", f"dataset.root={other_root}"), DatasetChoice(keys=("root",))
    )
    assert (subject.dataset.name, subject.dataset.image_size) == ("in9", 48)
    assert os.path.samefile(subject.dataset.root, other_root)


def test_choosing_a_dataset_takes_the_commands_dataset(in9_run):
    folder, other_root = in9_run
    cfg = _evaluate_cfg(f"checkpoint={folder}", "dataset=in9", f"dataset.root={other_root}", "dataset.image_size=32")
    subject = open_subject(cfg, DatasetChoice(group=True, keys=("root", "image_size")))
    assert (subject.dataset.name, subject.dataset.image_size) == ("in9", 32)
