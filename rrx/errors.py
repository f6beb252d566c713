"""The one exception type rrx raises for bad input (its message is shown to the user as is), and run stops."""

import contextlib
import signal
import threading


class RRXError(Exception):
    """Bad input (a path, a config value, a file) named in a one-line message."""


def check_choice(key: str, value, known) -> None:
    """Raise ``RRXError("<key>=<value>; known: a, b")`` unless ``value`` is one of ``known``."""
    if value not in known:
        raise RRXError(f"{key}={value}; known: {', '.join(known)}")


class Stopped(BaseException):
    """SIGTERM (or SIGINT) during a run: not an Exception, so a sweep stops instead of going on to the next job."""


def one_line_reason(err: BaseException) -> str:
    """A short description of why a run stopped, for logs and ``status.json``."""
    if isinstance(err, KeyboardInterrupt):
        return "interrupted (SIGINT)"
    text = str(err).strip().splitlines()
    return text[-1] if text else type(err).__name__


@contextlib.contextmanager
def stop_on_signals():
    """Turn SIGTERM and SIGINT into ``Stopped`` inside the block (main thread only), restoring the handlers after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise Stopped(f"stopped by {signal.Signals(signum).name}")

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
