"""The one exception type rrx raises for bad input: its message is shown to the user as is."""


class RRXError(Exception):
    """Bad input (a path, a config value, a file) named in a one-line message."""
