"""One pull at a time into a destination: an ``flock`` on a small lock file beside it.

Two init containers of one pod, or a retried deploy job, may pull into the same directory at once. The second
waits for the first (saying so), then finds the destination complete and does nothing. The lock file
``.<DEST>.trtbuild-lock`` is removed by its holder when done; a waiter that then finds its file unlinked
(or replaced) starts over with the current one, so two holders can never hold different files. The kernel
releases the lock when its holder exits, however it exits (a file left by a killed pull is reused).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

MAX_NAME = 200  # bytes; the lock file's name must stay within a file system's 255


def lock_path(dest: Path) -> Path:
    """The lock file of ``dest`` (absolute): hidden, in the same directory."""
    name = dest.name
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME:
        name = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()
    return dest.parent / f".{name}.trtbuild-lock"


@contextlib.contextmanager
def dest_lock(dest: Path, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the pull lock of ``dest`` (its parent directory is created). Blocks while another process holds
    it, calling ``on_wait`` once first. OSError (read-only or full parent, a file in the way) propagates."""
    dest = Path(dest).absolute()
    dest.parent.mkdir(parents=True, exist_ok=True)
    path = lock_path(dest)
    waited = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None and not waited:
                    on_wait()
                waited = True
                fcntl.flock(fd, fcntl.LOCK_EX)
            held = os.fstat(fd)
            try:
                now = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:
                now = None
        except BaseException:
            os.close(fd)
            raise
        if now is not None and (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
            break
        os.close(fd)  # the previous holder removed (or replaced) the file we waited on: take the new one
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # while still holding it: waiters on this file then start over
        os.close(fd)
