"""The registry's Python API: trtbuild (and any deploy job) calls only this module.

reg = Registry.open("sqlite:////var/lib/reg.db", "s3://bucket/prefix")   # explicit locations; migrates
art = reg.push(Path("engine"), name="llama-8b-fp8", metadata=EngineMetadata(...), tag="prod")
reg.pull("llama-8b-fp8:prod", Path("/models/engine"))

The registry reads no environment variables: its user passes the URLs, the store tuning and the hash cache
(trtbuild computes them in ``trtbuild.settings``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry import manifest as mf
from registry import transfer
from registry.artifact import Artifact, PushStats
from registry.canonical import digest_of
from registry.catalog.db import Catalog, as_utc
from registry.errors import (
    CatalogUnavailable,
    IntegrityError,
    InvalidInput,
    InvalidReference,
    NotFound,
    RegistryError,
    StoreUnavailable,
)
from registry.hashcache import HashCache
from registry.hashing import hash_file
from registry.host import detect as detect_host
from registry.metadata import (
    KIND_TYPES,
    ArtifactMetadata,
    BuildFacts,
    CheckpointMetadata,
    EngineMetadata,
    ModelArtifact,
    TimingCacheMetadata,
    metadata_type,
    parse_metadata,
)
from registry.refs import check_name, check_tag, parse_name_tag, parse_ref
from registry.resolve import HostFacts, Resolution, rank
from registry.store import Store, StoreTuning, open_store

__all__ = [
    "KIND_TYPES",
    "Artifact",
    "ArtifactMetadata",
    "BuildFacts",
    "CatalogUnavailable",
    "CheckpointMetadata",
    "EngineMetadata",
    "GcReport",
    "HashCache",
    "HostFacts",
    "IntegrityError",
    "InvalidInput",
    "InvalidReference",
    "ModelArtifact",
    "NotFound",
    "PushStats",
    "Reachability",
    "Registry",
    "RegistryError",
    "Resolution",
    "StoreTuning",
    "StoreUnavailable",
    "TimingCacheMetadata",
    "detect_host",
    "digest_of",
    "hash_file",
    "metadata_type",
    "parse_metadata",
]

# Columns of a resolve candidate that carry contract fields (identity, then build facts).
_CANDIDATE_IDENTITY = ("gpu_arch", "trtllm_version", "cuda_version", "tp", "pp")
_CANDIDATE_FACTS = ("driver_version", "gpu_name")


@dataclass(frozen=True)
class Reachability:
    """Both halves of a registry answered: where they are (no password) and how many artifacts it lists."""

    catalog_url: str
    store_url: str
    artifacts: int  # capped at the probe's limit
    capped: bool

    def describe(self) -> str:
        count = f"{self.artifacts}{'+' if self.capped else ''}"
        return f"catalog {self.catalog_url} ({count} artifacts), store {self.store_url}"


@dataclass
class GcReport:
    deleted_artifacts: list[str]
    deleted_manifests: int
    deleted_blobs: int
    freed_bytes: int
    staging_cleaned: int
    dry_run: bool

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Registry:
    """Content-addressed store + SQL catalog."""

    def __init__(self, catalog: Catalog, store: Store, *, hash_cache: Path | None = None) -> None:
        self.catalog = catalog
        self.store = store
        self.hash_cache = hash_cache  # file-digest cache used by push; None: every push hashes every file

    @classmethod
    def open(
        cls,
        db_url: str,
        store_url: str,
        *,
        tuning: StoreTuning | None = None,
        hash_cache: Path | None = None,
    ) -> Registry:
        """Open (and migrate) the catalog at ``db_url`` and the store at ``store_url``."""
        return cls(Catalog(db_url), open_store(store_url, tuning), hash_cache=hash_cache)

    # -- artifacts ---------------------------------------------------------------------------------------
    def _artifact(self, row: Any, names: list[str] | None = None, tags: list[str] | None = None) -> Artifact:
        manifest = mf.from_obj(row.manifest, row.hash)
        return Artifact(
            hash=row.hash,
            name=row.name,
            kind=row.kind,
            size=row.size,
            build_key=row.build_key,
            metadata=parse_metadata(row.kind, manifest.metadata, strict=False),
            provenance=BuildFacts.from_dict(row.provenance or {}, strict=False),
            files=list(manifest.files),
            created_at=as_utc(row.created_at),
            tags=self.catalog.tags_of(row.hash) if tags is None else tags,
            names=self.catalog.names_of(row.hash) if names is None else names,
        )

    def resolve_ref(self, ref: str) -> str:
        """The artifact hash a reference names (the catalog row must exist)."""
        r = parse_ref(ref)
        if r.tag:
            hash_ = self.catalog.hash_for_tag(r.name or "", r.tag)
            if hash_ is None:
                raise NotFound(
                    f"no tag {r.name}:{r.tag} in the catalog {self.catalog.safe_url}",
                    hint=f"see tags with: trtbuild ls --name {r.name}",
                )
            return hash_
        if r.name and not self.catalog.has_name(r.name, r.digest or ""):
            raise NotFound(f"no artifact {r.digest} under the name {r.name}")
        return r.digest or ""

    def get(self, ref: str) -> Artifact:
        """The catalog record of REF (raises NotFound)."""
        hash_ = self.resolve_ref(ref)
        full = self.catalog.get_full(hash_)
        if full is None:
            raise NotFound(f"no artifact {hash_} in the catalog {self.catalog.safe_url}")
        row, names, tags = full
        return self._artifact(row, names, tags)

    def find_by_build_key(self, build_key: str, kind: str) -> Artifact | None:
        row = self.catalog.find_by_build_key(build_key, mf.check_kind(kind))
        return self._artifact(row) if row is not None else None

    def list(
        self, name: str | None = None, kind: str | None = None, limit: int | None = None
    ) -> list[Artifact]:
        return [self._artifact(r) for r in self.catalog.list_rows(name=name, kind=kind, limit=limit)]

    # -- push / pull -------------------------------------------------------------------------------------
    def push(
        self,
        src_dir: Path,
        *,
        name: str,
        metadata: ArtifactMetadata,
        provenance: BuildFacts | None = None,
        tag: str | None = None,
        progress: bool = False,
    ) -> Artifact:
        """Publish a directory as an artifact of ``metadata.kind``: blobs (only those missing), then
        manifest, then catalog row (+ name, tag). The returned artifact's ``pushed`` says what it took."""
        check_name(name)
        if tag:
            check_tag(tag)
        if not isinstance(metadata, ArtifactMetadata):
            raise InvalidInput(
                f"push {name}: metadata must be an artifact contract, got {type(metadata).__name__}",
                hint="build it with registry.api.parse_metadata(kind, fields) or a *Metadata class",
            )
        result = transfer.push(
            self.catalog,
            self.store,
            Path(src_dir),
            name=name,
            metadata=metadata,
            provenance=provenance or BuildFacts(),
            tag=tag,
            progress=progress,
            hash_cache=self.hash_cache,
        )
        art = self.get(result.hash)
        art.pushed = PushStats(result.created, result.uploaded_bytes, result.reused_bytes)
        return art

    def record_local_copy(self, directory: Path, art: Artifact) -> None:
        """Mark ``directory`` (just pushed) as holding ``art``: a later pull into it is a no-op."""
        transfer.write_marker(Path(directory), art.hash, art.name, art.kind, art.size, len(art.files))

    def pull(self, ref: str, dest: Path, *, progress: bool = False) -> Artifact:
        """Verified, atomic materialisation of REF at ``dest`` (a no-op when ``dest`` already holds it)."""
        art = self.get(ref)
        manifest = transfer.fetch_manifest(self.store, art.hash)
        transfer.pull(self.store, art.hash, manifest, Path(dest), name=art.name, progress=progress)
        return art

    def read_file(self, ref: str, path: str) -> bytes:
        """Verified bytes of one small file (config.json, build.log) of an artifact."""
        art = self.get(ref)
        return transfer.read_file(self.store, art.hash, transfer.fetch_manifest(self.store, art.hash), path)

    blob_bytes = read_file

    # -- tags --------------------------------------------------------------------------------------------
    def tag(self, ref: str, name_tag: str) -> Artifact:
        """Point NAME:TAG at REF (history kept)."""
        name, tag = parse_name_tag(name_tag)
        hash_ = self.resolve_ref(ref)
        self.catalog.set_tag(name, tag, hash_)
        return self.get(hash_)

    def tag_history(self, name_tag: str) -> list[tuple[str, str | None, Any]]:
        name, tag = parse_name_tag(name_tag)
        return self.catalog.tag_history(name, tag)

    # -- leases ------------------------------------------------------------------------------------------
    def acquire_lease(self, build_key: str, holder: str, ttl_s: float) -> bool:
        return self.catalog.acquire_lease(build_key, holder, ttl_s)

    def renew_lease(self, build_key: str, holder: str, ttl_s: float) -> bool:
        return self.catalog.renew_lease(build_key, holder, ttl_s)

    def release_lease(self, build_key: str, holder: str) -> None:
        self.catalog.release_lease(build_key, holder)

    # -- resolve -----------------------------------------------------------------------------------------
    def resolve(self, name: str, host: HostFacts, *, kind: str = "engine", limit: int = 1000) -> Resolution:
        """Best artifact of ``name`` for ``host``; every other candidate with the constraint it failed."""
        check_name(name)
        candidates = self.catalog.candidates(name, mf.check_kind(kind), limit)
        if not candidates:
            raise NotFound(f"no {kind} artifacts named {name!r}", hint="list names with: trtbuild ls")
        best, notes, rejected = rank(candidates, host)
        light = lambda c: Artifact(  # noqa: E731 - a rejected candidate needs only its columns
            hash=c["hash"],
            name=c["name"],
            kind=c["kind"],
            size=c["size"],
            build_key=c["build_key"],
            metadata=parse_metadata(c["kind"], {k: c[k] for k in _CANDIDATE_IDENTITY}, strict=False),
            provenance=BuildFacts.from_dict({k: c[k] for k in _CANDIDATE_FACTS}, strict=False),
            files=[],
            created_at=as_utc(c["created_at"]),
            names=[name],
        )
        return Resolution(
            best=self.get(best["hash"]) if best is not None else None,  # one session: row, names, tags
            rejected=[(light(c), reason) for c, reason in rejected],
            notes=notes,
        )

    # -- gc ----------------------------------------------------------------------------------------------
    def gc(self, *, keep_last: int | None = None, dry_run: bool = False, grace_s: float = 3600.0) -> GcReport:
        """Delete old untagged, unleased artifacts (keep_last per name), then unreferenced manifests and blobs.

        Rows go first, then manifests, then blobs, so no reader sees a row without bytes. Only store objects
        older than ``grace_s`` are swept, and blobs of pushes in flight are kept.
        """
        if keep_last is not None and keep_last < 0:
            raise InvalidReference("--keep-last must be >= 0")
        rows, _protected = self.catalog.gc_plan(keep_last)
        doomed = [r.hash for r in rows]
        deleted = doomed if dry_run else self.catalog.delete_rows(doomed)
        cutoff = self.catalog.now() - grace_s
        manifests, blobs = self.catalog.referenced(since=cutoff)
        if dry_run:
            gone = set(h.removeprefix("sha256:") for h in deleted)
            manifests -= gone
            blobs = set()
            for h, manifest in ((r.hash, r.manifest) for r in self.catalog.list_rows()):
                if h.removeprefix("sha256:") not in gone:
                    blobs.update(f["sha256"] for f in manifest["files"])
        n_manifests = n_blobs = freed = 0
        for info in list(self.store.list_manifests()):
            if info.hexdigest not in manifests and info.mtime < cutoff:
                n_manifests += 1
                if not dry_run:
                    self.store.delete_manifest(info.hexdigest)
        for info in list(self.store.list_blobs()):
            if info.hexdigest not in blobs and info.mtime < cutoff:
                n_blobs += 1
                freed += info.size
                if not dry_run:
                    self.store.delete_blob(info.hexdigest)
        staged = 0
        if not dry_run:
            staged = self.store.clean_staging(older_than=cutoff)
            self.catalog.forget_pushes(before=cutoff)
        return GcReport(deleted, n_manifests, n_blobs, freed, staged, dry_run)

    def check(self, limit: int = 1000) -> Reachability:
        """Touch both halves: one catalog query and one store listing (raises when either fails)."""
        artifacts = len(self.catalog.list_rows(limit=limit))
        next(iter(self.store.list_manifests()), None)
        return Reachability(self.catalog.safe_url, self.store.url, artifacts, artifacts >= limit)

    def close(self) -> None:
        self.catalog.dispose()
