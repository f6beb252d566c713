"""The optimizer group: typed configs (rrx.optimizers) Hydra instantiates; task=segmentation picks Adam."""

import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.utils import instantiate
from omegaconf import OmegaConf

from rrx.config import check, explain
from rrx.errors import RRXError
from rrx.optimizers import OPTIMIZERS, AdamConfig, SGDConfig, store_optimizers


def _compose(*overrides):
    store_optimizers()  # until rrx.config.store_components stores them (it is idempotent)
    with initialize_config_module("rrx.conf", version_base="1.3"):
        return compose("train", overrides=list(overrides))


def _params():
    return [torch.nn.Parameter(torch.zeros(2))]


def test_sgd_is_the_default_with_todays_values_and_instantiates():
    cfg = _compose().optimizer
    assert OmegaConf.get_type(cfg) is SGDConfig and sorted(OPTIMIZERS) == ["adam", "sgd"]
    assert OmegaConf.to_container(cfg) == {
        "_target_": "torch.optim.SGD",
        "_partial_": True,
        "lr": 0.05,
        "momentum": 0.9,
        "weight_decay": 5.0e-4,
    }
    optimizer = instantiate(cfg)(params=_params())
    assert isinstance(optimizer, torch.optim.SGD)
    group = optimizer.param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.05, 0.9, 5.0e-4)


def test_segmentation_overrides_the_optimizer_to_adam():
    cfg = _compose("task=segmentation").optimizer
    assert OmegaConf.get_type(cfg) is AdamConfig
    assert OmegaConf.to_container(cfg) == {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 0.001}
    assert isinstance(instantiate(cfg)(params=_params()), torch.optim.Adam)
    assert _compose("task=segmentation", "optimizer=sgd").optimizer._target_ == "torch.optim.SGD"
    assert _compose("optimizer=adam", "optimizer.lr=0.01").optimizer.lr == 0.01


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["optimizer=adam", "optimizer.momentum=0.9"], "optimizer.momentum: optimizer has no key 'momentum'"),
        (["optimizer.nesterov=true"], "optimizer.nesterov: optimizer has no key 'nesterov'"),
        (["optimizer.lr=fast"], "optimizer.lr=fast: must be a number"),
    ],
)
def test_a_key_the_optimizer_does_not_have_is_one_line(overrides, message):
    with pytest.raises(Exception) as err:
        _compose(*overrides)
    assert (explain(err.value) or "").startswith(message)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["optimizer.lr=0"], "optimizer.lr=0: must be > 0"),
        (["optimizer=adam", "optimizer.lr=-1e-3"], "optimizer.lr=-0.001: must be > 0"),
        (["optimizer.momentum=1.5"], "optimizer.momentum=1.5: must be in [0, 1]"),
        (["optimizer.weight_decay=-1e-4"], "optimizer.weight_decay=-0.0001: must be >= 0"),
    ],
)
def test_an_optimizer_value_out_of_range_fails_the_check(overrides, message):
    with pytest.raises(RRXError) as err:
        check(_compose(*overrides))
    assert str(err.value) == message
