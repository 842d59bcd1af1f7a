"""sha256 while streaming: copy-and-hash pipelines and an in-order hasher for parallel ranged transfers."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

CHUNK = 8 << 20
Progress = Callable[[int], None]


def _noop(_: int) -> None:
    return None


def write_all(fd: int, data: memoryview) -> None:
    while data:
        n = os.write(fd, data)
        data = data[n:]


def pwrite_all(fd: int, data: memoryview | bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


def copy_hashing(src_fd: int, dst_fd: int, progress: Progress = _noop, chunk: int = CHUNK) -> tuple[str, int]:
    """Copy src to dst in one read pass; sha256 and write run in parallel threads. Returns (hex, size)."""
    h = hashlib.sha256()
    bufs = [bytearray(chunk) for _ in range(3)]
    total = 0
    pending: tuple = ()
    with ThreadPoolExecutor(2, thread_name_prefix="copyhash") as pool:
        i = 0
        while True:
            buf = bufs[i % 3]
            n = os.readv(src_fd, [buf])
            for fut in pending:
                fut.result()
            if n == 0:
                break
            view = memoryview(buf)[:n]
            pending = (pool.submit(h.update, view), pool.submit(write_all, dst_fd, view))
            total += n
            progress(n)
            i += 1
    return h.hexdigest(), total


def hash_file(path: str | os.PathLike, progress: Progress = _noop, chunk: int = CHUNK) -> tuple[str, int]:
    """sha256 hex and size of a file, read once; reading and hashing overlap."""
    h = hashlib.sha256()
    bufs = [bytearray(chunk) for _ in range(2)]
    total = 0
    with open(path, "rb", buffering=0) as f, ThreadPoolExecutor(1, thread_name_prefix="hash") as pool:
        pending = None
        i = 0
        while True:
            buf = bufs[i % 2]
            n = f.readinto(buf)
            if pending is not None:
                pending.result()
            if not n:
                break
            pending = pool.submit(h.update, memoryview(buf)[:n])
            total += n
            progress(n)
            i += 1
    return h.hexdigest(), total


class OrderedHasher:
    """Feeds parts that arrive out of order into one sha256, in order; callers wait for room in the window.

    The thread whose part completes the in-order prefix hashes it outside the lock, so other workers only
    deposit their part and go on fetching.
    """

    def __init__(self, window: int) -> None:
        self._h = hashlib.sha256()
        self._next = 0
        self._parts: dict[int, bytes] = {}
        self._window = window
        self._cond = threading.Condition()
        self._hashing = False
        self._error: BaseException | None = None

    def wait_for_slot(self, index: int) -> None:
        """Block until part ``index`` is within ``window`` parts of the next one to hash."""
        with self._cond:
            while index >= self._next + self._window and self._error is None:
                self._cond.wait()
            if self._error is not None:
                raise self._error

    def add(self, index: int, data: bytes) -> None:
        with self._cond:
            self._parts[index] = data
            if self._hashing:
                return  # the thread that is hashing will pick this part up
            self._hashing = True
        try:
            while True:
                with self._cond:
                    part = self._parts.pop(self._next, None)
                    if part is None:
                        self._hashing = False
                        self._cond.notify_all()
                        return
                self._h.update(part)  # outside the lock; releases the GIL
                with self._cond:
                    self._next += 1
                    self._cond.notify_all()
        except BaseException:
            with self._cond:
                self._hashing = False
            raise

    def fail(self, exc: BaseException) -> None:
        with self._cond:
            self._error = exc
            self._cond.notify_all()

    def hexdigest(self) -> str:
        with self._cond:
            while self._hashing:
                self._cond.wait()
            if self._parts:
                raise RuntimeError("parts missing before the end of the stream")
            return self._h.hexdigest()
