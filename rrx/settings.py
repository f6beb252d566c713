"""The typed blocks of the commands' configs that are not components: ``trainer`` (how a command computes and, for
``rrx train``, trains), ``segmentation`` (``task=segmentation``'s protocol) and ``inspector`` (the Model Inspector's
server), as dataclasses (``rrx.config.param``: default, meaning, range or choices).

Each command takes the block it reads, with its own defaults: ``rrx train`` the whole ``TrainerConfig``, ``rrx
evaluate``, ``analyze`` and ``inspect`` the smaller ``RuntimeConfig`` (so ``rrx evaluate trainer.epochs=3`` is one
error line, not a setting silently ignored). ``store_settings()`` puts them into Hydra's ConfigStore as configs
without a group (``BLOCKS``), each at its package; a primary config (``conf/train.yaml``, ...) or the task's config
names the ones it takes in its defaults list. ``check_globals`` checks what no dataclass types: ``seed`` and ``task``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional

from omegaconf import DictConfig

from rrx.checkpoint import RESUME_RULES
from rrx.config import param
from rrx.errors import RRXError, check_choice
from rrx.segmentation.ada import ATTRIBUTIONS

TASKS = ("classification", "segmentation")  # the ``task`` config group (conf/task/)
CHANNELS_LAST = ("auto", True, False)  # trainer.channels_last
STRATEGIES = ("auto", "ddp")  # trainer.strategy
SCHEDULERS = ("cosine", "none")  # trainer.scheduler, stepped per batch
LOSSES = ("dice", "bce")  # segmentation.loss
SEGMENTATION_AUGMENTS = ("table2", "none")  # segmentation.augment
THESIS_ATTRIBUTIONS = ["saliency", "input_x_gradient", "gradcam", "guided_backprop", "guided_gradcam"]


@dataclass
class RuntimeConfig:
    """where and how a command computes"""

    device: str = param("auto", "auto: cuda if available, else cpu | cpu | cuda | cuda:<index>")
    amp: bool = param(True, "bfloat16 autocast on CUDA; ignored on CPU")
    channels_last: Any = param(
        "auto",
        "auto: channels-last models on CUDA | true: also on CPU (faster convolutions; not for double backprop "
        "there) | false",
        choices=CHANNELS_LAST,
    )
    batch_size: int = param(64, "images per batch", low=1)
    progress: bool = param(True, "progress bars (on a terminal only; a log file gets one line per epoch)")


@dataclass
class TrainerConfig(RuntimeConfig):
    """how rrx train trains: devices, precision, epochs, batch, schedule, resume"""

    device: str = param("auto", "auto: cuda if available, else cpu | cpu | cuda (the accelerator of every rank)")
    batch_size: int = param(
        64,
        "the global batch: each of devices x num_nodes ranks takes batch_size / (devices x num_nodes)",
        low=1,
    )
    devices: int = param(
        1,
        "processes per node, one per GPU (or CPU process, gloo); > 1 trains data-parallel (DDP, Lightning Fabric)",
        low=1,
    )
    num_nodes: int = param(
        1, "nodes; > 1 needs the ranks started by SLURM (srun, a task per device) or torchrun", low=1
    )
    strategy: str = param("auto", "auto: one device alone, DDP for more | ddp", choices=STRATEGIES)
    compile: bool = param(
        False, "true: train through torch.compile (double-backprop methods excepted: it has no double backward)"
    )
    epochs: int = param(5, "training epochs (method=ada: its own schedule's)", low=1)
    scheduler: str = param("cosine", "cosine | none (per step)", choices=SCHEDULERS)
    val_fraction: float = param(
        0.0,
        "share of the training set held out for validation accuracy (used to pick lambda)",
        low=0.0,
        high=1.0,
        high_open=True,
    )
    resume: str = param(
        "auto",
        "auto: an unfinished run of the same config in the run folder continues | never: refuse it",
        choices=RESUME_RULES,
    )


@dataclass
class SegmentationConfig:
    """task=segmentation (thesis ch. 3): the U-Net's loss and augmentation, ADA's forks, the robustness set"""

    loss: str = param("dice", "dice (soft Dice, 1 - DSC on probabilities) | bce", choices=LOSSES)
    threshold: float = param(
        0.5,
        "a pixel is predicted foreground where the sigmoid output exceeds this",
        low=0.0,
        high=1.0,
        low_open=True,
        high_open=True,
    )
    augment: str = param(
        "table2",
        "table2: thesis Table 2 on image and mask together, an augmented copy of every image each epoch | none",
        choices=SEGMENTATION_AUGMENTS,
    )
    augment_seed: int = param(0, "segmentation.augment=table2: the draws of each image and epoch")
    attributions: List[str] = param(
        THESIS_ATTRIBUTIONS,
        "method=ada: one fork each; any rrx.attributions name but ipha (those that score one of several classes)",
        choices=tuple(ATTRIBUTIONS),
    )
    baseline: bool = param(True, "method=ada: also continue a plain U-Net for as many epochs as the forks")
    robustness_window: int = param(
        8, "Z of the robustness set (Alg. 2; the thesis's 20 px at 200 px is 1/10 of the side)", low=1
    )


@dataclass
class RescoreConfig:
    """rrx evaluate of a task=segmentation checkpoint: its forks scored again"""

    robustness_window: Optional[int] = param(None, "Z of its robustness set (Alg. 2); null: the run's own", low=1)


@dataclass
class InspectorConfig:
    """rrx inspect: the Model Inspector's server and the checkpoints its page may load"""

    host: str = param(
        "127.0.0.1", "the interface the server binds; another one (0.0.0.0: every interface) is an explicit choice"
    )
    port: int = param(8501, "the port the server listens on", low=1, high=65535)
    image_size: Optional[int] = param(
        None, "side of the model's square input; null: the dataset's image_size, else 224", low=1
    )
    max_upload_mb: int = param(50, "larger uploads are refused by the server", low=1)
    checkpoint_roots: Any = param(
        None,
        "a folder or a list of folders the page may load other checkpoints from (a path typed there must resolve "
        "to under one of them); null: the folder holding the command's checkpoint (the run folder of "
        "checkpoint=<run folder>), none with model=<name>",
    )


# name -> (package, node): the configs without a group that the primaries (conf/<command>.yaml) and conf/task/ name
# in their defaults lists; each command's own defaults are here, once.
BLOCKS = {
    "trainer_train": ("trainer", TrainerConfig()),
    "trainer_evaluate": ("trainer", RuntimeConfig(batch_size=256)),
    "trainer_analyze": ("trainer", RuntimeConfig(amp=False)),  # attributions are taken in float32
    "trainer_inspect": ("trainer", RuntimeConfig(amp=False, progress=False)),  # attributions in float32
    "segmentation_train": ("segmentation", SegmentationConfig()),  # conf/task/segmentation.yaml
    "segmentation_evaluate": ("segmentation", RescoreConfig()),
    "inspector_inspect": ("inspector", InspectorConfig()),
}


def store_settings() -> None:
    """Put ``BLOCKS`` into Hydra's ConfigStore (``rrx.config.store_components`` calls it)."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for name, (package, node) in BLOCKS.items():
        store.store(name=name, node=node, package=package)


def check_globals(cfg: DictConfig) -> None:
    """What no dataclass types, at the top of a command's config: ``seed`` (an integer) and ``task``."""
    if cfg.get("task") is not None:
        check_choice("task", cfg.task, TASKS)
    seed = cfg.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise RRXError(f"seed={seed}: must be an integer")
