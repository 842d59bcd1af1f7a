"""sha256 of files and streams: whole-file digests (the blob key), per-chunk digests (parallel verification).

A file larger than ``CHUNK_SIZE`` is also described by the sha256 of each ``CHUNK_SIZE`` piece (the last one
shorter): a pull verifies those pieces on all cores as they land instead of one sha256 stream on one core.
``Verifier`` checks bytes written into a file (read back from it, so the digest is of the bytes on disk);
``copy_hashing`` and ``digest_file`` compute both kinds of digest in one read pass.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from registry.errors import IntegrityError

CHUNK = 8 << 20  # I/O buffer size
CHUNK_SIZE = 64 << 20  # manifest chunk size: files above it get per-chunk digests
Progress = Callable[[int], None]
Landed = Callable[[int, int], None]  # (offset, length) of bytes now written


def _noop(_: int) -> None:
    return None


@functools.lru_cache(maxsize=1)
def hash_pool() -> ThreadPoolExecutor:
    """The process-wide pool that hashes chunks: one thread per usable core (hashlib and pread release the
    GIL; ``taskset`` or a cgroup CPU set limits it)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 2)
    return ThreadPoolExecutor(max(2, cores), thread_name_prefix="sha256")


@dataclass(frozen=True)
class FileDigest:
    sha256: str
    size: int
    chunks: tuple[str, ...] = ()  # per-CHUNK_SIZE sha256, only for files larger than one chunk


def chunk_spans(size: int, chunk_size: int = CHUNK_SIZE) -> list[tuple[int, int]]:
    """(offset, length) of each chunk of a file of ``size`` bytes."""
    return [(off, min(chunk_size, size - off)) for off in range(0, size, chunk_size)]


# Largest single write(2): a buffered write of N bytes makes the kernel (ext4, Linux >= 6.16) back it with
# page-cache folios of up to N bytes, and high-order free memory is what a VM's balloon reports to the host as
# free (virtio free page reporting); the host then re-faults it on first touch. Measured on the bench VM
# (bench/registry/RESULTS.md): writing 1 GiB in 1 MiB writes cost 5-8 s of kernel CPU once memory had been
# idle for 15 s, in 64 KiB writes 0.2 s; without a balloon the two cost the same.
WRITE_PIECE = 64 << 10


def write_all(fd: int, data: memoryview) -> None:
    while data:
        n = os.write(fd, data[:WRITE_PIECE])
        data = data[n:]


def pwrite_all(fd: int, data: memoryview | bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view[:WRITE_PIECE], offset)
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


def hash_range(fd: int, offset: int, length: int) -> str:
    """sha256 of ``length`` bytes of ``fd`` from ``offset`` (pread; a short file hashes what is there)."""
    h = hashlib.sha256()
    buf = bytearray(min(CHUNK, max(length, 1)))
    view = memoryview(buf)
    end = offset + length
    while offset < end:
        n = os.preadv(fd, [view[: min(len(buf), end - offset)]], offset)
        if n <= 0:
            break
        h.update(view[:n])
        offset += n
    return h.hexdigest()


class _StreamDigest:
    """Whole-stream sha256 and per-chunk sha256 of buffers fed in order; the two run in separate threads."""

    def __init__(self, chunk_size: int = CHUNK_SIZE) -> None:
        self.whole = hashlib.sha256()
        self.chunk_size = chunk_size
        self.chunks: list[str] = []
        self._chunk = hashlib.sha256()
        self._filled = 0
        self.size = 0

    def update_chunks(self, view: memoryview) -> None:
        while view:
            take = min(len(view), self.chunk_size - self._filled)
            self._chunk.update(view[:take])
            self._filled += take
            view = view[take:]
            if self._filled == self.chunk_size:
                self.chunks.append(self._chunk.hexdigest())
                self._chunk, self._filled = hashlib.sha256(), 0

    def result(self) -> FileDigest:
        if self.size <= self.chunk_size:
            return FileDigest(self.whole.hexdigest(), self.size)
        chunks = self.chunks + ([self._chunk.hexdigest()] if self._filled else [])
        return FileDigest(self.whole.hexdigest(), self.size, tuple(chunks))


def _write_chunk(fd: int, data: memoryview, offset: int, flush_behind: bool) -> None:
    write_all(fd, data)
    if flush_behind:
        start_writeback(fd, offset, len(data))


def _pipeline(
    src_fd: int, sink: Callable[[memoryview, int], None] | None, progress: Progress, first: bytes = b""
) -> FileDigest:
    """Read ``src_fd`` to EOF once; the whole-file sha256, the chunk digests and ``sink`` (if any) run in
    three threads on the same buffer, so every digest is of exactly the bytes handed to the sink."""
    d = _StreamDigest()
    bufs = [bytearray(CHUNK) for _ in range(3)]
    pending: list[Future] = []
    with ThreadPoolExecutor(3, thread_name_prefix="copyhash") as pool:
        i = 0
        while True:
            buf = bufs[i % 3]
            n = os.readv(src_fd, [buf])
            for fut in pending:
                fut.result()
            if n == 0:
                break
            view = memoryview(buf)[:n]
            pending = [pool.submit(d.whole.update, view), pool.submit(d.update_chunks, view)]
            if sink is not None:
                pending.append(pool.submit(sink, view, d.size))
            d.size += n
            progress(n)
            i += 1
    return d.result()


def copy_hashing(
    src_fd: int, dst_fd: int, progress: Progress = _noop, flush_behind: bool = False
) -> FileDigest:
    """Copy src to dst in one read pass, computing the file's sha256 and chunk digests of the very buffers
    written. ``flush_behind``: start disk writeback of each buffer once written (for a caller that fsyncs)."""
    return _pipeline(src_fd, lambda view, off: _write_chunk(dst_fd, view, off, flush_behind), progress)


def digest_file(path: str | os.PathLike, progress: Progress = _noop) -> FileDigest:
    """The sha256 and chunk digests of a file, read once."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return _pipeline(fd, None, progress)
    finally:
        os.close(fd)


def digest_bytes(data: bytes) -> FileDigest:
    """The sha256 and chunk digests of bytes in memory."""
    whole = hashlib.sha256(data).hexdigest()
    if len(data) <= CHUNK_SIZE:
        return FileDigest(whole, len(data))
    view = memoryview(data)
    chunks = [hashlib.sha256(view[o : o + n]).hexdigest() for o, n in chunk_spans(len(data))]
    return FileDigest(whole, len(data), tuple(chunks))


def hash_file(path: str | os.PathLike, progress: Progress = _noop) -> tuple[str, int]:
    """sha256 hex and size of a file, read once."""
    d = digest_file(path, progress)
    return d.sha256, d.size


def stale_chunks(fd: int, size: int, chunks: Sequence[str], chunk_size: int = CHUNK_SIZE) -> list[int]:
    """Indices of the chunks of a (partial) file that do not match ``chunks``; hashed on all cores."""
    spans = chunk_spans(size, chunk_size)
    futures = [hash_pool().submit(hash_range, fd, off, n) for off, n in spans]
    try:
        return [i for i, fut in enumerate(futures) if fut.result() != chunks[i]]
    finally:
        for fut in futures:
            fut.cancel()


class Verifier:
    """Verifies a file as its bytes are written into ``fd``: the writer reports each written range with
    ``landed(offset, length)``; a chunk is hashed (read back from the file, on the hash pool) once all its
    bytes have landed. A file without chunk digests is hashed whole once complete. ``finish()`` waits and
    raises IntegrityError naming the file and the first bad chunk. ``cancel()`` drops work not started."""

    def __init__(
        self,
        fd: int,
        label: str,
        size: int,
        sha256: str,
        chunks: Sequence[str] = (),
        chunk_size: int = CHUNK_SIZE,
        progress: Progress = _noop,
        todo: Sequence[int] | None = None,
    ) -> None:
        self.fd, self.label, self.size, self.sha256 = fd, label, size, sha256
        self.chunks = tuple(chunks)
        self.chunk_size = chunk_size if self.chunks else max(size, 1)
        self.spans = chunk_spans(size, self.chunk_size) if size else [(0, 0)]
        self.todo = list(range(len(self.spans))) if todo is None else list(todo)
        self._missing = {i: self.spans[i][1] for i in self.todo}
        self._futures: dict[int, Future] = {}
        self._lock = threading.Lock()
        self._progress = progress
        for i in self.todo:
            if self.spans[i][1] == 0:
                self._start(i)

    def ranges(self) -> list[tuple[int, int]]:
        """The (offset, length) ranges still to be written."""
        return [self.spans[i] for i in self.todo if self.spans[i][1]]

    def landed(self, offset: int, length: int) -> None:
        self._progress(length)
        end = offset + length
        with self._lock:
            while offset < end:
                i = offset // self.chunk_size
                take = min(end, (i + 1) * self.chunk_size) - offset
                left = self._missing.get(i)
                if left is None or take > left:
                    raise IntegrityError(f"{self.label}: bytes {offset}-{end - 1} were written twice")
                self._missing[i] = left - take
                if left == take:
                    self._start(i)
                offset += take

    def _start(self, i: int) -> None:
        off, n = self.spans[i]
        self._futures[i] = hash_pool().submit(hash_range, self.fd, off, n)

    def cancel(self) -> None:
        for fut in self._futures.values():
            fut.cancel()

    def finish(self) -> None:
        """Wait for every chunk's digest; IntegrityError on a mismatch or on bytes that never landed."""
        try:
            short = [i for i, left in self._missing.items() if left]
            if short:
                raise IntegrityError(
                    f"{self.label}: {sum(self._missing[i] for i in short)} bytes were never written"
                )
            for i in self.todo:
                actual = self._futures[i].result()
                want = self.chunks[i] if self.chunks else self.sha256
                if actual != want:
                    what = f"chunk {i} (bytes {self.spans[i][0]}+{self.spans[i][1]}) " if self.chunks else ""
                    raise IntegrityError(
                        f"integrity error: {self.label} {what}has sha256 {actual}; the manifest says {want}",
                        hint="the stored blob is corrupt; push the artifact again from a good copy",
                    )
        finally:
            self.cancel()
