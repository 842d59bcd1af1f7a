"""Artifact manifests: ``{schema, kind, files: [{path, size, sha256[, chunks]}], metadata}``.

A file larger than one chunk also lists ``chunks: {size, sha256: [...]}``, the sha256 of each ``size``-byte
piece (the last one shorter), so a pull verifies one large file on all cores; ``sha256`` (the whole file's
digest) stays the blob key. Manifests with chunks have schema ``trtbuild.artifact.v2``; without, ``v1`` as
before (both are read). The chunk size is fixed when writing, so the manifest is a pure function of content.

The artifact hash is ``sha256:`` + sha256 of the manifest's canonical JSON, and the stored manifest bytes are
exactly that canonical JSON. Paths are relative POSIX paths, normalised, without ``..``, absolute parts,
duplicates or links; a reader validates all of that before writing a single byte.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field
from typing import Any

from registry import limits
from registry.canonical import canonical_json, sha256_hex
from registry.errors import IntegrityError, InvalidInput, UnsafeManifest
from registry.metadata import KIND_TYPES
from registry.refs import HEX_DIGEST_RE

SCHEMA = "trtbuild.artifact.v1"  # no file has chunk digests
SCHEMA_CHUNKED = "trtbuild.artifact.v2"  # files larger than a chunk carry per-chunk digests
SCHEMAS = (SCHEMA, SCHEMA_CHUNKED)
MIN_CHUNK_SIZE = 1 << 20
MARKER_NAME = ".trtbuild-artifact.json"  # written into a pulled directory; never part of an artifact
RESERVED_PREFIX = ".trtbuild-"  # top-level names the registry keeps for its own bookkeeping
_LINK_KEYS = {"type", "link", "target", "linkname", "symlink", "hardlink"}


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    sha256: str  # 64 lowercase hex digits (the blob key)
    chunks: tuple[str, ...] = ()  # sha256 of each chunk_size piece; empty: verified whole
    chunk_size: int = 0

    def to_obj(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"path": self.path, "size": self.size, "sha256": self.sha256}
        if self.chunks:
            obj["chunks"] = {"size": self.chunk_size, "sha256": list(self.chunks)}
        return obj


@dataclass(frozen=True)
class Manifest:
    kind: str
    files: tuple[FileEntry, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    schema: str = ""  # set from the files: v2 when any file has chunk digests

    def __post_init__(self) -> None:
        if not self.schema:
            chunked = any(f.chunks for f in self.files)
            object.__setattr__(self, "schema", SCHEMA_CHUNKED if chunked else SCHEMA)

    def to_obj(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "kind": self.kind,
            "files": [f.to_obj() for f in self.files],
            "metadata": self.metadata,
        }

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_obj())

    @property
    def digest(self) -> str:
        return "sha256:" + sha256_hex(self.to_bytes())

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


def check_kind(kind: str) -> str:
    """A kind with a registered metadata contract (``registry.metadata.KIND_TYPES``)."""
    if kind not in KIND_TYPES:
        raise InvalidInput(f"invalid artifact kind {kind!r}", hint=f"use one of: {', '.join(KIND_TYPES)}")
    return kind


def check_path(path: Any) -> str:
    """A safe relative path or UnsafeManifest."""
    if not isinstance(path, str) or not path:
        raise UnsafeManifest(f"manifest file path {path!r} is not a non-empty string")
    if "\x00" in path or "\\" in path:
        raise UnsafeManifest(f"manifest file path {path!r} contains NUL or a backslash")
    if path.startswith("/"):
        raise UnsafeManifest(f"manifest file path {path!r} is absolute")
    parts = path.split("/")
    if ".." in parts:
        raise UnsafeManifest(f"manifest file path {path!r} contains '..'")
    if posixpath.normpath(path) != path or "." in parts or "" in parts:
        raise UnsafeManifest(f"manifest file path {path!r} is not normalised")
    if parts[0].startswith(RESERVED_PREFIX):
        raise UnsafeManifest(f"manifest file path {path!r} uses the reserved prefix {RESERVED_PREFIX!r}")
    problem = limits.path_problem(path)
    if problem is not None:
        raise UnsafeManifest(f"manifest file path {path[:120]!r}{'...' if len(path) > 120 else ''} {problem}")
    return path


def build(kind: str, files: list[FileEntry], metadata: dict[str, Any]) -> Manifest:
    """A manifest for a directory scanned by the pusher (files sorted by path, validated)."""
    check_kind(kind)
    problem = limits.json_problem(metadata)
    if problem is not None:
        raise InvalidInput(
            f"artifact metadata: {problem}",
            hint=f"use JSON objects, lists, strings, 64-bit integers, finite numbers; at most "
            f"{limits.MAX_JSON_DEPTH} levels and {limits.MAX_JSON_BYTES} bytes",
        )
    manifest = Manifest(kind=kind, files=tuple(sorted(files, key=lambda f: f.path)), metadata=dict(metadata))
    validate(manifest)
    return manifest


def validate(manifest: Manifest) -> None:
    """Refuse unsafe or inconsistent manifests: bad paths, duplicates, file/dir clashes, sizes, digests."""
    if len(manifest.files) > limits.MAX_FILES:
        raise UnsafeManifest(f"manifest lists {len(manifest.files)} files, more than {limits.MAX_FILES}")
    seen: set[str] = set()
    for f in manifest.files:
        check_path(f.path)
        if f.path in seen:
            raise UnsafeManifest(f"manifest lists {f.path!r} twice")
        seen.add(f.path)
        if not isinstance(f.size, int) or isinstance(f.size, bool) or f.size < 0:
            raise UnsafeManifest(f"manifest file {f.path!r} has invalid size {f.size!r}")
        if not isinstance(f.sha256, str) or not HEX_DIGEST_RE.match(f.sha256):
            raise UnsafeManifest(f"manifest file {f.path!r} has invalid sha256 {f.sha256!r}")
        if f.chunks or f.chunk_size:
            _check_chunks(f, manifest.schema)
    for p in seen:  # a path may not be both a file and a directory of another file
        parent = posixpath.dirname(p)
        while parent:
            if parent in seen:
                raise UnsafeManifest(f"manifest path {parent!r} is both a file and a directory")
            parent = posixpath.dirname(parent)


def _check_chunks(f: FileEntry, schema: str) -> None:
    if schema != SCHEMA_CHUNKED:
        raise UnsafeManifest(
            f"manifest file {f.path!r} has chunk digests, which schema {schema} does not allow"
        )
    cs = f.chunk_size
    if not isinstance(cs, int) or isinstance(cs, bool) or cs < MIN_CHUNK_SIZE or f.size <= cs:
        raise UnsafeManifest(
            f"manifest file {f.path!r} has invalid chunk size {cs!r} "
            f"(>= {MIN_CHUNK_SIZE} and < the file size)"
        )
    if len(f.chunks) != -(-f.size // cs):
        raise UnsafeManifest(
            f"manifest file {f.path!r} has {len(f.chunks)} chunk digests for {-(-f.size // cs)} chunks"
        )
    for d in f.chunks:
        if not isinstance(d, str) or not HEX_DIGEST_RE.match(d):
            raise UnsafeManifest(f"manifest file {f.path!r} has an invalid chunk digest {d!r}")


def parse(data: bytes, expected_digest: str) -> Manifest:
    """Verify ``data`` hashes to ``expected_digest``, is canonical and safe; return the manifest."""
    actual = "sha256:" + sha256_hex(data)
    if actual != expected_digest:
        raise IntegrityError(f"manifest {expected_digest} is corrupt: its bytes hash to {actual}")
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise IntegrityError(f"manifest {expected_digest} is not valid JSON: {exc}") from None
    manifest = from_obj(obj, expected_digest)
    if manifest.to_bytes() != data:
        raise IntegrityError(f"manifest {expected_digest} is not in canonical form")
    return manifest


def from_obj(obj: Any, label: str) -> Manifest:
    if not isinstance(obj, dict) or set(obj) != {"schema", "kind", "files", "metadata"}:
        raise IntegrityError(f"manifest {label} does not have exactly the keys schema, kind, files, metadata")
    if obj["schema"] not in SCHEMAS:
        raise IntegrityError(
            f"manifest {label} has unknown schema {obj['schema']!r} (this reader knows {', '.join(SCHEMAS)})",
            hint="upgrade trtbuild on this host",
        )
    if (
        obj["kind"] not in KIND_TYPES
        or not isinstance(obj["metadata"], dict)
        or not isinstance(obj["files"], list)
    ):
        raise IntegrityError(f"manifest {label} has an invalid kind, metadata or files field")
    files = []
    for entry in obj["files"]:
        if not isinstance(entry, dict):
            raise UnsafeManifest(f"manifest {label} has a file entry that is not an object")
        if _LINK_KEYS & set(entry):
            raise UnsafeManifest(
                f"manifest {label} entry {entry.get('path')!r} is a link; links are not allowed"
            )
        if set(entry) - {"chunks"} != {"path", "size", "sha256"}:
            raise UnsafeManifest(f"manifest {label} entry {entry.get('path')!r} has keys {sorted(entry)}")
        chunks, chunk_size = (), 0
        if "chunks" in entry:
            c = entry["chunks"]
            if not isinstance(c, dict) or set(c) != {"size", "sha256"} or not isinstance(c["sha256"], list):
                raise UnsafeManifest(
                    f"manifest {label} entry {entry.get('path')!r} has chunks that are not "
                    "{size, sha256: [...]}"
                )
            chunks, chunk_size = tuple(c["sha256"]), c["size"]
        files.append(
            FileEntry(
                path=entry["path"],
                size=entry["size"],
                sha256=entry["sha256"],
                chunks=chunks,
                chunk_size=chunk_size,
            )
        )
    manifest = Manifest(kind=obj["kind"], files=tuple(files), metadata=obj["metadata"], schema=obj["schema"])
    validate(manifest)
    return manifest
