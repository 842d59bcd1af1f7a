"""Push and pull: the ordering that keeps readers safe, parallel transfers, verification while streaming.

push: hash while reading (a stat-keyed cache skips unchanged files) -> upload only blobs the store lacks ->
manifest -> catalog row. A killed push leaves no row (nothing visible); the next push completes it.
pull: manifest (digest and paths verified before any byte is written) -> blobs in parallel, sha256 verified
while writing into a temp dir beside DEST -> marker file -> atomic rename (or exchange) into place.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import posixpath
import shutil
import stat
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry import limits
from registry import manifest as mf
from registry.catalog.db import Catalog, utcnow
from registry.errors import IntegrityError, Interrupted, InvalidInput, NotFound, UnsafeManifest
from registry.hashcache import HashCache
from registry.hashing import (
    CHUNK,
    CHUNK_SIZE,
    FileDigest,
    Progress,
    Verifier,
    digest_file,
    hash_range,
    stale_chunks,
    write_all,
)
from registry.metadata import ArtifactMetadata, BuildFacts, catalog_columns
from registry.progress import byte_progress, notice
from registry.store.base import Store, file_changed
from registry.workers import Stopper, run_all

VERIFIED_LIST = ".trtbuild-verified"  # left in a partial pull dir by older versions (removed on resume)
MAX_READ_FILE = 64 << 20


@dataclass
class PushResult:
    hash: str
    manifest: mf.Manifest
    created: bool  # a new catalog row was written
    uploaded_bytes: int  # bytes newly written to the store
    reused_bytes: int  # bytes the store already had


@dataclass
class _Src:
    rel: str
    path: Path
    st: os.stat_result
    digest: FileDigest | None = None

    @property
    def sha256(self) -> str:
        assert self.digest is not None
        return self.digest.sha256

    def entry(self) -> mf.FileEntry:
        assert self.digest is not None
        chunks = self.digest.chunks
        return mf.FileEntry(self.rel, self.st.st_size, self.sha256, chunks, CHUNK_SIZE if chunks else 0)


def _heavy(f: _Src) -> bool:
    """A file large enough to keep its own threads busy: at most two of them move at once."""
    return f.st.st_size >= CHUNK


def scan(src: Path) -> list[_Src]:
    """Regular files under ``src`` (relative POSIX paths); links and special files are refused."""
    src = Path(src)
    if not src.is_dir():
        raise InvalidInput(f"{src} is not a directory", hint="push takes a directory (e.g. an engine dir)")
    out: list[_Src] = []
    for root, dirs, files in os.walk(src):
        if dirs and len(Path(root).relative_to(src).parts) >= limits.MAX_PATH_DEPTH - 1:
            raise InvalidInput(
                f"{root} is nested more than {limits.MAX_PATH_DEPTH} directories deep inside {src}",
                hint="flatten the directory",
            )
        for name in sorted(dirs + files):
            path = Path(root) / name
            rel = path.relative_to(src).as_posix()
            if root == str(src) and name.startswith(mf.RESERVED_PREFIX):
                if name in dirs:
                    dirs.remove(name)
                continue  # the registry's own bookkeeping (a pull marker), never content
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                raise InvalidInput(
                    f"{path} is a symbolic link; artifacts hold regular files only",
                    hint="replace the link by a copy of its target",
                )
            if name in files:
                if not stat.S_ISREG(st.st_mode):
                    raise InvalidInput(f"{path} is not a regular file", hint="remove it from the directory")
                try:
                    mf.check_path(rel)
                except UnsafeManifest as exc:
                    raise InvalidInput(
                        f"{path!r} cannot be part of an artifact: {exc}", hint="rename or remove it"
                    ) from None
                out.append(_Src(rel, path, st))
                if len(out) > limits.MAX_FILES:
                    raise InvalidInput(f"{src} holds more than {limits.MAX_FILES} files", hint="push less")
    if not out:
        raise InvalidInput(f"{src} holds no files", hint="push a directory with the artifact's files")
    return out


def push(
    cat: Catalog,
    store: Store,
    src: Path,
    *,
    name: str,
    metadata: ArtifactMetadata,
    provenance: BuildFacts,
    tag: str | None,
    progress: bool,
    hash_cache: Path | None = None,
) -> PushResult:
    kind = mf.check_kind(metadata.kind)
    problem = limits.json_problem(provenance.to_dict())
    if problem is not None:
        raise InvalidInput(f"artifact provenance: {problem}", hint="pass a smaller, plain JSON object")
    files = scan(Path(src))
    total = sum(f.st.st_size for f in files)
    cache = HashCache(hash_cache)
    uploaded = 0
    lock = threading.Lock()
    stopper = Stopper()
    try:
        for f in files:
            f.digest = cache.get_digest(f.path.resolve(), f.st)
        todo = [f for f in files if f.digest is None]

        def first_pass(f: _Src, advance: Any) -> None:
            nonlocal uploaded
            if store.can_ingest:  # copy and hash in one read
                digest, new = store.ingest(f.path, advance)
                if new:
                    with lock:
                        uploaded += f.st.st_size
            else:
                digest = digest_file(f.path, advance)
            if file_changed(f.path, f.st):
                raise IntegrityError(
                    f"{f.path} changed while it was pushed", hint="push again once it is stable"
                )
            f.digest = digest
            cache.put_digest(f.path.resolve(), f.st, digest)

        label = "storing" if store.can_ingest else "hashing"
        with byte_progress(label, sum(f.st.st_size for f in todo), progress) as advance:
            step = stopper.wrap(advance)
            run_all(lambda f: first_pass(f, step), todo, stopper, heavy=_heavy)

        manifest = mf.build(kind, [f.entry() for f in files], metadata.to_dict())
        hash_ = manifest.digest
        values = {
            "hash": hash_,
            "kind": kind,
            "name": name,
            "build_key": metadata.build_key,
            "size": manifest.size,
            "file_count": len(manifest.files),
            "created_at": utcnow(),
            "manifest": manifest.to_obj(),
            "provenance": provenance.to_dict(),
            **catalog_columns(metadata, provenance),
        }
        # Register the blobs this push relies on (waiting while a gc sweeps), and only then ask the store
        # which exist: a gc never deletes a registered blob, so every blob found present stays present.
        # Every blob is asked for, also those the first pass just stored (a gc may have swept one before
        # the registration: e.g. with --grace 0, or a first pass longer than the grace) and those of an
        # artifact the catalog already lists (the store, not the catalog, says what is there: a re-push
        # restores a blob or manifest lost from the store).
        push_id = str(uuid.uuid4())
        cat.begin_push(
            push_id,
            hash_,
            sorted({f.sha256 for f in manifest.files}),
            on_wait=lambda: notice("waiting for a gc of the registry to finish its sweep", progress),
        )
        try:
            by_digest = {f.sha256: f for f in files}
            with ThreadPoolExecutor(8) as pool:
                present = dict(
                    zip(
                        by_digest,
                        pool.map(lambda d: store.has_blob(d, by_digest[d].st.st_size), by_digest),
                        strict=True,
                    )
                )
            missing = [f for d, f in by_digest.items() if not present[d]]

            def upload(f: _Src, advance: Any) -> None:
                nonlocal uploaded
                store.put_blob(f.sha256, f.path, f.st.st_size, advance)
                if file_changed(f.path, f.st):
                    raise IntegrityError(
                        f"{f.path} changed while it was pushed", hint="push again once it is stable"
                    )
                with lock:
                    uploaded += f.st.st_size

            with byte_progress("uploading", sum(f.st.st_size for f in missing), progress) as advance:
                step = stopper.wrap(advance)
                run_all(lambda f: upload(f, step), missing, stopper, heavy=_heavy)
            store.put_manifest(hash_.removeprefix("sha256:"), manifest.to_bytes())
            created = cat.publish(values, name, tag)
        finally:
            try:
                cat.end_push(push_id)
            except Exception:  # noqa: BLE001 - a stale push record only delays gc; it expires
                pass
        return PushResult(hash_, manifest, created, uploaded, total - uploaded)
    except KeyboardInterrupt:
        raise Interrupted(
            "push stopped; nothing was published (no manifest, no catalog row). Blobs already stored are "
            "kept and reused by the next push; unfinished uploads were aborted (gc removes leftovers after "
            "its grace period)"
        ) from None
    finally:
        cache.close()


def fetch_manifest(store: Store, hash_: str) -> mf.Manifest:
    """The verified, validated manifest of ``hash_`` from the store."""
    data = store.get_manifest(hash_.removeprefix("sha256:"))
    if data is None:
        raise IntegrityError(
            f"manifest of {hash_} is missing from the store {store.url}",
            hint=f"its catalog row exists but the manifest does not: trtbuild verify {hash_} --repair DIR "
            "restores it (DIR: a local copy of the artifact, for missing blobs too)",
        )
    return mf.parse(data, hash_)


def read_marker(dest: Path) -> dict[str, Any] | None:
    try:
        obj = json.loads((dest / mf.MARKER_NAME).read_text())
        return obj if isinstance(obj, dict) else None
    except (OSError, ValueError):
        return None


def write_marker(dest: Path, hash_: str, name: str, kind: str, size: int, files: int) -> None:
    """Record that ``dest`` holds artifact ``hash_`` (after a pull, or after pushing ``dest`` itself)."""
    marker = {"hash": hash_, "name": name, "kind": kind, "size": size, "files": files}
    (dest / mf.MARKER_NAME).write_text(json.dumps(marker, indent=2) + "\n")


def is_complete(dest: Path, hash_: str, manifest: mf.Manifest) -> bool:
    """DEST holds this artifact: marker with the same hash and every file present with its size."""
    marker = read_marker(dest)
    if not marker or marker.get("hash") != hash_:
        return False
    for f in manifest.files:
        try:
            st = (dest / f.path).lstat()
        except OSError:
            return False
        if not stat.S_ISREG(st.st_mode) or st.st_size != f.size:
            return False
    return True


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    fn = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if fn is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(a))


def _install(tmp: Path, dest: Path) -> None:
    """Move the verified ``tmp`` dir to ``dest`` atomically; an old ``dest`` is swapped out and removed."""
    if not dest.exists():
        os.rename(tmp, dest)
        return
    if _exchange(tmp, dest):
        shutil.rmtree(tmp, ignore_errors=True)
        return
    old = dest.parent / f".{dest.name}.trtbuild-old-{uuid.uuid4().hex[:8]}"
    os.rename(dest, old)
    os.rename(tmp, dest)
    shutil.rmtree(old, ignore_errors=True)


def pull(store: Store, hash_: str, manifest: mf.Manifest, dest: Path, *, name: str, progress: bool) -> bool:
    """Materialise a verified manifest at ``dest``. Returns False when ``dest`` already held it (no-op)."""
    dest = Path(dest).absolute()
    if is_complete(dest, hash_, manifest):
        return False
    if dest.exists() and not dest.is_dir():
        raise InvalidInput(f"{dest} exists and is not a directory", hint="choose another destination")
    if dest.is_dir() and read_marker(dest) is None and any(dest.iterdir()):
        raise InvalidInput(
            f"{dest} is a non-empty directory that does not hold a pulled artifact",
            hint="remove it or pull into a new directory; it is never overwritten",
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.trtbuild-{hash_[7:23]}.partial"
    tmp.mkdir(exist_ok=True)
    (tmp / VERIFIED_LIST).unlink(missing_ok=True)  # written by older versions; what is kept is re-verified
    stopper = Stopper()
    try:
        todo = _reusable(tmp, manifest, stopper)
        root = tmp.resolve()
        for rel in sorted({posixpath.dirname(f.path) for f in todo} - {""}):
            parent = tmp / rel  # directories first, refusing anything in the way that is not ours
            parent.mkdir(parents=True, exist_ok=True)
            if not parent.resolve().is_relative_to(root):
                raise IntegrityError(f"{parent} escapes the pull directory {tmp}")
        with byte_progress("pulling", sum(f.size for f in todo), progress) as advance:
            step = stopper.wrap(advance)
            run_all(lambda f: _fetch(store, hash_, tmp, f, todo[f], step), todo, stopper, heavy=_heavy_entry)
    except KeyboardInterrupt:
        kept = sum(1 for f in manifest.files if (tmp / f.path).is_file())
        raise Interrupted(
            f"pull stopped; {tmp} keeps what was written ({kept} of {len(manifest.files)} files, some "
            "partial): pulling again resumes from it and re-verifies every byte it reuses; "
            "delete it to start over"
        ) from None
    write_marker(tmp, hash_, name, manifest.kind, manifest.size, len(manifest.files))
    _install(tmp, dest)
    return True


def _heavy_entry(f: mf.FileEntry) -> bool:
    return f.size >= CHUNK


def _reusable(tmp: Path, manifest: mf.Manifest, stopper: Stopper) -> dict[mf.FileEntry, list[int] | None]:
    """What an earlier, interrupted pull left in ``tmp`` is re-verified (chunks on all cores), never trusted:
    returns each file still to fetch, with the indices of its chunks to fetch (None: the whole file)."""
    todo: dict[mf.FileEntry, list[int] | None] = {}
    lock = threading.Lock()

    def check(f: mf.FileEntry) -> None:
        stale: list[int] | None = None
        try:
            fd = os.open(tmp / f.path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            fd = -1
        if fd >= 0:
            try:
                st = os.fstat(fd)
                if stat.S_ISREG(st.st_mode) and st.st_size == f.size:
                    if f.chunks:
                        stale = stale_chunks(fd, f.size, f.chunks, f.chunk_size)
                    elif hash_range(fd, 0, f.size) == f.sha256:
                        stale = []
            finally:
                os.close(fd)
        if stale != []:
            with lock:
                todo[f] = stale
        stopper.check()

    base = str(tmp)
    have = {f for f in manifest.files if os.path.lexists(f"{base}/{f.path}")}
    run_all(check, have, stopper)
    return {f: todo.get(f) for f in manifest.files if f in todo or f not in have}


def _fetch(
    store: Store, hash_: str, tmp: Path, f: mf.FileEntry, chunks: list[int] | None, advance: Progress
) -> None:
    """Write one file of the artifact into ``tmp`` and verify it (only ``chunks``, when given)."""
    target = f"{tmp}/{f.path}"
    try:
        _fetch_into(store, hash_, target, f, chunks, advance)
    except OSError as exc:  # a write failed (disk full ...): say which file, free its space
        exc.filename = target if exc.filename is None else exc.filename
        with contextlib.suppress(OSError):
            os.unlink(target)
        raise


def _fetch_into(
    store: Store, hash_: str, target: str, f: mf.FileEntry, chunks: list[int] | None, advance: Progress
) -> None:
    label = f"{f.path} of {hash_}"
    if not f.chunks and f.size < CHUNK:  # small: one GET/read, one hash, one write
        data = store.read_blob(f.sha256)
        actual = hashlib.sha256(data).hexdigest()
        if actual != f.sha256 or len(data) != f.size:
            raise IntegrityError(
                f"integrity error: {label} has sha256 {actual} and {len(data)} bytes; "
                f"the manifest says {f.sha256} and {f.size} bytes",
                hint="the stored blob is corrupt; push the artifact again from a good copy",
            )
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        try:
            write_all(fd, memoryview(data))
        finally:
            os.close(fd)
        advance(len(data))
        return
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | (os.O_TRUNC if chunks is None else 0)
    fd = os.open(target, flags, 0o644)
    try:
        verifier = Verifier(fd, label, f.size, f.sha256, f.chunks, f.chunk_size, advance, chunks)
        try:
            store.download_blob(f.sha256, f.size, fd, verifier.landed, verifier.ranges())
            verifier.finish()
        finally:
            verifier.cancel()
        if os.fstat(fd).st_size != f.size:
            raise IntegrityError(f"integrity error: {label} is {os.fstat(fd).st_size} bytes, not {f.size}")
    except IntegrityError:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)
        raise
    finally:
        os.close(fd)


def read_file(store: Store, hash_: str, manifest: mf.Manifest, path: str) -> bytes:
    """The verified bytes of one (small) file of an artifact."""
    entry = next((f for f in manifest.files if f.path == path), None)
    if entry is None:
        raise NotFound(
            f"{hash_} has no file {path!r}", hint=f"files: {', '.join(f.path for f in manifest.files[:20])}"
        )
    if entry.size > MAX_READ_FILE:
        raise InvalidInput(
            f"{path} of {hash_} is {entry.size} bytes; read_file is for small files",
            hint="pull the artifact instead",
        )
    data = store.read_blob(entry.sha256)
    if hashlib.sha256(data).hexdigest() != entry.sha256 or len(data) != entry.size:
        raise IntegrityError(f"integrity error: {path} of {hash_} does not match its manifest digest")
    return data
