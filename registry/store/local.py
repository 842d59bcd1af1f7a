"""LocalStore: a directory. Blobs are staged under ``tmp/`` and published by ``link()`` (create-only, atomic).

A new blob is copied and hashed in one read pass (``copy_hashing``: the sha256 and chunk digests are of the
very buffers written; a small file is one read, one hash, one write) and, by default, fsynced before it is
published; disk writeback of each chunk starts as soon as it is written (``sync_file_range``), so the final
fsync overlaps the copy instead of following it.
A download is a clone (``FICLONE``, on filesystems with reflinks) or an in-kernel ``copy_file_range`` of
each range, reported chunk by chunk so that the caller verifies each chunk while the next is copied.
``fsync=False`` (``StoreTuning.local_fsync``) skips the fsync (faster on slow disks; a crash can then leave
a published blob whose bytes never reached the disk: pull detects it by its sha256, but the store must be
repaired by a re-push).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from registry.errors import IntegrityError, StoreUnavailable
from registry.hashing import CHUNK, FileDigest, Landed, copy_hashing, pwrite_all, write_all
from registry.store.base import BlobInfo, Progress, Store, blob_key, manifest_key, missing_blob

FICLONE = 0x40049409  # ioctl: share the source's extents (btrfs, XFS with reflink, bcachefs)
COPY_PIECE = 64 << 20  # copy_file_range per call: the caller verifies each piece while the next is copied


class LocalStore(Store):
    can_ingest = True

    def __init__(self, root: str | os.PathLike, *, fsync: bool = True) -> None:
        self.fsync = fsync
        self.root = Path(root).expanduser().absolute()
        self.url = f"file://{self.root}"
        self._blobs = str(self.root / "blobs/sha256")
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

    def _copy_in(self, path: Path, progress: Progress) -> tuple[Path, FileDigest]:
        staged = self._staging()
        src = os.open(path, os.O_RDONLY)
        try:
            dst = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
            try:
                if os.fstat(src).st_size < CHUNK:  # small: one read, one hash, one write
                    data = os.read(src, CHUNK)
                    write_all(dst, memoryview(data))
                    digest = FileDigest(hashlib.sha256(data).hexdigest(), len(data))
                    progress(len(data))
                else:
                    digest = copy_hashing(src, dst, progress, flush_behind=self.fsync)
                if self.fsync:
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
        return staged, digest

    def ingest(self, path: Path, progress: Progress) -> tuple[FileDigest, bool]:
        staged, digest = self._copy_in(path, progress)
        return digest, self._publish(staged, self._blob(digest.sha256))

    def put_blob(self, hexdigest: str, path: Path, size: int, progress: Progress) -> None:
        if self.has_blob(hexdigest, size):
            return
        staged, digest = self._copy_in(path, progress)
        if digest.sha256 != hexdigest:
            staged.unlink(missing_ok=True)
            raise IntegrityError(
                f"{path} changed while it was pushed (sha256 {digest.sha256}, expected {hexdigest})"
            )
        self._publish(staged, self._blob(hexdigest))

    def download_blob(
        self, hexdigest: str, size: int, fd: int, landed: Landed, ranges: list[tuple[int, int]]
    ) -> None:
        try:
            src = os.open(self._blob(hexdigest), os.O_RDONLY)
        except FileNotFoundError as exc:
            raise missing_blob(hexdigest, self.url) from exc
        try:
            if ranges == [(0, size)] and _clone(src, fd):
                landed(0, size)
                return
            for off, length in ranges:
                end = off + length
                while off < end:
                    n = _copy_range(src, fd, off, min(COPY_PIECE, end - off))
                    landed(off, n)
                    off += n
        finally:
            os.close(src)

    def read_blob(self, hexdigest: str) -> bytes:
        try:
            fd = os.open(f"{self._blobs}/{hexdigest[:2]}/{hexdigest}", os.O_RDONLY)
        except FileNotFoundError as exc:
            raise missing_blob(hexdigest, self.url) from exc
        try:
            chunks = [os.read(fd, os.fstat(fd).st_size + 1)]
            while chunks[-1]:
                chunks.append(os.read(fd, CHUNK))
            return b"".join(chunks)
        finally:
            os.close(fd)

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
        except BaseException as exc:  # an interrupt lands here too: leave nothing staged
            staged.unlink(missing_ok=True)
            if isinstance(exc, OSError) and exc.filename is None:
                exc.filename = str(staged)
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


def _clone(src: int, dst: int) -> bool:
    """Make ``dst`` share ``src``'s extents (a reflink); False where the filesystem cannot."""
    try:
        fcntl.ioctl(dst, FICLONE, src)
        return True
    except OSError as exc:
        if exc.errno in (
            errno.EOPNOTSUPP,
            errno.ENOTTY,
            errno.EXDEV,
            errno.EINVAL,
            errno.ENOSYS,
            errno.EPERM,
        ):
            return False
        raise


def _copy_range(src: int, dst: int, off: int, length: int) -> int:
    """Copy up to ``length`` bytes at ``off`` from src to dst in the kernel (read/write where it cannot)."""
    try:
        n = os.copy_file_range(src, dst, length, off, off)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
            raise
        n = -1
    if n < 0:
        data = os.pread(src, length, off)
        pwrite_all(dst, data, off)
        n = len(data)
    if n == 0:
        raise IntegrityError(f"blob ended at byte {off} (truncated in the store?)")
    return n
