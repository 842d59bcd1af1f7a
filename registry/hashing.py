"""sha256 while streaming: copy-and-hash pipelines (one read pass), and helpers to write and flush ranges."""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
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


SYNC_FILE_RANGE_WRITE = 2


@functools.lru_cache(maxsize=1)
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """libc's sync_file_range (Linux), or None where it is missing."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (AttributeError, OSError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing a just-written range to disk now (asynchronously), so that a final
    fsync() finds little left to do: the disk writes overlap the copy and hash instead of following them."""
    fn = _sync_file_range()
    if fn is not None:
        fn(fd, offset, length, SYNC_FILE_RANGE_WRITE)  # best effort: fsync() still decides durability


def _write_chunk(fd: int, data: memoryview, offset: int, flush_behind: bool) -> None:
    write_all(fd, data)
    if flush_behind:
        start_writeback(fd, offset, len(data))


def copy_hashing(
    src_fd: int, dst_fd: int, progress: Progress = _noop, chunk: int = CHUNK, flush_behind: bool = False
) -> tuple[str, int]:
    """Copy src to dst in one read pass; sha256 and write run in parallel threads on the same buffer (the
    digest is of exactly the bytes written). ``flush_behind``: start disk writeback of each chunk as soon as
    it is written (for a caller that fsyncs at the end). Returns (hex, size)."""
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
            pending = (
                pool.submit(h.update, view),
                pool.submit(_write_chunk, dst_fd, view, total, flush_behind),
            )
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
