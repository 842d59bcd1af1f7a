"""LocalStore: a directory. Blobs are staged under ``tmp/`` and published by ``link()`` (create-only, atomic).

A new blob is copied and hashed in one read pass (``copy_hashing``: the sha256 is of the very buffers written)
and, by default, fsynced before it is published; disk writeback of each chunk starts as soon as it is written
(``sync_file_range``), so the final fsync overlaps the copy instead of following it.
``TRTBUILD_LOCAL_FSYNC=0`` skips the fsync (faster on slow disks; a crash can then leave a published blob
whose bytes never reached the disk: pull detects it by its sha256, but the store must be repaired by a
re-push).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from registry.errors import IntegrityError, StoreUnavailable
from registry.hashing import copy_hashing
from registry.store.base import BlobInfo, Progress, Store, blob_key, manifest_key

FSYNC = os.environ.get("TRTBUILD_LOCAL_FSYNC", "1") != "0"


class LocalStore(Store):
    can_ingest = True

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).expanduser().absolute()
        self.url = f"file://{self.root}"
        try:
            for sub in ("blobs/sha256", "manifests/sha256", "tmp"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot use store directory {self.root}: {exc}") from exc

    def _blob(self, hexdigest: str) -> Path:
        return self.root / blob_key(hexdigest)

    def _staging(self) -> Path:
        return self.root / "tmp" / f"{uuid.uuid4().hex}.part"

    def _publish(self, staged: Path, final: Path) -> bool:
        """Make ``staged`` visible as ``final`` unless it exists (create-only via link). True if new."""
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(staged, final)
            return True
        except FileExistsError:
            return False
        finally:
            staged.unlink(missing_ok=True)

    def has_blob(self, hexdigest: str, size: int) -> bool:
        try:
            return self._blob(hexdigest).stat().st_size == size
        except FileNotFoundError:
            return False

    def _copy_in(self, path: Path, progress: Progress) -> tuple[Path, str, int]:
        staged = self._staging()
        src = os.open(path, os.O_RDONLY)
        try:
            dst = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
            try:
                hexdigest, size = copy_hashing(src, dst, progress, flush_behind=FSYNC)
                if FSYNC:
                    os.fsync(dst)
            finally:
                os.close(dst)
        except BaseException as exc:
            staged.unlink(missing_ok=True)
            if isinstance(exc, OSError) and exc.filename is None:
                exc.filename = str(staged)  # a write or fsync failed: the store's disk (full ...)
            raise
        finally:
            os.close(src)
        return staged, hexdigest, size

    def ingest(self, path: Path, progress: Progress) -> tuple[str, int, bool]:
        staged, hexdigest, size = self._copy_in(path, progress)
        return hexdigest, size, self._publish(staged, self._blob(hexdigest))

    def put_blob(self, hexdigest: str, path: Path, size: int, progress: Progress) -> None:
        if self.has_blob(hexdigest, size):
            return
        staged, actual, _ = self._copy_in(path, progress)
        if actual != hexdigest:
            staged.unlink(missing_ok=True)
            raise IntegrityError(
                f"{path} changed while it was pushed (sha256 {actual}, expected {hexdigest})"
            )
        self._publish(staged, self._blob(hexdigest))

    def download_blob(self, hexdigest: str, size: int, fd: int, progress: Progress) -> str:
        try:
            src = os.open(self._blob(hexdigest), os.O_RDONLY)
        except FileNotFoundError as exc:
            raise IntegrityError(f"blob sha256:{hexdigest} is missing from {self.url}") from exc
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            actual, _ = copy_hashing(src, fd, progress)
        finally:
            os.close(src)
        return actual

    def read_blob(self, hexdigest: str) -> bytes:
        try:
            return self._blob(hexdigest).read_bytes()
        except FileNotFoundError as exc:
            raise IntegrityError(f"blob sha256:{hexdigest} is missing from {self.url}") from exc

    def put_manifest(self, hexdigest: str, data: bytes) -> None:
        final = self.root / manifest_key(hexdigest)
        if final.exists():
            return
        staged = self._staging()
        try:
            with open(staged, "xb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            staged.unlink(missing_ok=True)
            exc.filename = str(staged) if exc.filename is None else exc.filename
            raise
        self._publish(staged, final)

    def get_manifest(self, hexdigest: str) -> bytes | None:
        try:
            return (self.root / manifest_key(hexdigest)).read_bytes()
        except FileNotFoundError:
            return None

    def list_blobs(self) -> Iterator[BlobInfo]:
        for sub in sorted((self.root / "blobs/sha256").iterdir()):
            for entry in os.scandir(sub):
                st = entry.stat()
                yield BlobInfo(entry.name, st.st_size, st.st_mtime)

    def list_manifests(self) -> Iterator[BlobInfo]:
        for entry in os.scandir(self.root / "manifests/sha256"):
            if entry.name.endswith(".json"):
                st = entry.stat()
                yield BlobInfo(entry.name[:-5], st.st_size, st.st_mtime)

    def delete_blob(self, hexdigest: str) -> None:
        self._blob(hexdigest).unlink(missing_ok=True)

    def delete_manifest(self, hexdigest: str) -> None:
        (self.root / manifest_key(hexdigest)).unlink(missing_ok=True)

    def clean_staging(self, older_than: float) -> int:
        n = 0
        for entry in os.scandir(self.root / "tmp"):
            if entry.stat().st_mtime < older_than:
                Path(entry.path).unlink(missing_ok=True)
                n += 1
        return n
