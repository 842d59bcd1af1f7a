"""SIGTERM handled like Ctrl-C: the one helper the orchestrator and the runners use.

A cancelled CI job or a stopped pod sends SIGTERM; while ``sigterm_interrupts()`` is active the signal
raises :class:`trtbuild.errors.Interrupted` (a KeyboardInterrupt), so the same ``finally`` blocks run as for
Ctrl-C: containers are stopped and removed, half-made directories go, the build lease is released.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from trtbuild.errors import Interrupted


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(f"received signal {signal.Signals(signum).name}")


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """While active, SIGTERM raises Interrupted; the previous handler comes back on exit (nesting is
    harmless). Only the main thread can set handlers: in another thread it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
