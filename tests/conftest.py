"""Shared fixtures: the real composed config, shrunk to run in seconds on a CPU."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_module

TINY = [
    "model=small_cnn",
    "model.width=8",
    "dataset.image_size=32",
    "dataset.train_per_class=8",
    "dataset.val_per_class=4",
    "trainer.epochs=1",
    "trainer.batch_size=16",
    "trainer.progress=false",
]


class Marker:
    """Unpickling it creates ``path``: what a malicious checkpoint would do instead (tests assert it never does)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    """One synthetic-benchmark cache for the whole session."""
    return tmp_path_factory.mktemp("rrx-cache")


@pytest.fixture(scope="session", autouse=True)
def _no_cache_in_home(tmp_path_factory):
    """$RRX_CACHE for every command the tests run (a checkpoint's stored cache folder is never used: without a
    dataset.cache_dir= the command's own default, ~/.cache/rrx, would fill up), and $TORCHINDUCTOR_CACHE_DIR."""
    mp = pytest.MonkeyPatch()
    mp.setenv("RRX_CACHE", str(tmp_path_factory.mktemp("rrx-default-cache")))
    # torch.compile's kernels too: a cache left in /tmp by another checkout's runs (another venv) is never read
    mp.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path_factory.mktemp("torchinductor")))
    yield
    mp.undo()


@pytest.fixture
def compose_train(cache_dir):
    """compose_train(*overrides) -> the tiny train config with ``overrides`` applied last
    (another ``model=`` drops the tiny model settings)."""

    def make(*overrides: str):
        other_model = any(o.startswith("model=") for o in overrides)
        tiny = [o for o in TINY if not (other_model and o.startswith("model"))]
        with initialize_config_module("rrx.conf", version_base="1.3"):
            return compose("train", overrides=[*tiny, f"dataset.cache_dir={cache_dir}", *overrides])

    return make
