"""Name -> factory registries, one per config group (as timm's ``register_model``).

A registry imports every module of its package the first time it is asked for an entry, so adding an entry is one
module with a ``@register_...("name", config=NameConfig)`` decorator: the dataclass is the entry's typed config, the
config group's option ``<group>=name`` (``rrx.config``).
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Callable

from rrx.errors import RRXError


class Registry:
    """A dict of factories whose unknown-name error lists the known names.

    Args:
        kind (str): what the entries are, for messages ("method").
        package (str): the package whose modules register the entries ("rrx.methods").
        ordered (bool, optional): ``names()`` in the order the entries were registered (the order the package's
            ``__init__`` imports its modules) instead of sorted. Default: False.
    """

    def __init__(self, kind: str, package: str, ordered: bool = False):
        self.kind = kind
        self.package = package
        self.ordered = ordered
        self._entries: dict[str, Callable] = {}
        self._configs: dict[str, type | None] = {}
        self._presets: dict[str, Any] = {}
        self._loaded = self._loading = False
        self._modules: list = []

    def register(
        self, name: str, config: type | None = None, presets: dict[str, Any] | None = None
    ) -> Callable[[Callable], Callable]:
        """Register a factory under ``name``, with the dataclass ``config`` of its keys (the config group's option
        ``<group>=name``, ``rrx.config``) and ``presets``: more options, each an instance of ``config``."""

        def add(factory: Callable) -> Callable:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = factory
            self._configs[name] = config
            for preset, node in (presets or {}).items():
                if preset in self._presets:
                    raise ValueError(f"{self.kind} preset {preset!r} is registered twice")
                self._presets[preset] = node
            return factory

        return add

    def config(self, name: str) -> type | None:
        """The dataclass of ``name``'s config (None: registered without one)."""
        self._load()
        return self._configs.get(name)

    def presets(self) -> dict[str, Any]:
        """The config group's options that are another entry's config with other values (``method=rrda``)."""
        self._load()
        return dict(self._presets)

    def get(self, name: str) -> Callable:
        self._load()
        if name not in self._entries:
            raise RRXError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        return self._entries[name]

    def names(self) -> list[str]:
        self._load()
        return list(self._entries) if self.ordered else sorted(self._entries)

    def declared(self, name: str) -> list:
        """The items of the module-level lists ``name`` (``TABLES``, ``FIGURES``) of the package's modules, in module
        order: what the entries' modules declare besides their entries."""
        self._load()
        return [item for module in self._modules for item in getattr(module, name, ())]

    def _load(self) -> None:
        if self._loaded or self._loading:  # loading: a module being imported looked an entry up
            return
        self._loading = True
        try:
            path = importlib.import_module(self.package).__path__
            self._modules = [
                importlib.import_module(f"{self.package}.{module.name}") for module in pkgutil.iter_modules(path)
            ]
            self._loaded = True  # only once every module imported: a failing import fails every lookup, not the first
        finally:
            self._loading = False
