"""Content-addressed stores: one small interface (``base.Store``), one backend per module."""

from __future__ import annotations

from registry.store.base import BlobInfo, Store, StoreTuning


def open_store(url: str, tuning: StoreTuning | None = None) -> Store:
    """A store for ``file://``, a plain path, or ``s3://bucket/prefix``."""
    from urllib.parse import urlparse

    from registry.errors import InvalidInput

    tuning = tuning or StoreTuning()
    parsed = urlparse(url)
    forms = "use file:///absolute/dir or s3://bucket/prefix"
    if parsed.scheme in ("", "file"):
        from pathlib import Path

        from registry.store.local import LocalStore

        path = parsed.path if parsed.scheme == "file" else url
        if parsed.scheme == "file" and parsed.netloc:
            raise InvalidInput(f"store URL {url!r} has a host part", hint="use file:///absolute/path")
        if not path.startswith("/"):
            raise InvalidInput(f"store URL {url!r} is not an absolute directory or a URL", hint=forms)
        root = Path(path)
        if not root.exists() and not root.parent.is_dir():
            raise InvalidInput(
                f"the directory {root.parent} of the store {url} does not exist",
                hint=f"create it, or fix TRTBUILD_STORE_URL / --store-url ({forms})",
            )
        return LocalStore(root, fsync=tuning.local_fsync)
    if parsed.scheme == "s3":
        from registry.store.s3 import S3Store

        return S3Store.from_url(url, tuning)
    raise InvalidInput(f"unsupported store URL {url!r}", hint=forms)


__all__ = ["BlobInfo", "Store", "StoreTuning", "open_store"]
