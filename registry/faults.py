"""Faults of the machine, not of the input: full or read-only disks, refused permissions, a store or
catalog that stopped answering. Each becomes a plain RegistryError (exit 1) naming the path or endpoint and
what to do; never a traceback.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator
from typing import TYPE_CHECKING

from registry.errors import RegistryError

if TYPE_CHECKING:
    from registry.store.base import Store


class LocalFault(RegistryError):
    """A local file system refused a read or write (full, read-only, permissions, name too long)."""


_WHAT = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENAMETOOLONG: "file name too long for the file system",
    errno.ENOTDIR: "a path component is not a directory",
    errno.EEXIST: "a file is in the way",
}


def describe_os_error(exc: OSError, store: Store | None = None) -> LocalFault:
    """A LocalFault for ``exc`` (its ``filename`` says where), with a fix that fits the place and errno."""
    where = exc.filename if exc.filename is not None else "a file"
    what = _WHAT.get(exc.errno or 0, exc.strerror or type(exc).__name__)
    root = str(getattr(store, "root", "") or "")
    in_store = bool(root) and str(where).startswith(root.rstrip("/") + "/")
    in_partial = ".partial" in str(where)
    if in_store:
        hint = f"the store {getattr(store, 'url', root)} must be writable and have space; fix it and retry"
    elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "free space there (or choose another directory) and run the command again"
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        hint = "choose a directory you can write to"
    else:
        hint = "choose another path"
    if in_partial:
        hint += "; the verified files of the interrupted pull (the .partial directory) are reused"
    return LocalFault(f"cannot write {where}: {what}", hint=hint)


@contextlib.contextmanager
def translated(store: Store | None = None) -> Iterator[None]:
    """Turn OSError and the store's transport errors raised inside into RegistryErrors."""
    try:
        yield
    except RegistryError:
        raise
    except OSError as exc:
        raise describe_os_error(exc, store) from None
    except Exception as exc:
        mapped = store.translate_error(exc) if store is not None else None
        if mapped is None:
            raise
        raise mapped from None
