"""The registry's Python API: the builder and the CLI call only this.

reg = Registry.open()                       # TRTBUILD_DB_URL / TRTBUILD_STORE_URL or defaults; migrates
art = reg.push(Path("engine"), name="llama-8b-fp8", metadata={...}, provenance={...}, tag="prod")
reg.pull("llama-8b-fp8:prod", Path("/models/engine"))
"""

from __future__ import annotations

import builtins
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry import config, transfer
from registry import manifest as mf
from registry.artifact import Artifact
from registry.catalog.db import Catalog, as_utc
from registry.destlock import dest_lock
from registry.errors import InvalidReference, NotFound, RegistryError
from registry.faults import translated
from registry.progress import notice
from registry.refs import DIGEST_RE, check_name, check_tag, parse_name_tag, parse_ref
from registry.resolve import HostFacts, Resolution, rank
from registry.store import Store, open_store

__all__ = ["Artifact", "GcReport", "HostFacts", "Registry", "Resolution"]

# Abandoned uploads (staging files, multipart uploads) are removed only after this long, whatever --grace
# says: a push in flight may be writing them (an S3 multipart upload's age is that of its start).
STAGING_GRACE_S = 24 * 3600.0

_COLUMN_KEYS = (
    "recipe_digest",
    "model_source",
    "model_revision",
    "dtype",
    "quant_format",
    "kv_cache_quant",
    "tp",
    "pp",
    "max_batch_size",
    "max_input_len",
    "max_seq_len",
    "max_num_tokens",
    "max_beam_width",
    "gpu_arch",
    "gpu_name",
    "driver_version",
    "cuda_version",
    "trtllm_version",
    "tensorrt_version",
    "modelopt_version",
    "toolchain_image",
    "host",
    "build_seconds",
    "verification",
)


@dataclass
class GcReport:
    deleted_artifacts: list[str]
    deleted_manifests: int
    deleted_blobs: int
    freed_bytes: int
    staging_cleaned: int
    dry_run: bool
    problems: list[str] = field(default_factory=list)  # unreadable catalog rows (reported, never fatal)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Registry:
    """Content-addressed store + SQL catalog."""

    def __init__(self, catalog: Catalog, store: Store) -> None:
        self.catalog = catalog
        self.store = store
        self.last_push: transfer.PushResult | None = None
        self.bad_rows: builtins.list[tuple[str, str]] = []  # of the last list(): (hash, why)

    @classmethod
    def open(cls, db_url: str | None = None, store_url: str | None = None) -> Registry:
        """Open (and migrate) the catalog and the store; flags > environment > defaults."""
        return cls(Catalog(config.db_url(db_url)), open_store(config.store_url(store_url)))

    # -- artifacts ---------------------------------------------------------------------------------------
    def _artifact(self, row: Any, names: list[str] | None = None, tags: list[str] | None = None) -> Artifact:
        manifest = mf.from_obj(row.manifest, row.hash)
        return Artifact(
            hash=row.hash,
            name=row.name,
            kind=row.kind,
            size=row.size,
            build_key=row.build_key,
            metadata=manifest.metadata,
            provenance=dict(row.provenance or {}),
            files=list(manifest.files),
            created_at=as_utc(row.created_at),
            tags=self.catalog.tags_of(row.hash) if tags is None else tags,
            names=self.catalog.names_of(row.hash) if names is None else names,
            columns={k: getattr(row, k) for k in _COLUMN_KEYS if getattr(row, k) is not None},
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
    ) -> builtins.list[Artifact]:
        """Artifacts, newest first. A catalog row that cannot be read (a buggy or hostile writer) is skipped
        and recorded in ``self.bad_rows`` as (hash, why): it never stops the listing."""
        self.bad_rows = []
        out = []
        for row in self.catalog.list_rows(name=name, kind=kind, limit=limit, bad=self.bad_rows):
            try:
                out.append(self._artifact(row))
            except (RegistryError, TypeError, ValueError, AttributeError, KeyError) as exc:
                self.bad_rows.append((str(row.hash), str(exc).splitlines()[0][:200]))
        return out

    # -- push / pull -------------------------------------------------------------------------------------
    def push(
        self,
        src_dir: Path,
        *,
        name: str,
        kind: str = "engine",
        metadata: dict | None = None,
        provenance: dict | None = None,
        build_key: str | None = None,
        tag: str | None = None,
        progress: bool = False,
    ) -> Artifact:
        """Publish a directory: blobs (only those missing), then manifest, then catalog row (+ name, tag)."""
        check_name(name)
        if tag is not None:
            check_tag(tag)  # an empty tag is refused, not ignored
        with translated(self.store):
            result = transfer.push(
                self.catalog,
                self.store,
                Path(src_dir),
                name=name,
                kind=kind,
                metadata=dict(metadata or {}),
                provenance=provenance,
                build_key=build_key,
                tag=tag,
                progress=progress,
            )
        self.last_push = result
        return self.get(result.hash)

    def pull(self, ref: str, dest: Path, *, progress: bool = False) -> Artifact:
        """Verified, atomic materialisation of REF at ``dest`` (a no-op when ``dest`` already holds it)."""
        art = self.get(ref)
        wait = f"waiting for another pull into {dest} to finish"
        with translated(self.store):
            manifest = transfer.fetch_manifest(self.store, art.hash)
            with dest_lock(Path(dest), on_wait=lambda: notice(wait, progress)):
                transfer.pull(self.store, art.hash, manifest, Path(dest), name=art.name, progress=progress)
        return art

    def read_file(self, ref: str, path: str) -> bytes:
        """Verified bytes of one small file (config.json, build.log) of an artifact."""
        art = self.get(ref)
        with translated(self.store):
            manifest = transfer.fetch_manifest(self.store, art.hash)
            return transfer.read_file(self.store, art.hash, manifest, path)

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
            metadata={},
            provenance={},
            files=[],
            created_at=as_utc(c["created_at"]),
            names=[name],
            columns={
                k: c[k]
                for k in ("gpu_arch", "trtllm_version", "cuda_version", "tp", "pp")
                if c[k] is not None
            },
        )
        return Resolution(
            best=self.get(best["hash"]) if best is not None else None,  # one session: row, names, tags
            rejected=[(light(c), reason) for c, reason in rejected],
            notes=notes,
        )

    # -- gc ----------------------------------------------------------------------------------------------
    def gc(self, *, keep_last: int | None = None, dry_run: bool = False, grace_s: float = 3600.0) -> GcReport:
        """Delete old untagged, unleased artifacts (keep_last per name), then unreferenced manifests, blobs.

        Rows go first, then manifests, then blobs, so no reader sees a row without bytes. Only store objects
        older than ``grace_s`` are swept. The sweep holds the catalog's gc lock from reading what is
        referenced to its last deletion, and pushes register the blobs they rely on under that lock, so a
        blob a push found present is never swept (``Catalog.begin_push``). A catalog row that cannot be read
        is reported in ``problems`` and never stops gc.
        """
        if keep_last is not None and keep_last < 0:
            raise InvalidReference("--keep-last must be >= 0")
        with translated(self.store):
            return self._gc(keep_last, dry_run, grace_s)

    def _gc(self, keep_last: int | None, dry_run: bool, grace_s: float) -> GcReport:
        doomed, _protected = self.catalog.gc_plan(keep_last)
        deleted = doomed if dry_run else self.catalog.delete_rows(doomed)
        started = self.catalog.now()
        cutoff = started - grace_s
        old_manifests = [i for i in self.store.list_manifests() if i.mtime < cutoff]
        old_blobs = [i for i in self.store.list_blobs() if i.mtime < cutoff]
        problems: builtins.list[str] = []
        if dry_run:
            manifests, blobs = self._referenced(problems, without=set(deleted))
            gone_m = [i for i in old_manifests if i.hexdigest not in manifests]
            gone_b = [i for i in old_blobs if i.hexdigest not in blobs]
            return GcReport(deleted, len(gone_m), len(gone_b), sum(i.size for i in gone_b), 0, True, problems)
        n_manifests = n_blobs = freed = 0
        with self.catalog.gc_lock() as still_locked:
            manifests, blobs = self._referenced(problems)
            for info in old_manifests:
                if info.hexdigest not in manifests:
                    still_locked()
                    self.store.delete_manifest(info.hexdigest)
                    n_manifests += 1
            for info in old_blobs:
                if info.hexdigest not in blobs:
                    still_locked()
                    self.store.delete_blob(info.hexdigest)
                    n_blobs += 1
                    freed += info.size
        staged = self.store.clean_staging(older_than=started - max(grace_s, STAGING_GRACE_S))
        self.catalog.forget_pushes()
        return GcReport(deleted, n_manifests, n_blobs, freed, staged, False, problems)

    def _referenced(
        self, problems: builtins.list[str], without: Collection[str] = ()
    ) -> tuple[set[str], set[str]]:
        """What the catalog references (artifacts in ``without`` excluded: a dry run's doomed rows). A row
        whose manifest column is unreadable is reported; its blobs come from the verified store manifest."""
        manifests, blobs, bad = self.catalog.referenced(without)
        for hash_, why in bad:
            if not DIGEST_RE.fullmatch(hash_):
                problems.append(f"{hash_!r}: not an artifact hash; {why}")
                continue
            try:
                blobs.update(f.sha256 for f in transfer.fetch_manifest(self.store, hash_).files)
                problems.append(f"{hash_}: {why}; its blobs were taken from the store's manifest")
            except RegistryError as exc:
                problems.append(f"{hash_}: {why}, and its store manifest is unusable: {exc}")
        return manifests, blobs

    def close(self) -> None:
        self.catalog.dispose()
