"""Filesystem helpers: a failed step leaves nothing half-made."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path


def rmtree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


@contextlib.contextmanager
def clean_path_on_failure(path: Path) -> Iterator[Path]:
    """Yield ``path``; remove it if the block raises (including KeyboardInterrupt)."""
    try:
        yield path
    except BaseException:
        rmtree(path)
        raise


def fresh_dir(path: Path) -> Path:
    """An empty directory at ``path`` (whatever was there before is removed)."""
    rmtree(path)
    path.mkdir(parents=True)
    return path
