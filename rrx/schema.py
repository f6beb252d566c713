"""Typed schemas with ranges for the config groups, checked before any data is loaded.

Each schema is a dataclass (an OmegaConf structured config) listing the keys whose type and range rrx
relies on; OmegaConf converts and type-checks the composed values against it, and the ``bounds`` metadata
gives the allowed range. A key a config does not have is not checked (choices differ in their keys);
keys a schema does not list are left to the code that reads them. ``validate(cfg)`` raises one RRXError
naming the key, the value and what is allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, List, Optional, get_args, get_origin, get_type_hints

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ValidationError

from rrx.data.label_maps import IN9_MAPS
from rrx.errors import RRXError, check_choice

INF = math.inf
TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
LIST_NAMES = {int: "integers", float: "numbers"}


def bounds(
    low: float = -INF, high: float = INF, *, low_open: bool = False, high_open: bool = False, default: Any = None
):
    """A field allowed in [low, high] (an end excluded where ``*_open``); for a list, every element."""
    return field(default=default, metadata={"bounds": (low, high, low_open, high_open)})


@dataclass
class TrainerSchema:
    device: Optional[str] = None
    devices: Optional[int] = bounds(1)
    num_nodes: Optional[int] = bounds(1)
    strategy: Optional[str] = None
    amp: Optional[bool] = None
    epochs: Optional[int] = bounds(1)
    batch_size: Optional[int] = bounds(1)
    scheduler: Optional[str] = None
    val_fraction: Optional[float] = bounds(0.0, 1.0, high_open=True)
    progress: Optional[bool] = None
    resume: Optional[str] = None
    compile: Optional[bool] = None


@dataclass
class OptimizerSchema:
    lr: Optional[float] = bounds(0.0, low_open=True)
    momentum: Optional[float] = bounds(0.0, 1.0)
    weight_decay: Optional[float] = bounds(0.0)


@dataclass
class MethodSchema:
    lam: Optional[float] = bounds(0.0)
    rrda: Optional[bool] = None
    standard_epochs: Optional[int] = bounds(0)  # ADA
    cycles: Optional[int] = bounds(0)
    ada_epochs: Optional[int] = bounds(1)
    window: Optional[int] = bounds(1)
    samples: Optional[int] = bounds(1)  # EG
    num_pixels: Optional[int] = bounds(1)  # CDEP, EG with regions=pixels


@dataclass
class DatasetSchema:
    num_classes: Optional[int] = bounds(2)
    image_size: Optional[int] = bounds(1)
    num_workers: Optional[int] = bounds(0)
    preload_gb: Optional[float] = bounds(0.0)
    mask_threshold: Optional[float] = bounds(0.0, 1.0)
    train_per_class: Optional[int] = bounds(1)
    val_per_class: Optional[int] = bounds(0)
    bg_correlation: Optional[float] = bounds(0.0, 1.0)
    train_size: Optional[int] = bounds(1)
    test_size: Optional[int] = bounds(1)
    num_colours: Optional[int] = bounds(2)
    test_fraction: Optional[float] = bounds(0.0, 1.0, low_open=True, high_open=True)
    mean: Optional[List[float]] = bounds(0.0, 1.0)
    std: Optional[List[float]] = bounds(0.0, low_open=True)
    val_fraction: Optional[float] = bounds(0.0, 1.0, low_open=True, high_open=True)  # scgm
    vote: Optional[float] = bounds(0.0, 1.0, high_open=True)


@dataclass
class AttackSchema:
    eps: Optional[float] = bounds(0.0)
    eval_eps: Optional[List[float]] = bounds(0.0)
    step_size: Optional[float] = bounds(0.0, low_open=True)
    steps: Optional[int] = bounds(1)
    random_start: Optional[bool] = None
    mix: Optional[float] = bounds(0.0, 1.0)


@dataclass
class ChallengeSchema:
    widths: Optional[List[int]] = bounds(1)
    reference_size: Optional[int] = bounds(1)
    snr_max_images: Optional[int] = bounds(1)
    ig_steps: Optional[int] = bounds(1)
    stats_per_class: Optional[int] = bounds(1)  # adversarial_backgrounds
    batch_size: Optional[int] = bounds(1)
    top_k: Optional[int] = bounds(1)


@dataclass
class AnalysisSchema:
    max_images: Optional[int] = bounds(1)
    ig_steps: Optional[int] = bounds(1)
    iou_threshold: Optional[float] = bounds(0.0, 1.0)  # obey
    per_class: Optional[int] = bounds(1)  # focus
    mosaic_size: Optional[int] = bounds(1)
    window: Optional[float] = bounds(0.0, 1.0, low_open=True)  # u_analysis: a fraction of the image side
    examples: Optional[int] = bounds(0)
    iterations: Optional[int] = bounds(1)  # ipha
    neighbours: Optional[int] = bounds(1)
    block: Optional[int] = bounds(1)
    seed: Optional[int] = None


@dataclass
class ModelSchema:
    width: Optional[int] = bounds(1)
    hidden: Optional[List[int]] = bounds(1)
    pretrained: Optional[bool] = None
    dropout: Optional[float] = bounds(0.0, 1.0, high_open=True)  # unet
    bn_momentum: Optional[float] = bounds(0.0, 1.0)


@dataclass
class SegmentationSchema:
    threshold: Optional[float] = bounds(0.0, 1.0, low_open=True, high_open=True)
    robustness_window: Optional[int] = bounds(1)
    augment_seed: Optional[int] = None
    baseline: Optional[bool] = None


@dataclass
class InspectorSchema:
    host: Optional[str] = None
    port: Optional[int] = bounds(1, 65535)
    image_size: Optional[int] = bounds(1)
    max_upload_mb: Optional[int] = bounds(1)


SCHEMAS = {
    "trainer": TrainerSchema,
    "optimizer": OptimizerSchema,
    "method": MethodSchema,
    "dataset": DatasetSchema,
    "attack": AttackSchema,
    "challenge": ChallengeSchema,
    "model": ModelSchema,
    "analysis": AnalysisSchema,
    "inspector": InspectorSchema,
    "segmentation": SegmentationSchema,
}
TASKS = ("classification", "segmentation")  # the ``task`` config group (conf/task/)


def _allowed(low, high, low_open, high_open) -> str:
    if high == INF:
        return f"{'>' if low_open else '>='} {low:g}"
    return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def check_group(node: DictConfig, schema: type, prefix: str) -> None:
    """Type-check and range-check the keys of ``node`` that ``schema`` lists."""
    hints = get_type_hints(schema)
    for spec in fields(schema):
        key = spec.name
        if key not in node or OmegaConf.is_missing(node, key):
            continue
        value = node[key]
        try:
            typed = OmegaConf.merge(OmegaConf.structured(schema), {key: value})[key]
        except ValidationError:
            raise RRXError(f"{prefix}.{key}={value}: must be {_type_name(hints[key])}") from None
        if typed is None or "bounds" not in spec.metadata:
            continue
        low, high, low_open, high_open = spec.metadata["bounds"]
        for item in typed if OmegaConf.is_list(typed) else [typed]:
            below = item <= low if low_open else item < low
            above = item >= high if high_open else item > high
            if below or above or (isinstance(item, float) and math.isnan(item)):
                raise RRXError(f"{prefix}.{key}={value}: must be {_allowed(low, high, low_open, high_open)}")


def _type_name(annotation) -> str:
    """``Optional[int]`` -> ``integer``, ``Optional[List[float]]`` -> ``list of number``."""
    inner = next(a for a in get_args(annotation) if a is not type(None))
    if get_origin(inner) in (list, List):
        return f"a list of {LIST_NAMES[get_args(inner)[0]]}"
    return TYPE_NAMES[inner]


def validate(cfg: DictConfig) -> None:
    """Check every config group of ``cfg`` that has a schema, ``task`` and ``seed``;
    one RRXError on the first bad value."""
    for group, schema in SCHEMAS.items():
        if group in cfg and isinstance(cfg[group], DictConfig):
            check_group(cfg[group], schema, group)
    if cfg.get("task") is not None:
        check_choice("task", cfg.task, TASKS)
    if "dataset" in cfg and isinstance(cfg.dataset, DictConfig) and cfg.dataset.get("label_map") is not None:
        check_choice("dataset.label_map", cfg.dataset.label_map, list(IN9_MAPS))
    seed = cfg.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise RRXError(f"seed={seed}: must be an integer")
