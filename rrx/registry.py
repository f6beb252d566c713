"""Name -> factory registries, one per config group (as timm's ``register_model``)."""

from __future__ import annotations

from typing import Callable

from rrx.errors import RRXError


class Registry:
    """A dict of factories whose unknown-name error lists the known names."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Callable] = {}

    def register(self, name: str) -> Callable[[Callable], Callable]:
        def add(factory: Callable) -> Callable:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = factory
            return factory

        return add

    def get(self, name: str) -> Callable:
        if name not in self._entries:
            raise RRXError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)
