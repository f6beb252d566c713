"""rrx export: the file MadryLab's evaluator loads with its own loader (written here from its key rule, as
backgrounds_challenge's tools/model_utils.make_and_restore_model does it) and a plain torchvision state dict; both
give rrx's predictions, and no key is left over or missing."""

import json

import pandas as pd
import pytest
import torch
import torchvision
from fixtures.runner import one_line_error, rrx
from torch import nn

from rrx.config import component
from rrx.data import create_dataset
from rrx.train import train

IN9_MEAN, IN9_STD = torch.tensor([0.4717, 0.4499, 0.3837]), torch.tensor([0.2600, 0.2516, 0.2575])  # the reference's


class InputNormalize(nn.Module):
    """The reference's: buffers new_mean, new_std of shape (3, 1, 1); clamps to [0, 1], then normalises."""

    def __init__(self, new_mean, new_std):
        super().__init__()
        self.register_buffer("new_mean", new_mean[..., None, None])
        self.register_buffer("new_std", new_std[..., None, None])

    def forward(self, x):
        return (torch.clamp(x, 0, 1) - self.new_mean) / self.new_std


class NormalizedModel(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.normalizer = InputNormalize(IN9_MEAN, IN9_STD)  # the dataset's constants, until the checkpoint's load
        self.model = model

    def forward(self, x):
        return self.model(self.normalizer(x))


def reference_load(path, num_classes):
    """make_and_restore_model's rule: checkpoint['model'] (else 'state_dict'), the first 7 characters ('module.')
    of each key cut, the keys the model has loaded, checkpoint['epoch'] read."""
    checkpoint = torch.load(path, weights_only=True)  # the reference uses pickle_module=dill: plain tensors load too
    sd = checkpoint["model" if "model" in checkpoint else "state_dict"]
    sd = {k[len("module.") :]: v for k, v in sd.items()}
    model = NormalizedModel(torchvision.models.resnet18(num_classes=num_classes))
    model_dict = model.state_dict()
    assert set(sd) == set(model_dict)  # its loader drops unknown keys silently: here none is unknown, none missing
    model_dict.update({k: v for k, v in sd.items() if k in model_dict})
    model.load_state_dict(model_dict)
    return model.eval(), checkpoint["epoch"]


@pytest.fixture(scope="module")
def run(tmp_path_factory, cache_dir):
    from conftest import TINY
    from hydra import compose, initialize_config_module

    out = tmp_path_factory.mktemp("resnet")
    tiny = [o for o in TINY if not o.startswith("model")]
    with initialize_config_module("rrx.conf", version_base="1.3"):
        cfg = compose("train", overrides=[*tiny, "model=resnet18", f"dataset.cache_dir={cache_dir}"])
    train(cfg, out)
    return out


def _original_images(cache_dir):
    data = create_dataset(
        component("dataset", "synthetic", cache_dir=str(cache_dir), image_size=32, train_per_class=8, val_per_class=4)
    )
    test = data.variation_set("original")
    return torch.stack([x for x, _ in test])


def test_the_reference_loader_restores_the_madry_export_with_rrxs_predictions(run, cache_dir, tmp_path):
    rrx("export", f"checkpoint={run}", "format=madry", f"hydra.run.dir={tmp_path / 'madry'}")
    info = json.loads((tmp_path / "madry" / "export.json").read_text())
    assert info["format"] == "madry" and info["architecture"] == "resnet18" and len(info["classes"]) == 9
    model, epoch = reference_load(tmp_path / "madry" / info["file"], 9)
    assert epoch == 1
    with torch.no_grad():
        predicted = model(_original_images(cache_dir)).argmax(1)
    frame = pd.read_parquet(run / "predictions.parquet")
    assert predicted.tolist() == frame[frame["variation"] == "original"]["prediction"].tolist()
    # the normaliser is the model's own (the synthetic benchmark's), not the loader's IN-9 constants
    assert model.normalizer.new_mean.flatten().tolist() == pytest.approx(info["mean"])


def test_the_state_dict_export_loads_into_torchvision_strictly(run, cache_dir, tmp_path):
    rrx("export", f"checkpoint={run}", "format=state_dict", f"hydra.run.dir={tmp_path / 'sd'}")
    info = json.loads((tmp_path / "sd" / "export.json").read_text())
    net = torchvision.models.resnet18(num_classes=9)
    net.load_state_dict(torch.load(tmp_path / "sd" / info["file"], weights_only=True))  # strict: every key
    mean, std = torch.tensor(info["mean"]).view(1, 3, 1, 1), torch.tensor(info["std"]).view(1, 3, 1, 1)
    with torch.no_grad():
        predicted = net.eval()((_original_images(cache_dir) - mean) / std).argmax(1)
    frame = pd.read_parquet(run / "predictions.parquet")
    assert predicted.tolist() == frame[frame["variation"] == "original"]["prediction"].tolist()


def test_what_cannot_be_exported_is_one_line(compose_train, tmp_path):
    small = tmp_path / "small"
    train(compose_train(), small)  # SmallCNN: not the reference's architecture
    one_line_error(
        rrx("export", f"checkpoint={small}", f"hydra.run.dir={tmp_path / 'a'}", check=False),
        "format=madry holds the reference's ResNets",
        "use format=state_dict",
    )
    one_line_error(
        rrx("export", f"checkpoint={small}", "format=onnx", f"hydra.run.dir={tmp_path / 'b'}", check=False),
        "format=onnx; known: madry, state_dict",
    )
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
