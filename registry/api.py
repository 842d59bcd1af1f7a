"""The registry's Python API: trtbuild (and any deploy job) calls only this module.

reg = Registry.open("sqlite:////var/lib/reg.db", "s3://bucket/prefix")   # explicit locations; migrates
art = reg.push(Path("engine"), name="llama-8b-fp8", metadata=EngineMetadata(...), tag="prod")
reg.pull("llama-8b-fp8:prod", Path("/models/engine"))

The registry reads no environment variables: its user passes the URLs, the store tuning and the hash cache
(trtbuild computes them in ``trtbuild.settings``).

Also the host facts resolve works from (``detect_host``; nvidia-smi's query and parser) and the arch and
version parsing both packages share (``registry.versions``). The transfer code is imported when a push or
pull runs, so a caller that only parses (``trtbuild validate``) does not pay for it.
"""

from __future__ import annotations

import builtins
import errno
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry import manifest as mf
from registry import nvidia_smi
from registry.artifact import Artifact, PushStats
from registry.canonical import digest_of
from registry.catalog.db import Catalog, as_utc
from registry.compat import RUNTIME_VERSION_FIX, RuntimeVerdict, runtime_verdict
from registry.destlock import dest_lock
from registry.errors import (
    CatalogUnavailable,
    IntegrityError,
    InUse,
    InvalidInput,
    InvalidReference,
    NotFound,
    RegistryError,
    StoreUnavailable,
)
from registry.faults import describe_os_error, translated
from registry.hashcache import HashCache
from registry.hashing import hash_file
from registry.host import detect as detect_host
from registry.limits import MAX_JSON_BYTES
from registry.metadata import (
    KIND_TYPES,
    ArtifactMetadata,
    AutotunerCacheMetadata,
    BuildFacts,
    CheckpointMetadata,
    EngineMetadata,
    HfCheckpointMetadata,
    ModelArtifact,
    ServeConfigMetadata,
    TimingCacheMetadata,
    metadata_type,
    parse_metadata,
)
from registry.nvidia_smi import Gpu, GpuFacts, host_gpus
from registry.progress import notice
from registry.refs import (
    DEFAULT_TAG,
    DIGEST_RE,
    MIN_PREFIX,
    check_name,
    check_tag,
    name_problem,
    parse_name_tag,
    parse_ref,
)
from registry.resolve import HostFacts, Resolution, rank
from registry.resolve_pytorch import (
    FP8_MIN_ARCH,
    autotuner_key,
    autotuner_mismatch,
    evaluate_checkpoint,
    evaluate_serve_config,
)
from registry.store import Store, StoreTuning, open_store
from registry.verify import ArtifactCheck, VerifyReport
from registry.verify import verify as verify_artifacts
from registry.versions import (
    arch_family,
    arch_number,
    arch_of_compute_cap,
    at_least,
    normalize_arch,
    parse_version,
    same_version,
)

__all__ = [
    "DIGEST_RE",
    "KIND_TYPES",
    "MAX_JSON_BYTES",
    "name_problem",
    "ArtifactCheck",
    "InUse",
    "Removal",
    "VerifyReport",
    "RUNTIME_VERSION_FIX",
    "FP8_MIN_ARCH",
    "Artifact",
    "ArtifactMetadata",
    "AutotunerCacheMetadata",
    "BuildFacts",
    "CatalogUnavailable",
    "CheckpointMetadata",
    "EngineMetadata",
    "GcReport",
    "HashCache",
    "HfCheckpointMetadata",
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
    "RuntimeVerdict",
    "ServeConfigMetadata",
    "StoreTuning",
    "StoreUnavailable",
    "TimingCacheMetadata",
    "autotuner_key",
    "autotuner_mismatch",
    "Gpu",
    "GpuFacts",
    "arch_family",
    "arch_number",
    "arch_of_compute_cap",
    "at_least",
    "dest_lock",
    "detect_host",
    "digest_of",
    "hash_file",
    "metadata_type",
    "host_gpus",
    "normalize_arch",
    "nvidia_smi",
    "parse_metadata",
    "parse_version",
    "runtime_verdict",
    "same_version",
]

MAX_AMBIGUOUS = 10  # hashes an ambiguous prefix error lists
# Abandoned uploads (staging files, multipart uploads) are removed only after this long, whatever --grace
# says: a push in flight may be writing them (an S3 multipart upload's age is that of its start).
STAGING_GRACE_S = 24 * 3600.0
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
    """What gc deleted now, and what it left for a later run: unreferenced store objects younger than the
    grace period (a push in flight may still be about to reference them)."""

    deleted_artifacts: list[str]
    deleted_manifests: int
    deleted_blobs: int
    freed_bytes: int
    staging_cleaned: int
    dry_run: bool
    grace_s: float = 0.0
    pending_manifests: int = 0
    pending_blobs: int = 0
    pending_bytes: int = 0
    pending_until: float | None = None  # epoch seconds when the last pending object leaves its grace period
    problems: list[str] = field(default_factory=list)  # unreadable catalog rows (reported, never fatal)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Removal:
    """An artifact ``Registry.remove`` deleted from the catalog; its bytes go with a later gc."""

    artifact: Artifact
    untagged: list[str]  # tags removed with it (only with force)
    unreferenced_bytes: int  # blob bytes no other artifact references: freed by gc after the grace period

    def to_dict(self) -> dict[str, Any]:
        return {
            "hash": self.artifact.hash,
            "name": self.artifact.name,
            "untagged": self.untagged,
            "unreferenced_bytes": self.unreferenced_bytes,
        }


MACHINE_FAULTS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


def _check_destination(dest: Path) -> None:
    """A pull writes a temporary directory beside DEST and renames it: its parent must be a directory this
    process can create entries in (an unwritable place, a path under a file: InvalidInput naming it)."""
    import shutil
    import tempfile

    parent = dest.absolute().parent
    fix = "pull into a directory you can write (the pull's temporary directory is made beside DEST)"
    existing = next(p for p in (parent, *parent.parents) if p.exists())
    if not existing.is_dir():
        raise InvalidInput(f"cannot pull into {dest}: {existing} is a file, not a directory", hint=fix)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tempfile.mkdtemp(prefix=".trtbuild-probe-", dir=parent))
    except OSError as exc:
        if exc.errno in MACHINE_FAULTS:  # a full or read-only file system: a fault (exit 1), not bad input
            raise describe_os_error(exc) from None
        where = exc.filename or parent
        raise InvalidInput(f"cannot pull into {dest}: {where}: {exc.strerror or exc}", hint=fix) from None


class Registry:
    """Content-addressed store + SQL catalog."""

    def __init__(self, catalog: Catalog, store: Store, *, hash_cache: Path | None = None) -> None:
        self.catalog = catalog
        self.store = store
        self.hash_cache = hash_cache  # file-digest cache used by push; None: every push hashes every file
        self.bad_rows: builtins.list[tuple[str, str]] = []  # of the last list(): (hash, why)

    @classmethod
    def open(
        cls,
        db_url: str,
        store_url: str,
        *,
        tuning: StoreTuning | None = None,
        hash_cache: Path | None = None,
        db_timeout_s: float = 30.0,
    ) -> Registry:
        """Open (and migrate) the catalog at ``db_url`` and the store at ``store_url``. ``db_timeout_s``
        bounds each PostgreSQL call (a frozen server fails it instead of hanging)."""
        catalog = Catalog(db_url, timeout_s=db_timeout_s)
        return cls(catalog, open_store(store_url, tuning), hash_cache=hash_cache)

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
        """The full artifact hash a reference names: a tag's target, or a digest (a unique prefix is
        expanded against the catalog; bare hex that no hash starts with is read as ``NAME:latest``)."""
        r = parse_ref(ref)
        if r.partial:
            found = self.catalog.hashes_with_prefix(r.digest or "", name=r.name, limit=MAX_AMBIGUOUS + 1)
            if len(found) > 1:
                shown = ", ".join(h[:19] for h in found[:MAX_AMBIGUOUS])
                more = ", ..." if len(found) > MAX_AMBIGUOUS else ""
                raise InvalidReference(
                    f"{ref!r} is ambiguous: several artifact hashes start with {r.digest} ({shown}{more})",
                    hint="give more hex digits of the hash",
                )
            if found:
                return found[0]
            if r.or_name:
                return self._tag_target(ref, DEFAULT_TAG, also=f"no artifact hash starts with {r.digest}")
            where = f" under the name {r.name}" if r.name else ""
            raise NotFound(
                f"no artifact{where} has a hash starting with {r.digest} (catalog {self.catalog.safe_url})",
                hint="list hashes with: trtbuild ls --no-trunc",
            )
        if r.tag:
            return self._tag_target(r.name or "", r.tag)
        if r.name and not self.catalog.has_name(r.name, r.digest or ""):
            raise NotFound(f"no artifact {r.digest} under the name {r.name}")
        return r.digest or ""

    def _tag_target(self, name: str, tag: str, also: str = "") -> str:
        hash_ = self.catalog.hash_for_tag(name, tag)
        if hash_ is None:
            short_hex = all(c in "0123456789abcdef" for c in name) and len(name) < MIN_PREFIX
            named = bool(name) and bool(self.catalog.list_rows(name=name, limit=1, bad=[]))
            if named:  # pushed without --tag: nothing is NAME:latest until something is tagged so
                hint = f"see them with: trtbuild ls --name {name}; pull one by hash, or tag one: "
                hint += f"trtbuild tag HASH {name}:{tag}"
            else:
                hint = "no artifact has that name; list names with: trtbuild ls"
            raise NotFound(
                f"{also + ' and ' if also else ''}no tag {name}:{tag} in the catalog {self.catalog.safe_url}"
                + (f" ({name} has artifacts, none tagged {tag})" if named else ""),
                hint=hint + (f" (a hash prefix needs at least {MIN_PREFIX} hex digits)" if short_hex else ""),
            )
        return hash_

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
                self.bad_rows.append((str(row.hash), (str(exc).splitlines() or [""])[0][:200]))
        return out

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
        from registry import transfer  # imported on use: `import registry.api` stays light

        check_name(name)
        if tag is not None:
            check_tag(tag)  # an empty tag is refused, not ignored
        if not isinstance(metadata, ArtifactMetadata):
            raise InvalidInput(
                f"push {name}: metadata must be an artifact contract, got {type(metadata).__name__}",
                hint="build it with registry.api.parse_metadata(kind, fields) or a *Metadata class",
            )
        with translated(self.store):
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
        from registry import transfer  # imported on use: `import registry.api` stays light

        transfer.write_marker(Path(directory), art.hash, art.name, art.kind, art.size, len(art.files))

    def pull(self, ref: str, dest: Path, *, progress: bool = False) -> Artifact:
        """Verified, atomic materialisation of REF at ``dest`` (a no-op when ``dest`` already holds it)."""
        from registry import transfer  # imported on use: `import registry.api` stays light

        art = self.get(ref)
        _check_destination(Path(dest))
        wait = f"waiting for another pull into {dest} to finish"
        with translated(self.store):
            manifest = transfer.fetch_manifest(self.store, art.hash)
            with dest_lock(Path(dest), on_wait=lambda: notice(wait, progress)):
                transfer.pull(self.store, art.hash, manifest, Path(dest), name=art.name, progress=progress)
        return art

    def read_file(self, ref: str, path: str) -> bytes:
        """Verified bytes of one small file (config.json, build.log) of an artifact."""
        from registry import transfer  # imported on use: `import registry.api` stays light

        art = self.get(ref)
        with translated(self.store):
            manifest = transfer.fetch_manifest(self.store, art.hash)
            return transfer.read_file(self.store, art.hash, manifest, path)

    # -- tags --------------------------------------------------------------------------------------------
    def tag(self, ref: str, name_tag: str) -> Artifact:
        """Point NAME:TAG at REF (history kept)."""
        name, tag = parse_name_tag(name_tag)
        hash_ = self.get(ref).hash  # NotFound for a hash the catalog does not have
        self.catalog.set_tag(name, tag, hash_)
        return self.get(hash_)

    def untag(self, name_tag: str) -> str:
        """Remove NAME:TAG (the history keeps the removal); the hash it pointed to. The artifact stays."""
        name, tag = parse_name_tag(name_tag)
        hash_ = self.catalog.remove_tag(name, tag)
        if hash_ is None:
            raise NotFound(
                f"no tag {name}:{tag} in the catalog {self.catalog.safe_url}",
                hint=f"see tags with: trtbuild ls --name {name}",
            )
        return hash_

    def remove(self, ref: str, *, force: bool = False) -> Removal:
        """Delete REF's catalog row (its names too). Refused (InUse) when it is tagged or its build key is
        leased, unless ``force``, which removes its tags first. The store's bytes stay until gc sweeps
        them: readers that already resolved REF can finish."""
        art = self.get(ref)
        leased = bool(self.catalog.leased([art.hash]))
        if not force and (art.tags or leased):
            why = []
            if art.tags:
                why.append(f"tagged {', '.join(art.tags)}")
            if leased:
                why.append(f"its build key {art.build_key} is leased (a build is using it)")
            raise InUse(
                f"{art.hash} ({art.name}) is {' and '.join(why)}: not removed",
                hint="untag it first (trtbuild untag NAME:TAG), or pass --force",
            )
        if not self.catalog.delete_rows([art.hash], force=force):
            raise InUse(
                f"{art.hash} was tagged or leased while it was being removed: not removed",
                hint="look at it again (trtbuild show), then untag it or pass --force",
            )
        _manifests, referenced, _bad = self.catalog.referenced()
        unreferenced = {f.sha256: f.size for f in art.files if f.sha256 not in referenced}
        return Removal(art, art.tags if force else [], sum(unreferenced.values()))

    def verify(
        self,
        ref: str | None = None,
        *,
        repair_from: Path | None = None,
        on_result: Callable[[ArtifactCheck], None] | None = None,
    ) -> VerifyReport:
        """Check that the store holds every manifest and blob the catalog names (REF's, or every
        artifact's). With ``repair_from`` (a local copy of the artifact: the pushed or a pulled directory),
        restore what is missing: manifests from the catalog, blobs from files with the same sha256."""
        if repair_from is not None and not Path(repair_from).is_dir():
            raise InvalidInput(
                f"--repair {repair_from}: not a directory",
                hint="give a directory holding a copy of the artifact (the pushed or a pulled one)",
            )
        hashes = [self.resolve_ref(ref)] if ref else self.catalog.all_hashes()
        return verify_artifacts(
            self.catalog,
            self.store,
            hashes,
            repair_from=Path(repair_from) if repair_from is not None else None,
            repair=repair_from is not None,
            on_result=on_result,
        )

    def tag_history(self, name_tag: str) -> builtins.list[tuple[str | None, str | None, Any]]:
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
        needs_runtime = {
            "engine": "an engine runs only on the TensorRT-LLM release that built it",
            ServeConfigMetadata.kind: "a serve config is validated for one TensorRT-LLM release",
        }
        if kind in needs_runtime and not host.trtllm_version:
            raise InvalidInput(
                f"cannot resolve {name}: the TensorRT-LLM version of the serving runtime is unknown, and "
                f"{needs_runtime[kind]}",
                hint=RUNTIME_VERSION_FIX,
            )
        candidates = self.catalog.candidates(name, mf.check_kind(kind), limit)
        if not candidates:
            raise NotFound(f"no {kind} artifacts named {name!r}", hint="list names with: trtbuild ls")
        if kind in (ServeConfigMetadata.kind, HfCheckpointMetadata.kind):
            return self._resolve_typed(candidates, host)
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

    def _resolve_typed(self, candidates: Sequence[Any], host: HostFacts) -> Resolution:
        """Resolve PyTorch-backend kinds over their contract (registry/resolve_pytorch.py), newest first."""
        best: Artifact | None = None
        notes: Sequence[str] = ()
        rejected: builtins.list[tuple[Artifact, str]] = []
        for c in candidates:
            art = self.get(c["hash"])
            if isinstance(art.metadata, ServeConfigMetadata):
                verdict = evaluate_serve_config(art.metadata, host)
            elif isinstance(art.metadata, HfCheckpointMetadata):
                verdict = evaluate_checkpoint(art.metadata, host)
            else:  # pragma: no cover - the catalog returned another kind
                continue
            if verdict.failures:
                rejected.append((art, "; ".join(verdict.failures)))
            elif best is None:
                best, notes = art, verdict.notes
        return Resolution(best=best, rejected=rejected, notes=list(notes))

    def references(self) -> dict[str, tuple[str, ...]]:
        """{artifact hash: the hashes it points at}: a serve config points at its checkpoint."""
        out: dict[str, tuple[str, ...]] = {}
        for row in self.catalog.list_rows(kind=ServeConfigMetadata.kind, bad=[]):
            manifest = row.manifest if isinstance(row.manifest, dict) else {}
            meta = manifest.get("metadata")
            target = meta.get("checkpoint") if isinstance(meta, dict) else None
            if isinstance(target, str):
                out[row.hash] = (target,)
        return out

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
        # an artifact another one points at (a serve config's checkpoint) lives as long as the pointer does
        refs, changed = self.references(), True
        while changed:
            changed = False
            for referrer, targets in refs.items():
                if referrer not in doomed and any(t in doomed for t in targets):
                    doomed = [h for h in doomed if h not in targets]
                    changed = True
        deleted = doomed if dry_run else self.catalog.delete_rows(doomed)
        started = self.catalog.now()
        cutoff = started - grace_s
        listed = (list(self.store.list_manifests()), list(self.store.list_blobs()))
        problems: builtins.list[str] = []
        if dry_run:
            sweep = _Sweep(cutoff)
            sweep.run(listed, self._referenced(problems, without=set(deleted)), None)
            return sweep.report(deleted, 0, True, grace_s, problems)
        sweep = _Sweep(cutoff, self.store)
        with self.catalog.gc_lock() as still_locked:
            sweep.run(listed, self._referenced(problems), still_locked)
        staged = self.store.clean_staging(older_than=started - max(grace_s, STAGING_GRACE_S))
        self.catalog.forget_pushes()
        return sweep.report(deleted, staged, False, grace_s, problems)

    def _referenced(
        self, problems: builtins.list[str], without: Collection[str] = ()
    ) -> tuple[set[str], set[str]]:
        """What the catalog references (artifacts in ``without`` excluded: a dry run's doomed rows). A row
        whose manifest column is unreadable is reported; its blobs come from the verified store manifest."""
        from registry import transfer  # imported on use: `import registry.api` stays light

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

    def check(self, limit: int = 1000) -> Reachability:
        """Touch both halves: one catalog query and one store listing (raises when either fails)."""
        artifacts = len(self.catalog.list_rows(limit=limit))
        next(iter(self.store.list_manifests()), None)
        return Reachability(self.catalog.safe_url, self.store.url, artifacts, artifacts >= limit)

    def close(self) -> None:
        self.catalog.dispose()


class _Sweep:
    """gc's sweep of listed store objects: unreferenced ones older than the cutoff are deleted (``store``
    given) or counted (dry run); younger ones are pending until they leave the grace period."""

    def __init__(self, cutoff: float, store: Store | None = None) -> None:
        self.cutoff, self.store = cutoff, store
        self.manifests = self.blobs = self.freed = 0
        self.pending_manifests = self.pending_blobs = self.pending_bytes = 0
        self.newest_pending: float | None = None

    def run(
        self,
        listed: tuple[list[Any], list[Any]],
        referenced: tuple[set[str], set[str]],
        still_locked: Callable[[], None] | None,
    ) -> None:
        for kind, infos, keep in (("manifest", listed[0], referenced[0]), ("blob", listed[1], referenced[1])):
            for info in infos:
                if info.hexdigest in keep:
                    continue
                if info.mtime >= self.cutoff:
                    self.newest_pending = max(self.newest_pending or info.mtime, info.mtime)
                    if kind == "manifest":
                        self.pending_manifests += 1
                    else:
                        self.pending_blobs += 1
                        self.pending_bytes += info.size
                    continue
                if self.store is not None and still_locked is not None:
                    still_locked()  # never delete after the gc lock may have been lost
                    if kind == "manifest":
                        self.store.delete_manifest(info.hexdigest)
                    else:
                        self.store.delete_blob(info.hexdigest)
                if kind == "manifest":
                    self.manifests += 1
                else:
                    self.blobs += 1
                    self.freed += info.size

    def report(
        self, deleted: list[str], staged: int, dry_run: bool, grace_s: float, problems: list[str]
    ) -> GcReport:
        return GcReport(
            deleted,
            self.manifests,
            self.blobs,
            self.freed,
            staged,
            dry_run,
            grace_s,
            self.pending_manifests,
            self.pending_blobs,
            self.pending_bytes,
            None if self.newest_pending is None else self.newest_pending + grace_s,
            problems,
        )
