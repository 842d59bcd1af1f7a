"""The work directory (``$TRTBUILD_HOME/work``): step outputs, one folder per content key under models/,
checkpoints/, engines/, timing-caches/ and logs/. Everything there is a cache (published artifacts live in
the registry), so it may be cleaned by age and size; never while a build on this host uses it.

A build holds a shared lock on ``work/.in-use`` while it runs; cleaning takes the exclusive lock without
waiting, and cleans nothing when it cannot get it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trtbuild.errors import TrtbuildError
from trtbuild.fsutil import rmtree

AREAS = ("models", "checkpoints", "engines", "timing-caches", "logs")
IN_USE = ".in-use"
DAY_S = 86400.0


@dataclass
class WorkEntry:
    path: Path
    size: int
    last_used: float  # newest mtime in its tree, epoch seconds

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "size": self.size, "last_used": self.last_used}


@dataclass
class WorkCleanReport:
    root: str
    removed: list[WorkEntry] = field(default_factory=list)
    kept_bytes: int = 0
    skipped: str | None = None  # why nothing was cleaned (a build is running)
    dry_run: bool = False

    @property
    def freed_bytes(self) -> int:
        return sum(e.size for e in self.removed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "removed": [e.to_dict() for e in self.removed],
            "freed_bytes": self.freed_bytes,
            "kept_bytes": self.kept_bytes,
            "skipped": self.skipped,
            "dry_run": self.dry_run,
        }


def _lock_file(root: Path) -> int:
    root.mkdir(parents=True, exist_ok=True)
    return os.open(root / IN_USE, os.O_RDWR | os.O_CREAT, 0o644)


@contextlib.contextmanager
def in_use(root: Path) -> Iterator[None]:
    """Held by a build while it writes and reads under ``root`` (a shared lock: builds run side by side)."""
    try:
        fd = _lock_file(root)
    except OSError as exc:
        raise TrtbuildError(
            f"cannot use the work directory {root}: {exc.strerror or exc}",
            hint="make it writable, or point TRTBUILD_HOME at a writable directory",
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def _entry(path: Path) -> WorkEntry:
    size, newest = 0, path.lstat().st_mtime
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            newest = max(newest, st.st_mtime)
            if name in filenames:
                size += st.st_size
    return WorkEntry(path, size, newest)


def entries(root: Path) -> list[WorkEntry]:
    """Every step output under ``root``, least recently used first."""
    found: list[WorkEntry] = []
    for area in AREAS:
        base = root / area
        if base.is_dir():
            found.extend(_entry(p) for p in base.iterdir() if p.is_dir() and not p.is_symlink())
    return sorted(found, key=lambda e: e.last_used)


def clean(
    root: Path,
    *,
    max_age_s: float | None,
    max_bytes: int | None,
    dry_run: bool = False,
    now: float | None = None,
) -> WorkCleanReport:
    """Remove step outputs unused for ``max_age_s``, then the least recently used ones until at most
    ``max_bytes`` remain. Nothing is removed while a build on this host holds the work directory."""
    report = WorkCleanReport(str(root), dry_run=dry_run)
    if not root.is_dir():
        return report
    now = time.time() if now is None else now
    fd = _lock_file(root)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            report.skipped = "a build on this host is using the work directory"
            report.kept_bytes = sum(e.size for e in entries(root))
            return report
        kept = []
        for entry in entries(root):
            if max_age_s is not None and now - entry.last_used > max_age_s:
                report.removed.append(entry)
            else:
                kept.append(entry)
        total = sum(e.size for e in kept)
        while kept and max_bytes is not None and total > max_bytes:
            oldest = kept.pop(0)
            report.removed.append(oldest)
            total -= oldest.size
        report.kept_bytes = total
        if not dry_run:
            for entry in report.removed:
                rmtree(entry.path)
        return report
    finally:
        os.close(fd)
