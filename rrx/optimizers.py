"""Optimizers (config group ``optimizer``): typed configs Hydra instantiates (``instantiate(cfg.optimizer)(params)``).

There is no registry: an option is a torch optimizer's config, its ``_target_`` the class and ``_partial_`` true, so
the task passes the parameters. ``optimizer=sgd`` is the classification default; ``task=segmentation`` overrides it
with ``optimizer=adam`` (thesis 3.2.3). ``store_optimizers()`` puts the options into Hydra's ConfigStore.
"""

from __future__ import annotations

from dataclasses import dataclass

from rrx.config import param


@dataclass
class OptimizerConfig:
    """what every optimizer has: the class Hydra builds and the learning rate"""

    _target_: str = param("torch.optim.SGD", "the optimizer class Hydra instantiates")
    _partial_: bool = param(True, "built without parameters: the task passes the model's")
    lr: float = param(0.05, "the learning rate (the peak of trainer.scheduler=cosine)", low=0.0, low_open=True)


@dataclass
class SGDConfig(OptimizerConfig):
    """SGD with momentum: the classification default"""

    _target_: str = param("torch.optim.SGD", "the optimizer class Hydra instantiates")
    lr: float = param(0.05, "the learning rate (the peak of trainer.scheduler=cosine)", low=0.0, low_open=True)
    momentum: float = param(0.9, "the momentum factor", low=0.0, high=1.0)
    weight_decay: float = param(5.0e-4, "the L2 penalty", low=0.0)


@dataclass
class AdamConfig(OptimizerConfig):
    """Adam: task=segmentation's default (thesis 3.2.3: lr 0.001, a constant learning rate)"""

    _target_: str = param("torch.optim.Adam", "the optimizer class Hydra instantiates")
    lr: float = param(0.001, "the learning rate", low=0.0, low_open=True)


OPTIMIZERS = {"sgd": SGDConfig, "adam": AdamConfig}  # option name -> config


def store_optimizers() -> None:
    """Put the ``optimizer`` group's options (``OPTIMIZERS``) into Hydra's ConfigStore."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for name, config in OPTIMIZERS.items():
        store.store(group="optimizer", name=name, node=config())
