"""Writes tests/data/before_typed_configs: unfinished runs of today's rrx (before the typed configs), and the
numbers their uninterrupted runs record."""

import json
import shutil
from pathlib import Path

from hydra import compose, initialize_config_module

import rrx.train
from rrx.signals import Stopped
from rrx.train import train

OUT = Path("/work/main/tests/data/before_typed_configs")
TINY = [
    "model=small_cnn",
    "model.width=8",
    "dataset.image_size=32",
    "dataset.train_per_class=8",
    "dataset.val_per_class=4",
    "trainer.batch_size=16",
    "trainer.progress=false",
    "challenge=original",
]
RUNS = {
    "ada": [
        *TINY,
        "method=ada",
        "method.standard_epochs=1",
        "method.cycles=1",
        "method.ada_epochs=1",
        "method.window=8",
        "method.attribution=gradcam",
        "seed=2",
    ],
    "rrda": [*TINY, "method=rrda", "trainer.epochs=2", "seed=2"],
}
expected = {"overrides": RUNS}
tmp = Path("/tmp/fixture_runs")
shutil.rmtree(tmp, ignore_errors=True)
for name, overrides in RUNS.items():
    with initialize_config_module("rrx.conf", version_base="1.3"):
        cfg = compose("train", overrides=[*overrides, f"dataset.cache_dir={tmp}/cache"])
    whole = train(cfg, tmp / f"{name}_whole")
    expected[name] = {
        "history": [{k: h[k] for k in ("epoch", "loss", "acc")} for h in whole["train"]["epochs"]],
        "challenges": whole["challenges"],
    }
    original, calls = rrx.train.train_epoch, []

    def stop(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise Stopped("stopped by SIGTERM")
        return original(*a, **k)

    rrx.train.train_epoch = stop
    try:
        train(cfg, tmp / name)
    except Stopped:
        pass
    rrx.train.train_epoch = original
    shutil.copy(tmp / name / "checkpoint.pt", OUT / f"{name}_epoch1.pt")
(OUT / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
print(json.dumps(expected, indent=1)[:2000])
