"""Push and pull: the ordering that keeps readers safe, parallel transfers, verification while streaming.

push: hash while reading (a stat-keyed cache skips unchanged files) -> upload only blobs the store lacks ->
manifest -> catalog row. A killed push leaves no row (nothing visible); the next push completes it.
pull: manifest (digest and paths verified before any byte is written) -> blobs in parallel, sha256 verified
while writing into a temp dir beside DEST -> marker file -> atomic rename (or exchange) into place.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
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
from registry.catalog.models import IDENTITY_COLUMNS, INT_COLUMNS, PROVENANCE_COLUMNS
from registry.errors import IntegrityError, InvalidInput, NotFound, UnsafeManifest
from registry.hashcache import HashCache
from registry.hashing import hash_file
from registry.progress import byte_progress, notice
from registry.store.base import Store, file_changed

VERIFIED_LIST = ".trtbuild-verified"  # inside a partial pull dir: "<sha256> <path>" per verified file
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
    sha256: str | None = None


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


def _columns(metadata: dict[str, Any], provenance: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for source, keys, label in (
        (metadata, IDENTITY_COLUMNS, "metadata"),
        (provenance, PROVENANCE_COLUMNS, "provenance"),
    ):
        for key in keys:
            value = source.get(key)
            if value is None:
                continue
            try:
                if key in INT_COLUMNS:
                    if isinstance(value, bool) or int(value) != value or not 0 <= value < 2**31:
                        raise ValueError
                    value = int(value)
                elif key == "build_seconds":
                    value = float(value)
                elif key != "verification":
                    value = str(value)
            except (TypeError, ValueError):
                raise InvalidInput(
                    f"{label} field {key!r} has invalid value {str(value)[:80]!r}",
                    hint="integers from 0 to 2^31-1 for tp, pp and max_* shapes; a number for build_seconds",
                ) from None
            values[key] = value
    return values


def push(
    cat: Catalog,
    store: Store,
    src: Path,
    *,
    name: str,
    kind: str,
    metadata: dict[str, Any],
    provenance: dict[str, Any] | None,
    build_key: str | None,
    tag: str | None,
    progress: bool,
) -> PushResult:
    provenance = dict(provenance or {})
    mf.check_kind(kind)
    problem = limits.json_problem(provenance)
    if problem is not None:
        raise InvalidInput(f"artifact provenance: {problem}", hint="pass a smaller, plain JSON object")
    files = scan(Path(src))
    total = sum(f.st.st_size for f in files)
    cache = HashCache()
    uploaded = 0
    lock = threading.Lock()
    try:
        for f in files:
            f.sha256 = cache.get(f.path.resolve(), f.st)
        todo = [f for f in files if f.sha256 is None]

        def first_pass(f: _Src, advance: Any) -> None:
            nonlocal uploaded
            if store.can_ingest:  # copy and hash in one read
                hexdigest, _, new = store.ingest(f.path, advance)
                if new:
                    with lock:
                        uploaded += f.st.st_size
            else:
                hexdigest, _ = hash_file(f.path, advance)
            if file_changed(f.path, f.st):
                raise IntegrityError(
                    f"{f.path} changed while it was pushed", hint="push again once it is stable"
                )
            f.sha256 = hexdigest
            cache.put(f.path.resolve(), f.st, hexdigest)

        label = "storing" if store.can_ingest else "hashing"
        with (
            byte_progress(label, sum(f.st.st_size for f in todo), progress) as advance,
            ThreadPoolExecutor(2) as pool,
        ):
            list(pool.map(lambda f: first_pass(f, advance), todo))

        manifest = mf.build(
            kind, [mf.FileEntry(f.rel, f.st.st_size, f.sha256 or "") for f in files], metadata
        )
        hash_ = manifest.digest
        values = {
            "hash": hash_,
            "kind": kind,
            "name": name,
            "build_key": build_key,
            "size": manifest.size,
            "file_count": len(manifest.files),
            "created_at": utcnow(),
            "manifest": manifest.to_obj(),
            "provenance": provenance,
            **_columns(metadata, provenance),
        }
        # Register the blobs this push relies on (waiting while a gc sweeps), and only then ask the store
        # which exist: a gc never deletes a registered blob, so every blob found present stays present.
        # This holds for an artifact the catalog already lists too: the store, not the catalog, says what
        # is there, so a re-push restores a blob or manifest lost from the store.
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
                store.put_blob(f.sha256 or "", f.path, f.st.st_size, advance)
                if file_changed(f.path, f.st):
                    raise IntegrityError(
                        f"{f.path} changed while it was pushed", hint="push again once it is stable"
                    )
                with lock:
                    uploaded += f.st.st_size

            with (
                byte_progress("uploading", sum(f.st.st_size for f in missing), progress) as advance,
                ThreadPoolExecutor(4) as pool,
            ):
                list(pool.map(lambda f: upload(f, advance), missing))
            store.put_manifest(hash_.removeprefix("sha256:"), manifest.to_bytes())
            created = cat.publish(values, name, tag)
        finally:
            try:
                cat.end_push(push_id)
            except Exception:  # noqa: BLE001 - a stale push record only delays gc; it expires
                pass
        return PushResult(hash_, manifest, created, uploaded, total - uploaded)
    finally:
        cache.close()


def fetch_manifest(store: Store, hash_: str) -> mf.Manifest:
    """The verified, validated manifest of ``hash_`` from the store."""
    data = store.get_manifest(hash_.removeprefix("sha256:"))
    if data is None:
        raise IntegrityError(
            f"manifest of {hash_} is missing from the store {store.url}",
            hint="push the artifact again; its catalog row exists but its bytes do not",
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
    verified_path = tmp / VERIFIED_LIST
    verified: dict[str, str] = {}
    if verified_path.exists():
        for line in verified_path.read_text().splitlines():
            sha, _, path = line.partition(" ")
            verified[path] = sha
    by_path = {f.path: f for f in manifest.files}
    todo = []
    for f in manifest.files:
        target = tmp / f.path
        if (
            verified.get(f.path) == f.sha256
            and target.is_file()
            and not target.is_symlink()
            and target.stat().st_size == f.size
        ):
            continue
        todo.append(f)
    for f in todo:  # directories first, refusing anything in the way that is not ours
        parent = (tmp / f.path).parent
        parent.mkdir(parents=True, exist_ok=True)
        if not parent.resolve().is_relative_to(tmp.resolve()):
            raise IntegrityError(f"{parent} escapes the pull directory {tmp}")
    lock = threading.Lock()

    def fetch(f: mf.FileEntry, advance: Any) -> None:
        target = tmp / f.path
        fd = os.open(target, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        try:
            actual = store.download_blob(f.sha256, f.size, fd, advance)
            size = os.fstat(fd).st_size
        except OSError as exc:  # a write to fd (disk full ...): say which file, free its space
            exc.filename = str(target) if exc.filename is None else exc.filename
            target.unlink(missing_ok=True)
            raise
        finally:
            os.close(fd)
        if actual != f.sha256 or size != f.size:
            target.unlink(missing_ok=True)
            raise IntegrityError(
                f"integrity error: {f.path} of {hash_} has sha256 {actual} and {size} bytes; "
                f"the manifest says {f.sha256} and {f.size} bytes",
                hint="the stored blob is corrupt; push the artifact again from a good copy",
            )
        with lock, open(verified_path, "a") as out:
            out.write(f"{f.sha256} {f.path}\n")

    with (
        byte_progress("pulling", sum(f.size for f in todo), progress) as advance,
        ThreadPoolExecutor(4) as pool,
    ):
        list(pool.map(lambda f: fetch(f, advance), todo))
    for path in list(verified):  # files of an older manifest version that are not ours
        if path not in by_path:
            (tmp / path).unlink(missing_ok=True)
    verified_path.unlink(missing_ok=True)
    write_marker(tmp, hash_, name, manifest.kind, manifest.size, len(manifest.files))
    _install(tmp, dest)
    return True


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
    import hashlib

    if hashlib.sha256(data).hexdigest() != entry.sha256 or len(data) != entry.size:
        raise IntegrityError(f"integrity error: {path} of {hash_} does not match its manifest digest")
    return data
