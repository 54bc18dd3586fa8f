"""A graceful stop on SIGTERM or SIGINT, shared by the drain and the vitals flow."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

log = logging.getLogger(__name__)

GRACEFUL: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def stop_on_signals(
    stop: threading.Event, signals: tuple[signal.Signals, ...] = GRACEFUL
) -> Iterator[None]:
    """The first of ``signals`` sets ``stop``; a second one acts as before. Main thread only.

    Python runs signal handlers in the main thread only: elsewhere this does nothing (a drain
    in the vitals flow's thread is stopped through ``stop`` by the flow). The handlers it
    replaced (Prefect's, which marks a flow run crashed) are put back on exit, and at the
    first signal, so that an operator's second one still forces the stop.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # getsignal() answers None for a handler not set from Python: restore the default then.
    previous = {sig: signal.getsignal(sig) or signal.SIG_DFL for sig in signals}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def handle(signum: int, frame: FrameType | None) -> None:
        log.info("%s: stopping after the batch in hand", signal.Signals(signum).name)
        stop.set()
        restore()

    for sig in previous:
        signal.signal(sig, handle)
    try:
        yield
    finally:
        restore()
