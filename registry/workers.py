"""Run one transfer step over many files on threads, and stop all of it within a second when asked.

``run_all`` waits in the calling (main) thread, where Ctrl-C and SIGTERM land. On the first error or an
interrupt it raises a stop flag that every progress callback checks (``Stopper.check``): workers end at their
next buffer or part, queued work is dropped, and the first error (or ``KeyboardInterrupt``) is re-raised after
every worker has returned, so cleanup (aborting multipart uploads, removing staged files) has run.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
BATCH = 64
_POOL_IDS = itertools.count()


class Stopped(Exception):
    """Raised inside a worker when the transfer is being stopped (another worker failed or an interrupt)."""


class Stopper:
    def __init__(self) -> None:
        self._event = threading.Event()

    def stop(self) -> None:
        self._event.set()

    @property
    def stopped(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Stopped("transfer stopped")

    def wrap(self, progress: Callable[[int], None]) -> Callable[[int], None]:
        """``progress`` that first raises Stopped once the transfer is being stopped."""

        def advance(n: int) -> None:
            self.check()
            progress(n)

        return advance


def run_all(
    fn: Callable[[T], None],
    items: Iterable[T],
    stopper: Stopper,
    threads: int = 8,
    heavy: Callable[[T], bool] = lambda _: False,
    heavy_slots: int = 2,
) -> None:
    """Call ``fn`` on every item on ``threads`` threads; at most ``heavy_slots`` heavy items at once. Light
    items go in batches (one task per ``BATCH`` of them: thousands of small files cost little overhead)."""
    slots = threading.Semaphore(heavy_slots)

    def one(item: T) -> None:
        with slots:
            stopper.check()
            fn(item)

    def batch(light: list[T]) -> None:
        for item in light:
            stopper.check()
            fn(item)

    items = list(items)
    light = [item for item in items if not heavy(item)]
    prefix = f"transfer{next(_POOL_IDS)}"
    pool = ThreadPoolExecutor(threads, thread_name_prefix=prefix)
    futures: list[Future] = []
    try:
        futures = [pool.submit(one, item) for item in items if heavy(item)]
        step = max(1, min(BATCH, len(light) // (threads * 4)))
        futures += [pool.submit(batch, light[i : i + step]) for i in range(0, len(light), step)]
        for fut in futures:
            fut.result()  # an interruptible wait: Ctrl-C lands here
    except BaseException as exc:
        stopper.stop()
        pool.shutdown(wait=True, cancel_futures=True)
        # An interrupt inside submit() can land after a worker thread started but before the pool recorded
        # it, so shutdown() does not join that one: join every thread of this pool by name.
        for t in threading.enumerate():
            if t.name.startswith(prefix + "_") and t is not threading.current_thread():
                t.join()
        if isinstance(exc, Stopped):  # a worker saw the flag first: report the error that raised it
            for fut in futures:
                if fut.done() and not fut.cancelled():
                    err = fut.exception()
                    if err is not None and not isinstance(err, Stopped):
                        raise err from None
        raise
    pool.shutdown(wait=True)
