"""Run stops by signal: SIGTERM and SIGINT inside a run raise ``Stopped`` (``stop_on_signals``)."""

import contextlib
import signal
import threading
from types import FrameType
from typing import Iterator, NoReturn


class Stopped(BaseException):
    """SIGTERM (or SIGINT) during a run: not an Exception, so a sweep stops instead of going on to the next job."""


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn SIGTERM and SIGINT into ``Stopped`` inside the block (main thread only), restoring the handlers after.

    SIGTERM is taken only when nothing else handles it. In a submitit job (``hydra/launcher=slurm`` or
    ``local_parallel``) submitit ignores SIGTERM, which SLURM sends at a preemption before SIGUSR2, and requeues the
    job on SIGUSR2; stopping on that SIGTERM would end the job before it is requeued. The requeued job runs the same
    command in the same folder, and ``trainer.resume=auto`` continues from the last checkpoint.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> NoReturn:
        raise Stopped(f"stopped by {signal.Signals(signum).name}")

    signals = [signal.SIGINT] + ([signal.SIGTERM] if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL else [])
    previous = {sig: signal.signal(sig, stop) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
