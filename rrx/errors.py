"""The one exception type rrx raises for bad input: its message is shown to the user as is."""


class RRXError(Exception):
    """Bad input (a path, a config value, a file) named in a one-line message."""


def check_choice(key: str, value, known) -> None:
    """Raise ``RRXError("<key>=<value>; known: a, b")`` unless ``value`` is one of ``known``."""
    if value not in known:
        raise RRXError(f"{key}={value}; known: {', '.join(known)}")
