"""The one exception type rrx raises for bad input (its message is shown to the user as is), and the one-line
reason a run stopped."""

from typing import Collection


class RRXError(Exception):
    """Bad input (a path, a config value, a file) named in a one-line message."""


def check_choice(key: str, value: object, known: Collection[str]) -> None:
    """Raise ``RRXError("<key>=<value>; known: a, b")`` unless ``value`` is one of ``known``."""
    if value not in known:
        raise RRXError(f"{key}={value}; known: {', '.join(known)}")


def one_line_reason(err: BaseException) -> str:
    """A short description of why a run stopped, for logs and ``status.json``."""
    if isinstance(err, KeyboardInterrupt):
        return "interrupted (SIGINT)"
    text = str(err).strip().splitlines()
    return text[-1] if text else type(err).__name__
