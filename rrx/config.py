"""Typed configs: each registered component declares a dataclass of its keys, stored in Hydra's ConfigStore.

As fairseq's ``register_task(name, dataclass)``: ``@register_method("rrr", config=RRRConfig)`` makes the dataclass
the config group's option ``method=rrr`` (and ``presets`` more options of the same component, e.g. ``method=rrda``
is ``StandardConfig(rrda=True)``). The dataclass is where a key's type, default, range, choices and meaning are
written, once: Hydra composes the group from it in struct mode, so a key the chosen component does not have, or a
value of the wrong type, stops the command; ``check(cfg)`` then checks ranges and choices (OmegaConf has no
``Literal`` type: a choice is a ``str`` field whose ``choices`` are listed in its metadata). ``explain(err)`` turns
Hydra's and OmegaConf's errors into one ``rrx: error:`` line, and ``describe(cfg)`` prints the chosen components'
keys for ``rrx <command> --help``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, cast, get_args, get_origin, get_type_hints

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException, ValidationError

from rrx.errors import RRXError

INF = math.inf
TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string", Any: "any value"}
LIST_NAMES = {int: "integers", float: "numbers", str: "strings", Any: "values"}
# config group -> (package of its registry, the registry's attribute): imported only when the group is stored
GROUPS = {
    "model": ("rrx.models", "MODELS"),
    "dataset": ("rrx.data", "DATASETS"),
    "method": ("rrx.methods", "METHODS"),
    "challenge": ("rrx.challenges", "CHALLENGES"),
    "attack": ("rrx.attacks", "ATTACKS"),
    "analysis": ("rrx.analyses", "ANALYSES"),
    "logger": ("rrx.loggers", "LOGGERS"),
    "mask": ("rrx.masks", "MASK_SOURCES"),
}


def param(
    default: Any = MISSING,
    help: str = "",
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    choices: tuple | list | None = None,
) -> Any:
    """A config field: its default, what it means (``help``, shown by ``--help``), the range ``[low, high]`` a
    number (or every number of a list) must be in (an end excluded where ``*_open``), or the ``choices`` a string
    must be one of."""
    metadata: dict[str, Any] = {"help": help}
    if low is not None or high is not None:
        metadata["bounds"] = (-INF if low is None else low, INF if high is None else high, low_open, high_open)
    if choices is not None:
        metadata["choices"] = tuple(choices)
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class ComponentConfig:
    """What every component's config has: the registered ``name`` its factory is found by."""

    name: str = param(MISSING, "the registered name of the component")


def options(registry) -> dict[str, Any]:
    """The config group's options of ``registry``: each entry with a config by its name, and its presets."""
    found = {}
    for name in registry.names():
        config = registry.config(name)
        if config is not None:
            found[name] = config(name=name)
    found.update(registry.presets())
    return found


_stored = False


def store_components() -> None:
    """Put every registered component's config (and preset) into Hydra's ConfigStore, once; ``rrx.conf`` calls it
    when Hydra first reads the config package."""
    global _stored
    if _stored:
        return
    import importlib

    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for group, (package, attribute) in GROUPS.items():
        registry = getattr(importlib.import_module(package), attribute)
        for name, node in options(registry).items():
            store.store(group=group, name=name, node=node)
    from rrx.optimizers import store_optimizers
    from rrx.settings import store_settings

    store_optimizers()
    store_settings()  # the commands' own blocks: trainer, segmentation, inspector
    _stored = True


def config_class(group: str, node: Any) -> type | None:
    """The dataclass of the component a group's node is configured for, or None (a group rrx does not type)."""
    if group not in GROUPS or not isinstance(node, DictConfig) or node.get("name") is None:
        return None
    import importlib

    package, attribute = GROUPS[group]
    registry = getattr(importlib.import_module(package), attribute)
    return registry.config(node.name) if node.name in registry.names() else None


def _allowed(low: float, high: float, low_open: bool, high_open: bool) -> str:
    if high == INF:
        return f"{'>' if low_open else '>='} {low:g}"
    if low == -INF:
        return f"{'<' if high_open else '<='} {high:g}"
    return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def type_name(annotation: Any) -> str:
    """``Optional[int]`` -> ``an integer (or null)``, ``List[float]`` -> ``a list of numbers``."""
    args = get_args(annotation)
    optional = type(None) in args
    inner = next((a for a in args if a is not type(None)), annotation) if optional else annotation
    if get_origin(inner) is list:
        (item,) = get_args(inner) or (Any,)
        name = f"a list of {LIST_NAMES.get(item, 'values')}"
    elif get_origin(inner) is dict:
        name = "a mapping"
    else:
        name = TYPE_NAMES.get(inner, getattr(inner, "__name__", str(inner)))
    return f"{name} (or null)" if optional else name


def shown(value: Any) -> str:
    """A value as the command line spells it: ``-1`` for -1.0, ``1e-05``, ``[0.35,1]``, ``true``, ``null``."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, ListConfig)):
        return f"[{','.join(shown(v) for v in value)}]"
    return str(value)


def check_field(prefix: str, spec: dataclasses.Field, value: Any) -> None:
    """Raise one RRXError unless ``value`` is in the range or among the choices of the field ``spec``."""
    if value is None:
        return
    if "choices" in spec.metadata:
        items = list(value) if isinstance(value, (list, ListConfig)) else [value]
        for item in items:
            if item not in spec.metadata["choices"]:
                known = ", ".join(shown(c) for c in spec.metadata["choices"])
                raise RRXError(f"{prefix}.{spec.name}={shown(value)}; known: {known}")
    if "bounds" in spec.metadata:
        low, high, low_open, high_open = spec.metadata["bounds"]
        for item in value if isinstance(value, (list, ListConfig)) else [value]:
            below = item <= low if low_open else item < low
            above = item >= high if high_open else item > high
            if below or above or (isinstance(item, float) and math.isnan(item)):
                allowed = _allowed(low, high, low_open, high_open)
                raise RRXError(f"{prefix}.{spec.name}={shown(value)}: must be {allowed}")


def check_node(node: DictConfig, schema: type, prefix: str) -> None:
    """No key the dataclass ``schema`` lacks (``+group.key=`` appends one past Hydra), and the ranges and choices of
    every key of ``node`` that it declares."""
    known = [spec.name for spec in fields(schema)]
    unknown = [str(key) for key in node if key not in known]
    if unknown:
        raise RRXError(_no_such_key(f"{prefix}.{unknown[0]}", schema, node.get("name")))
    for spec in fields(schema):
        if spec.name not in node or OmegaConf.is_missing(node, spec.name):
            continue
        if OmegaConf.is_interpolation(node, spec.name):  # a node on its own: checked once it is set or resolved
            try:
                value = node[spec.name]
            except OmegaConfBaseException:
                continue
        else:
            value = node[spec.name]
        check_field(prefix, spec, value)


def check(cfg: DictConfig) -> None:
    """Ranges and choices of every typed node of a composed config: the components' groups and the blocks
    (``trainer``, ``segmentation``, ...) whose dataclass Hydra composed them from, then ``seed`` and ``task``
    (``rrx.settings.check_globals``); one RRXError on the first bad value."""
    from rrx.settings import check_globals

    check_globals(cfg)
    for key in cfg:
        # "hydra": in a config composed with return_hydra_config, Hydra's own, typed by Hydra
        if key == "hydra" or not isinstance(key, str):
            continue
        node = cfg.get(key)
        if not isinstance(node, DictConfig):
            continue
        schema = OmegaConf.get_type(node)
        if dataclasses.is_dataclass(schema):
            check_node(node, schema, key)


def typed(group: str, node: DictConfig | dict) -> DictConfig:
    """``node`` (e.g. a checkpoint's saved ``method`` config) as its component's typed config: defaults filled in,
    types converted; a key the component does not have is one RRXError naming it and the valid keys."""
    if isinstance(node, DictConfig):  # a node of a composed config: its interpolations resolve against the whole
        try:
            plain = cast(DictConfig, OmegaConf.create(OmegaConf.to_container(node, resolve=True)))
        except OmegaConfBaseException:  # a node on its own whose interpolation points outside it
            plain = cast(DictConfig, OmegaConf.create(OmegaConf.to_container(node)))
    else:
        plain = OmegaConf.create(node)
    schema = config_class(group, plain)
    if schema is None:
        return plain
    unknown = [str(k) for k in plain if k not in {f.name for f in fields(schema)}]
    if unknown:
        raise RRXError(_no_such_key(f"{group}.{unknown[0]}", schema, plain.get("name")))
    try:
        merged = cast(DictConfig, OmegaConf.merge(OmegaConf.structured(schema), plain))
    except OmegaConfBaseException as err:
        raise RRXError(explain(err) or str(err)) from None
    check_node(merged, schema, group)
    return merged


def _no_such_key(full_key: str, schema: type | None, name: Any, parent: Any = None) -> str:
    group, _, key = full_key.rpartition(".")
    if schema is None or not dataclasses.is_dataclass(schema):
        if isinstance(parent, DictConfig):  # a block of the command's own config (trainer, inspector, ...)
            command = f"rrx {_command()} " if _command() else ""
            return f"{full_key}: {command}has no key {key!r} in {group or 'its config'}; its keys: {', '.join(parent)}"
        return f"{full_key}: no such key"
    keys = ", ".join(f.name for f in fields(schema))
    owner = f"{group}={name}" if name is not None else group
    return f"{full_key}: {owner} has no key {key!r}; its keys: {keys}"


def explain(err: BaseException) -> str | None:
    """One line for a Hydra or OmegaConf error about the config (a key the chosen component does not have, a value
    of the wrong type, an option that does not exist), or None for another error."""
    from hydra.errors import ConfigCompositionException, MissingConfigException

    if isinstance(err, MissingConfigException):
        text = str(err)
        if "Could not find '" in text:
            missing = text.split("Could not find '", 1)[1].split("'", 1)[0]
            group, _, option = missing.rpartition("/")
            known = [line.strip() for line in text.split("Available options in", 1)[-1].splitlines()[1:]]
            known = [k for k in known if k and not k.startswith("Config search path") and "provider=" not in k]
            return f"unknown {group or 'config'} {option!r}; known: {', '.join(known)}" if group else None
        return None
    cause = err.__cause__ if isinstance(err, ConfigCompositionException) else err
    if not isinstance(cause, OmegaConfBaseException) or not getattr(cause, "full_key", None):
        return None
    full_key, schema, parent = cause.full_key, cause.object_type, cause.parent_node
    assert full_key is not None  # checked above
    name = parent.get("name") if isinstance(parent, DictConfig) else None
    if isinstance(cause, ValidationError) and dataclasses.is_dataclass(schema):
        hint = get_type_hints(schema).get(cause.key)
        return f"{full_key}={cause.value}: must be {type_name(hint)}" if hint is not None else None
    if "not in struct" in str(cause) or "Key '" in str(cause):
        return _no_such_key(full_key, schema, name, parent)
    return None


def _command() -> str | None:
    """The rrx command running (``rrx evaluate`` sets ``sys.argv[0]`` to it), or None."""
    import sys

    first = sys.argv[0] if sys.argv else ""
    return first.split(" ", 1)[1] if first.startswith("rrx ") else None


def describe(cfg: DictConfig, groups: list[str] | None = None, top: type | None = None) -> str:
    """For ``rrx <command> --help``: the command's own keys (``top``, a dataclass of ``param`` fields, with their
    values in ``cfg``), then each typed node of ``cfg`` (the chosen components, ``trainer``, ...) with its keys, type,
    default, range or choices and meaning."""
    lines = [] if top is None else ["command keys", *_field_lines(top, cfg, ""), ""]
    for key in groups or list(cfg):
        node = cfg.get(key) if isinstance(key, str) else None
        schema = OmegaConf.get_type(node) if isinstance(node, DictConfig) else None
        if schema is None or not dataclasses.is_dataclass(schema):
            continue
        title = f"{key}={node.name}" if "name" in node else key
        lines.append(f"\n{title}  ({(schema.__doc__ or '').strip().splitlines()[0] if schema.__doc__ else ''})")
        lines += _field_lines(cast(type, schema), node, f"{key}.")
    return "\n".join(lines).lstrip("\n")


def _field_lines(schema: type, node: DictConfig, prefix: str) -> list[str]:
    """``describe``'s lines of each field of ``schema`` but ``name``: ``<prefix><key>: <type> = <value in node>``
    with its range or choices, then its meaning."""
    lines = []
    hints = get_type_hints(schema)
    for spec in fields(cast(Any, schema)):
        if spec.name == "name":
            continue
        default = node.get(spec.name) if spec.name in node and not OmegaConf.is_missing(node, spec.name) else "???"
        if isinstance(default, (DictConfig, ListConfig)):
            default = OmegaConf.to_container(default)
        limits, kind = "", type_name(hints[spec.name])
        if "choices" in spec.metadata:
            limits = f"  [{' | '.join(shown(c) for c in spec.metadata['choices'])}]"
            kind = "a choice" if kind == "any value" else kind
        elif "bounds" in spec.metadata:
            limits = f"  [{_allowed(*spec.metadata['bounds'])}]"
        lines.append(f"  {prefix}{spec.name}: {kind} = {shown(default)}{limits}")
        if spec.metadata.get("help"):
            lines.append(f"      {spec.metadata['help']}")
    return lines


def component(group: str, option: str, **values: Any) -> DictConfig:
    """The typed config of ``<group>=<option>`` (a registered name or a preset) with ``values`` set, as the command
    line composes it: to build a component from Python, e.g. ``create_method(component("method", "rrr", lam=10))``.
    A key the component does not have, a wrong type, a value out of range or choices: one RRXError. An
    interpolation of the default (``img_size: ${dataset.image_size}``) needs a value here when there is no dataset."""
    import importlib

    package, attribute = GROUPS[group]
    found = options(getattr(importlib.import_module(package), attribute))
    if option not in found:
        raise RRXError(f"unknown {group} {option!r}; known: {', '.join(sorted(found))}")
    schema = type(found[option])
    unknown = [key for key in values if key not in {spec.name for spec in fields(schema)}]
    if unknown:
        raise RRXError(_no_such_key(f"{group}.{unknown[0]}", schema, option))
    cfg = OmegaConf.structured(found[option])
    try:
        cfg.merge_with(values)
    except OmegaConfBaseException as err:
        raise RRXError(explain(err) or str(err)) from None
    check_node(cfg, schema, group)
    return cfg
