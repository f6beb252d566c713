"""Data-parallel training (trainer.devices, Lightning Fabric): two CPU ranks (gloo) train as one process does.

Why the two runs agree: rrx's ShardedSampler gives the two ranks the two halves of each batch that one
process draws (same permutation, global batch 16 = 2 x 8), and DDP averages the two half-batch mean gradients,
which is the mean over the whole batch. ``model=mlp`` has no BatchNorm (whose batch statistics would be taken
per rank) and ``method=standard`` draws nothing at random during training. What differs is only the order of
float32 sums (a gradient is the average of two 8-image sums instead of one 16-image sum): about 1e-7
relative per step, so after 2 epochs (10 steps) the losses agree to 1e-5 and the test accuracies on 36 images
are equal, since no logit margin is that small.
"""

import json
import os

import pytest
import torch
from conftest import TINY
from fixtures.runner import one_line_error, rrx
from omegaconf import OmegaConf

import rrx.train as training
from rrx.config import check
from rrx.distributed import create_fabric
from rrx.errors import RRXError
from rrx.runtime import ShardedSampler
from rrx.settings import TrainerConfig
from rrx.signals import Stopped

# 72 training images, 2 epochs of batches of 16 (the last one 8: 4 per rank), no BatchNorm
SAME = [*[o for o in TINY if not o.startswith("model")], "model=mlp", "trainer.epochs=2"]


@pytest.fixture(scope="module")
def one_process(cache_dir, tmp_path_factory):
    """The run on one process, as the reference."""
    run = tmp_path_factory.mktemp("one") / "run"
    rrx("train", *SAME, f"dataset.cache_dir={cache_dir}", f"hydra.run.dir={run}")
    return run


def _metrics(run):
    return json.loads((run / "metrics.json").read_text())


def _max_parameter_difference(a, b):
    a, b = (torch.load(run / "checkpoint.pt", weights_only=True)["state_dict"] for run in (a, b))
    return max((a[k] - b[k]).abs().max().item() for k in a)


def _assert_same_training(metrics, reference):
    assert [e["acc"] for e in metrics["train"]["epochs"]] == [e["acc"] for e in reference["train"]["epochs"]]
    for epoch, expected in zip(metrics["train"]["epochs"], reference["train"]["epochs"]):
        assert epoch["loss"] == pytest.approx(expected["loss"], rel=1e-5)
    assert metrics["challenges"] == reference["challenges"]


@pytest.mark.slow
def test_two_cpu_ranks_train_as_one_process_and_only_rank_0_writes(one_process, cache_dir, tmp_path):
    run = tmp_path / "run"
    result = rrx("train", *SAME, "trainer.devices=2", f"dataset.cache_dir={cache_dir}", f"hydra.run.dir={run}")
    metrics, reference = _metrics(run), _metrics(one_process)
    assert metrics["train"]["devices"] == 2 and reference["train"]["devices"] == 1
    _assert_same_training(metrics, reference)
    assert _max_parameter_difference(run, one_process) < 1e-5
    # rank 0 alone wrote: one of each file, one table, one line per epoch in the log
    assert sorted(p.name for p in run.iterdir()) == sorted(p.name for p in one_process.iterdir())
    assert sorted(p.name for p in run.glob("**/*")) == sorted(p.name for p in one_process.glob("**/*"))
    assert torch.load(run / "checkpoint.pt", weights_only=True)["finished"]
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    assert (run / "train.log").read_text().count("epoch 2/2") == 1
    assert "2 ranks on cpu" in (run / "train.log").read_text() and "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_run_stopped_on_one_process_resumes_on_two_ranks(
    one_process, compose_train, cache_dir, tmp_path, monkeypatch
):
    """Every rank loads rank 0's checkpoint (here one process's) and the run ends as the uninterrupted one."""
    run, original = tmp_path / "run", training.train_epoch

    def stop_at_epoch_2(*args, **kwargs):
        if args[7] == "epoch 2":  # where
            raise Stopped("stopped by SIGTERM")
        return original(*args, **kwargs)

    monkeypatch.setattr(training, "train_epoch", stop_at_epoch_2)
    with pytest.raises(Stopped):
        training.train(compose_train("model=mlp", "trainer.epochs=2"), run)
    rrx("train", *SAME, "trainer.devices=2", f"dataset.cache_dir={cache_dir}", f"hydra.run.dir={run}")
    metrics = _metrics(run)
    assert metrics["train"]["resumed_after_epoch"] == 1 and metrics["train"]["devices"] == 2
    _assert_same_training(metrics, _metrics(one_process))
    assert _max_parameter_difference(run, one_process) < 1e-5


def test_sharded_batches_together_are_one_process_batches():
    """Rank r's k-th batch of b = B / W holds positions kB + r, kB + r + W, ... of one process's permutation;
    24 images over 4 ranks in global batches of 8 (the last 8 too), and 10 over 4 (padded to 12)."""
    for size, world, batch in ((24, 4, 8), (10, 4, 8)):
        one = list(
            torch.utils.data.BatchSampler(
                torch.utils.data.RandomSampler(range(size), generator=torch.Generator().manual_seed(0)), batch, False
            )
        )
        shards = [
            list(
                torch.utils.data.BatchSampler(
                    ShardedSampler(size, r, world, torch.Generator().manual_seed(0)), batch // world, False
                )
            )
            for r in range(world)
        ]
        assert len({len(s) for s in shards}) == 1  # every rank takes the same number of steps
        together = [sorted(i for s in shards for i in s[k]) for k in range(len(shards[0]))]
        if size % world == 0:
            assert together == [sorted(b) for b in one]
        else:
            assert {i for b in together for i in b} == set(range(size)) and sum(map(len, together)) == 12


def _trainer(**values):
    return OmegaConf.create({"device": "cpu", "devices": 1, "num_nodes": 1, "strategy": "auto", **values})


def test_bad_device_settings_are_one_error_naming_the_value(monkeypatch):
    for name in [k for k in os.environ if k.startswith("SLURM_")]:  # the suite may itself run in a SLURM job
        monkeypatch.delenv(name)
    with pytest.raises(RRXError, match="trainer.strategy=fsdp; known: auto, ddp"):  # the typed trainer's choices
        check(OmegaConf.create({"trainer": OmegaConf.merge(TrainerConfig, _trainer(strategy="fsdp"))}))
    with pytest.raises(RRXError, match=r"trainer.devices=4096 CPU processes but this node has \d+ CPU"):
        create_fabric(_trainer(devices=4096))
    with pytest.raises(
        RRXError, match="trainer.num_nodes=2 needs one process per device started on every node by SLURM"
    ):
        create_fabric(_trainer(num_nodes=2))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(
        RRXError, match=r"trainer.devices=2 but this node has 1 GPU\(s\) visible; use trainer.devices=1"
    ):
        create_fabric(_trainer(device="cuda", devices=2))
    with pytest.raises(RRXError, match="trainer.device=cuda:0 names one GPU but trainer.devices=2"):
        create_fabric(_trainer(device="cuda:0", devices=2))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("SLURM_NTASKS_PER_NODE", "1")  # hydra.launcher.tasks_per_node left at 1 with 2 devices
    with pytest.raises(RRXError, match="trainer.devices=2 but this SLURM job runs 1 task.*tasks_per_node=2"):
        create_fabric(_trainer(device="cuda", devices=2))


@pytest.mark.slow
def test_a_global_batch_the_ranks_cannot_share_is_one_line(cache_dir, tmp_path):
    result = rrx(
        "train",
        *TINY,
        "trainer.devices=2",
        "trainer.batch_size=15",
        f"dataset.cache_dir={cache_dir}",
        f"hydra.run.dir={tmp_path / 'run'}",
        check=False,
    )
    one_line_error(result, "trainer.batch_size=15 is the global batch, shared by 2 ranks", "trainer.batch_size=14")
    result = rrx("train", *TINY, "trainer.devices=0", f"hydra.run.dir={tmp_path / 'run'}", check=False)
    one_line_error(result, "trainer.devices", "0")
