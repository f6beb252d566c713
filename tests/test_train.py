"""The training task in-process on the tiny config: outputs, repeatability, RRDA path, NaN stop."""

import json
from pathlib import Path

import pytest
import torch
from fixtures.runner import one_line_error, rrx
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from rrx.config import check, explain
from rrx.errors import RRXError
from rrx.methods.standard import Standard
from rrx.train import train

CONF = Path(__file__).resolve().parents[1] / "conf"


def test_train_writes_checkpoint_metrics_and_table(compose_train, tmp_path):
    metrics = train(compose_train(), tmp_path)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["challenges"] == metrics["challenges"]
    assert set(saved["challenges"]["accuracy"]) == {"original", "mixed_same", "mixed_rand", "mixed_next"}
    acc = saved["challenges"]["accuracy"]
    assert saved["challenges"]["bg_gap"] == pytest.approx(acc["mixed_same"] - acc["mixed_rand"])
    assert saved["run"]["architecture"] == "SmallCNN" and saved["run"]["method"] == "Standard"
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert ckpt["config"]["model"]["name"] == "small_cnn" and "backbone.fc.weight" in ckpt["state_dict"]
    assert {p.name for p in tmp_path.glob("table5.*")} == {"table5.csv", "table5.md", "table5.tex"}


def test_same_seed_same_run_on_cpu(compose_train, tmp_path):
    a = train(compose_train("method=rrda", "seed=3"), tmp_path / "a")
    b = train(compose_train("method=rrda", "seed=3"), tmp_path / "b")
    c = train(compose_train("method=rrda", "seed=4"), tmp_path / "c")
    assert a["train"]["epochs"][0]["loss"] == b["train"]["epochs"][0]["loss"]
    assert a["challenges"] == b["challenges"]
    assert a["train"]["epochs"][0]["loss"] != c["train"]["epochs"][0]["loss"]


def test_rrda_doubles_the_training_batch(compose_train, tmp_path, monkeypatch):
    sizes = []
    original_loss = Standard.loss

    def spy(self, model, x, y, mask):
        sizes.append((x.shape[0], None if mask is None else mask.shape[0]))
        return original_loss(self, model, x, y, mask)

    monkeypatch.setattr(Standard, "loss", spy)
    metrics = train(compose_train("method=rrda"), tmp_path)
    assert metrics["run"]["method"] == "Standard + RRDA"
    assert sizes[0] == (32, 32)  # batch of 16 plus 16 RRDA images, with masks
    sizes.clear()
    train(compose_train("method=rrda", "method.pairing=alg3", "method.fill=tile"), tmp_path / "alg3")
    assert sizes[0] == (48, 48)  # batch of 16 plus Alg. 3's 2 x 16 RRDA images


def test_unknown_rrda_pairing_stops_before_training(compose_train, tmp_path):
    with pytest.raises(RRXError, match="method.pairing=pairs; known: alg3, matching"):
        train(compose_train("method=rrda", "method.pairing=pairs"), tmp_path)
    assert not (tmp_path / "checkpoint.pt").exists()


def test_nan_in_a_later_epoch_keeps_the_last_good_checkpoint(compose_train, tmp_path, monkeypatch):
    calls = {"n": 0}
    original_loss = Standard.loss

    def nan_from_epoch_two(self, model, x, y, mask):
        calls["n"] += 1
        loss, logs = original_loss(self, model, x, y, mask)
        return (loss * float("nan") if calls["n"] > 5 else loss), logs  # 72 images / 16 = 5 steps per epoch

    monkeypatch.setattr(Standard, "loss", nan_from_epoch_two)
    with pytest.raises(RRXError, match="loss is nan at epoch 2, step 6"):
        train(compose_train("trainer.epochs=2"), tmp_path)
    assert (tmp_path / "checkpoint.pt").is_file()  # epoch 1's


def test_unknown_scheduler_is_named(compose_train, tmp_path):
    with pytest.raises(RRXError, match="trainer.scheduler=linear; known: cosine, none"):
        train(compose_train("trainer.scheduler=linear"), tmp_path)


@pytest.mark.parametrize("model", ["small_cnn", "vit_test"])
@pytest.mark.parametrize("method", ["rrr", "gradmask", "actdiff", "actdiff_rrda", "ada"])
def test_every_method_trains_end_to_end(compose_train, tmp_path, method, model):
    overrides = [f"method={method}", "challenge=original", "optimizer.lr=0.01"]
    if method == "ada":
        overrides += ["method.standard_epochs=1", "method.ada_epochs=1", "method.window=4"]
    if model == "vit_test":
        overrides.append("model=vit_test")
    metrics = train(compose_train(*overrides), tmp_path)
    assert metrics["train"]["epochs"][0]["loss"] > 0
    labels = {
        "rrr": "RRR",
        "gradmask": "GradMask",
        "actdiff": "ActDiff",
        "actdiff_rrda": "ActDiff + RRDA",
        "ada": "ADA",
    }
    assert metrics["run"]["method"] == labels[method]
    if method == "ada":  # 1 standard epoch, then 1 cycle of 1 epoch on originals plus ADA images
        assert len(metrics["train"]["epochs"]) == 2


def test_compile_setting_skips_double_backprop_and_needs_a_compiler_on_cpu(compose_train, monkeypatch, caplog):
    """trainer.compile=false leaves the model alone; true compiles it, except for a double-backprop method (warned);
    on a CPU without a C++ compiler it stops with the setting named."""
    import shutil

    from rrx.models import create_model
    from rrx.runtime import Runtime

    net = create_model(compose_train().model, 9, [0.5] * 3, [0.25] * 3)
    off = Runtime.from_config(compose_train().trainer, compose_train().dataset)
    on = Runtime.from_config(compose_train("trainer.compile=true").trainer, compose_train().dataset)
    assert not off.compile and on.compile
    assert off.compiled(net, False, "Standard") is net
    with caplog.at_level("WARNING", logger="rrx.runtime"):
        assert on.compiled(net, True, "RRR") is net
    assert "RRR differentiates input gradients" in caplog.text
    assert isinstance(on.compiled(net, False, "Standard"), torch._dynamo.eval_frame.OptimizedModule)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RRXError, match="trainer.compile=true on a CPU needs a C\\+\\+ compiler"):
        on.compiled(net, False, "Standard")


@pytest.mark.slow
def test_compiled_training_matches_eager_training(compose_train, tmp_path, monkeypatch):
    """trainer.compile=true trains through torch.compile the same model as eager training, up to the compiler's float
    rounding: the loss of each epoch within 1e-4 and accuracies within 2 points (on the tiny config, 2 epochs); the
    checkpoint's keys are the eager model's (no ``_orig_mod.`` prefix), so evaluation and resume read it
    as any other."""
    settings = ("trainer.epochs=2", "challenge=original")
    eager = train(compose_train(*settings), tmp_path / "eager")
    compile_calls, compile = [], torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, **kw: compile_calls.append(model) or compile(model, **kw))
    compiled = train(compose_train(*settings, "trainer.compile=true"), tmp_path / "compiled")
    assert compile_calls  # rrx's call, and Fabric's setup re-applies it to the module it wraps
    for a, b in zip(eager["train"]["epochs"], compiled["train"]["epochs"]):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-4)
    assert compiled["challenges"]["accuracy"] == pytest.approx(eager["challenges"]["accuracy"], abs=0.02)
    state = torch.load(tmp_path / "compiled" / "checkpoint.pt", weights_only=True)["state_dict"]
    assert not any("_orig_mod" in k for k in state)


def test_arrr_run_reports_adversarial_accuracy(compose_train, tmp_path):
    metrics = train(compose_train("method=rrr", "attack=fgsm", "challenge=original", "optimizer.lr=0.01"), tmp_path)
    assert metrics["run"]["method"] == "RRR + FGSM"
    assert 0 <= metrics["challenges"]["adversarial_accuracy"]["original"] <= 1
    assert (tmp_path / "table9.csv").is_file()


def test_channels_last_placement_follows_the_setting_and_the_method(compose_train):
    """trainer.channels_last=true: convolution weights channels-last, except for double backprop
    on a CPU (slower there);
    auto is off on a CPU; a lazy model (mlp) is left as it is."""
    from torch.nn.parameter import is_lazy

    from rrx.models import create_model
    from rrx.runtime import Runtime

    def conv_weight(setting, double_backprop, model="small_cnn"):
        cfg = compose_train(f"trainer.channels_last={setting}", f"model={model}")
        runtime = Runtime.from_config(cfg.trainer, cfg.dataset)
        net = runtime.place(create_model(cfg.model, 9, [0.5] * 3, [0.25] * 3), double_backprop)
        weights = [p for p in net.parameters() if not is_lazy(p) and p.dim() == 4]
        return weights[0] if weights else None

    assert conv_weight("true", False).is_contiguous(memory_format=torch.channels_last)
    assert not conv_weight("true", False).is_contiguous()
    assert conv_weight("true", True).is_contiguous()
    assert conv_weight("auto", False).is_contiguous()
    assert conv_weight("true", False, model="mlp") is None
    with pytest.raises(RRXError, match="trainer.channels_last=sometimes; known: auto, true, false"):
        check(compose_train("trainer.channels_last=sometimes"))


# --- the trainer block and the Hydra settings of each command (rrx.settings, conf/common.yaml) --------------------


def _compose(command: str, *overrides: str, hydra: bool = False):
    with initialize_config_module("rrx.conf", version_base="1.3"):
        return compose(command, overrides=list(overrides), return_hydra_config=hydra)


def test_each_command_takes_its_trainer_block_with_its_own_defaults():
    """rrx train the whole TrainerConfig; evaluate, analyze and inspect the smaller RuntimeConfig, each with the
    defaults its YAML had (evaluate batches 256 images, analyze and inspect attribute in float32)."""
    from rrx.settings import RuntimeConfig, TrainerConfig

    trainer = _compose("train").trainer
    assert OmegaConf.get_type(trainer) is TrainerConfig
    assert OmegaConf.to_container(trainer) == {
        "device": "auto",
        "amp": True,
        "channels_last": "auto",
        "batch_size": 64,
        "progress": True,
        "devices": 1,
        "num_nodes": 1,
        "strategy": "auto",
        "compile": False,
        "epochs": 5,
        "scheduler": "cosine",
        "val_fraction": 0.0,
        "resume": "auto",
    }
    runtime = {"device": "auto", "amp": True, "channels_last": "auto", "batch_size": 64, "progress": True}
    for command, own in [
        ("evaluate", {"batch_size": 256}),
        ("analyze", {"amp": False}),
        ("inspect", {"amp": False, "progress": False}),
    ]:
        cfg = _compose(command)
        assert OmegaConf.get_type(cfg.trainer) is RuntimeConfig
        assert OmegaConf.to_container(cfg.trainer) == {**runtime, **own}, command
    assert OmegaConf.to_container(_compose("evaluate").segmentation) == {"robustness_window": None}
    assert OmegaConf.to_container(_compose("inspect").inspector) == {
        "host": "127.0.0.1",
        "port": 8501,
        "image_size": None,
        "max_upload_mb": 50,
        "checkpoint_roots": None,
    }


def test_a_training_key_on_another_command_is_one_line(tmp_path):
    with pytest.raises(Exception) as err:
        _compose("evaluate", "trainer.epochs=3")
    message = "trainer.epochs: trainer has no key 'epochs'; its keys: device, amp, channels_last, batch_size, progress"
    assert explain(err.value) == message
    result = rrx("evaluate", "trainer.epochs=3", f"hydra.run.dir={tmp_path / 'e'}", check=False)
    one_line_error(result, message)
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize(
    "override, message",
    [
        ("trainer.strategy=fsdp", "trainer.strategy=fsdp; known: auto, ddp"),
        ("trainer.scheduler=step", "trainer.scheduler=step; known: cosine, none"),
        ("trainer.resume=always", "trainer.resume=always; known: auto, never"),
        ("trainer.devices=0", "trainer.devices=0: must be >= 1"),
        ("trainer.val_fraction=1.0", "trainer.val_fraction=1: must be in [0, 1)"),
    ],
)
def test_a_bad_trainer_value_fails_the_check(compose_train, override, message):
    with pytest.raises(RRXError) as err:
        check(compose_train(override))
    assert str(err.value) == message


def test_a_bad_runtime_or_inspector_value_fails_the_check():
    with pytest.raises(RRXError, match=r"^trainer.batch_size=0: must be >= 1$"):
        check(_compose("analyze", "trainer.batch_size=0"))
    with pytest.raises(RRXError, match=r"^inspector.port=70000: must be in \[1, 65535\]$"):
        check(_compose("inspect", "inspector.port=70000"))
    with pytest.raises(RRXError, match=r"^segmentation.robustness_window=0: must be >= 1$"):
        check(_compose("evaluate", "segmentation.robustness_window=0"))


# What each command's Hydra settings were before they shared conf/common.yaml and conf/sweepable.yaml.
RUN_DIR = "outputs/${now:%Y-%m-%d}/${now:%H-%M-%S}-${rrx_unique:}"
SWEEP_DIR = "outputs/multirun/${now:%Y-%m-%d}/${now:%H-%M-%S}-${rrx_unique:}"
EXCLUDED = ["dataset.root", "dataset.cache_dir", "trainer.progress"]
OWN_HYDRA = {
    "train": (RUN_DIR, SWEEP_DIR, [*EXCLUDED, "trainer.devices", "trainer.num_nodes", "trainer.strategy"]),
    "evaluate": (f"{RUN_DIR}_evaluate", f"{SWEEP_DIR}_evaluate", ["checkpoint", *EXCLUDED]),
    "analyze": (f"{RUN_DIR}_analyze", f"{SWEEP_DIR}_analyze", ["checkpoint", *EXCLUDED]),
    "inspect": (f"{RUN_DIR}_inspect", None, None),
    "report": (f"{RUN_DIR}_report", None, None),
}


@pytest.mark.parametrize("command", list(OWN_HYDRA))
def test_the_hydra_settings_are_shared_and_each_command_keeps_its_own(command):
    overrides = ["runs=x"] if command == "report" else []
    hydra = OmegaConf.to_container(_compose(command, *overrides, hydra=True).hydra, resolve=False)
    shared = OmegaConf.to_container(OmegaConf.load(CONF / "common.yaml").hydra)
    assert hydra["output_subdir"] is None and hydra["job"]["chdir"] is False and shared["job"] == {"chdir": False}
    assert hydra["job_logging"]["handlers"]["file"]["class"] == "rrx.outputs.QuietFileHandler"
    run_dir, sweep_dir, excluded = OWN_HYDRA[command]
    assert (hydra["job"]["name"], hydra["run"]["dir"]) == (command, run_dir)
    override_dirname = hydra["job"]["config"]["override_dirname"]
    if sweep_dir is None:  # Hydra's own defaults: inspect and report do not sweep
        assert override_dirname == {"kv_sep": "=", "item_sep": ",", "exclude_keys": []}
        assert hydra["sweep"] == {"dir": "multirun/${now:%Y-%m-%d}/${now:%H-%M-%S}", "subdir": "${hydra.job.num}"}
        return
    assert override_dirname == {"kv_sep": "-", "item_sep": "_", "exclude_keys": excluded}
    assert hydra["sweep"] == {
        "dir": sweep_dir,
        "subdir": "${hydra.job.num}_${rrx_folder_name:${hydra.job.override_dirname}}",
    }


def test_held_out_images_give_a_validation_mixed_rand(compose_train, tmp_path):
    metrics = train(compose_train("trainer.val_fraction=0.25"), tmp_path)
    n_val = round(0.25 * 72)  # 9 classes x 8 training images
    for key in ("val_accuracy", "val_mixed_rand"):
        value = metrics["train"][key]
        assert 0 <= value <= 1 and value * n_val == pytest.approx(round(value * n_val))  # a share of the 18 images
    assert train(compose_train(), tmp_path / "none")["train"]["val_mixed_rand"] is None  # no held-out images
