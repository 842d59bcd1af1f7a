"""The store interface: blobs addressed by sha256 and manifests addressed by the artifact hash.

Layout (both backends): ``blobs/sha256/<first2>/<hex>`` and ``manifests/sha256/<hex>.json``. Writes are
create-only and idempotent. Downloads only move bytes: they report each written range and the caller verifies
it (``registry.hashing.Verifier``). Progress callbacks may raise to stop a transfer (an interrupt): every
implementation lets such an exception end the transfer promptly and cleans up what it started.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from registry.errors import IntegrityError, RegistryError
from registry.hashing import FileDigest

Progress = Callable[[int], None]
Landed = Callable[[int, int], None]


def blob_key(hexdigest: str) -> str:
    return f"blobs/sha256/{hexdigest[:2]}/{hexdigest}"


def manifest_key(hexdigest: str) -> str:
    return f"manifests/sha256/{hexdigest}.json"


@dataclass(frozen=True)
class StoreTuning:
    """Transfer knobs of the stores (the registry reads no environment; its user passes these)."""

    s3_threads: int = 10  # parallel S3 requests per transfer
    s3_part_mib: int = 64  # multipart part size (the CRT data path's part size)
    s3_target_gbps: float = 10.0  # the CRT's throughput target: how many connections it opens
    s3_multipart_mib: int = 64  # single PUT below this size
    s3_staged_push: bool = True  # False: hash every file first, then upload only missing blobs
    local_fsync: bool = True  # False: LocalStore publishes blobs without fsync


@dataclass(frozen=True)
class BlobInfo:
    hexdigest: str
    size: int
    mtime: float  # seconds since the epoch


class Store(abc.ABC):
    """A content-addressed store. Implementations are thread-safe."""

    url: str

    # Stores that can stream a file into a hidden staging area and publish it by a cheap rename set this
    # and implement ingest(): push then reads each new file once (copy and hash in one pass).
    can_ingest: bool = False

    @abc.abstractmethod
    def has_blob(self, hexdigest: str, size: int) -> bool:
        """True when a blob of this digest (and size) is stored."""

    @abc.abstractmethod
    def put_blob(self, hexdigest: str, path: Path, size: int, progress: Progress) -> None:
        """Store the file at ``path`` (already hashed to ``hexdigest``) unless present; create-only."""

    def ingest(self, path: Path, progress: Progress) -> tuple[FileDigest, bool]:
        """Copy a file into the store while hashing it: (digests, newly stored). Only when ``can_ingest``."""
        raise NotImplementedError

    @abc.abstractmethod
    def download_blob(
        self, hexdigest: str, size: int, fd: int, landed: Landed, ranges: list[tuple[int, int]]
    ) -> None:
        """Write the blob's bytes in ``ranges`` ((offset, length) pairs) into the open file ``fd`` at the same
        offsets, in any order and in parallel; call ``landed(offset, length)`` after each piece is written."""

    @abc.abstractmethod
    def read_blob(self, hexdigest: str) -> bytes:
        """The bytes of a small blob (unverified; the caller verifies)."""

    @abc.abstractmethod
    def put_manifest(self, hexdigest: str, data: bytes) -> None:
        """Store manifest bytes under its digest; create-only, a repeat is a no-op."""

    @abc.abstractmethod
    def get_manifest(self, hexdigest: str) -> bytes | None:
        """The stored manifest bytes, or None (unverified; the caller verifies)."""

    @abc.abstractmethod
    def list_blobs(self) -> Iterator[BlobInfo]:
        """Every stored blob."""

    @abc.abstractmethod
    def list_manifests(self) -> Iterator[BlobInfo]:
        """Every stored manifest (hexdigest of the artifact hash)."""

    @abc.abstractmethod
    def delete_blob(self, hexdigest: str) -> None: ...

    @abc.abstractmethod
    def delete_manifest(self, hexdigest: str) -> None: ...

    def translate_error(self, exc: BaseException) -> RegistryError | None:
        """A StoreUnavailable for a transport error of this backend (e.g. the endpoint went away), or None
        for an error that is not the store's."""
        return None

    def clean_staging(self, older_than: float) -> int:
        """Remove abandoned partial uploads older than ``older_than`` (epoch seconds); returns the count."""
        return 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url})"


def missing_blob(hexdigest: str, url: str) -> IntegrityError:
    """The error for a blob the catalog names but the store lacks, with the way to put it back."""
    return IntegrityError(
        f"blob sha256:{hexdigest} is missing from {url}",
        hint="push the artifact's directory again (a push checks the store for every blob), or restore "
        "it from a local copy: trtbuild verify REF --repair DIR",
    )


def file_changed(path: Path, st: os.stat_result) -> bool:
    """True when a file's size or timestamps differ from an earlier stat."""
    now = os.stat(path)
    return (now.st_size, now.st_mtime_ns, now.st_ctime_ns) != (st.st_size, st.st_mtime_ns, st.st_ctime_ns)
