"""Does the store hold what the catalog names? Every manifest and every blob of each artifact, checked by
presence and size; with a local copy of an artifact, what is missing is uploaded again.

A manifest can always be restored: the catalog row holds it and its digest is the artifact hash. A blob can
be restored only from a file whose sha256 is the blob's (a local copy: the directory that was pushed, or a
pulled one). A row that cannot be read is reported and the scan goes on; an unreachable catalog or store
stops it (every row would fail the same way).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry import manifest as mf
from registry.catalog.db import Catalog
from registry.errors import CatalogUnavailable, IntegrityError, StoreUnavailable
from registry.hashing import hash_file
from registry.store.base import Store


@dataclass
class ArtifactCheck:
    """One artifact: what the store lacks (after any repair), what was put back, or why it was unreadable."""

    hash: str
    name: str | None = None
    missing: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return not self.missing and self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "hash": self.hash,
            "name": self.name,
            "ok": self.ok,
            "missing": self.missing,
            "repaired": self.repaired,
            "error": self.error,
        }


@dataclass
class VerifyReport:
    artifacts: list[ArtifactCheck]
    repair_from: str | None

    @property
    def ok(self) -> bool:
        return all(a.ok for a in self.artifacts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": len(self.artifacts),
            "bad": sum(not a.ok for a in self.artifacts),
            "repaired": sum(bool(a.repaired) for a in self.artifacts),
            "repair_from": self.repair_from,
            "artifacts": [a.to_dict() for a in self.artifacts],
        }


class LocalCopies:
    """Files under a directory, found by the path the manifest gives or else by size, hashed on demand."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._by_size: dict[int, list[Path]] | None = None
        self._digests: dict[Path, str] = {}

    def _index(self) -> dict[int, list[Path]]:
        if self._by_size is None:
            self._by_size = {}
            for path in sorted(self.root.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    self._by_size.setdefault(path.stat().st_size, []).append(path)
        return self._by_size

    def find(self, entry: mf.FileEntry) -> Path | None:
        """A file under the root whose bytes hash to ``entry.sha256``, or None."""
        first = self.root / entry.path
        candidates = [first] if first.is_file() and not first.is_symlink() else []
        candidates += [p for p in self._index().get(entry.size, []) if p != first]
        for path in candidates:
            if path.stat().st_size != entry.size:
                continue
            if path not in self._digests:
                self._digests[path] = hash_file(path)[0]
            if self._digests[path] == entry.sha256:
                return path
        return None


def check_artifact(
    catalog: Catalog, store: Store, hash_: str, copies: LocalCopies | None, repair: bool
) -> ArtifactCheck:
    """Check (and with ``repair``, restore) the manifest and blobs of one artifact."""
    result = ArtifactCheck(hash_)
    try:
        row = catalog.get_row(hash_)
        if row is None:
            result.error = "no catalog row (removed while verify ran)"
            return result
        result.name = row.name
        manifest = mf.from_obj(row.manifest, hash_)
        if manifest.digest != hash_:
            raise IntegrityError(f"the catalog's manifest hashes to {manifest.digest}, not to its row's hash")
    except (CatalogUnavailable, StoreUnavailable):
        raise
    except Exception as exc:  # noqa: BLE001 - one unreadable row is reported, the scan goes on
        result.error = f"catalog row unreadable: {exc}"
        return result
    hexdigest = hash_.removeprefix("sha256:")
    stored = store.get_manifest(hexdigest)
    problem = None
    if stored is None:
        problem = "manifest"
    else:
        try:
            mf.parse(stored, hash_)
        except IntegrityError:
            problem = "manifest (corrupt)"
    if problem:
        if repair:
            if stored is not None:
                store.delete_manifest(hexdigest)
            store.put_manifest(hexdigest, manifest.to_bytes())
            result.repaired.append(f"{problem} (from the catalog)")
        else:
            result.missing.append(problem)
    seen: set[str] = set()
    for entry in manifest.files:
        if entry.sha256 in seen or store.has_blob(entry.sha256, entry.size):
            seen.add(entry.sha256)
            continue
        seen.add(entry.sha256)
        what = f"blob {entry.sha256[:12]} ({entry.path}, {entry.size} bytes)"
        local = copies.find(entry) if copies is not None else None
        if repair and local is not None:
            store.put_blob(entry.sha256, local, entry.size, lambda n: None)
            result.repaired.append(f"{what} from {local}")
        else:
            result.missing.append(what)
    return result


def verify(
    catalog: Catalog,
    store: Store,
    hashes: Iterable[str],
    *,
    repair_from: Path | None = None,
    repair: bool = False,
    on_result: Callable[[ArtifactCheck], None] | None = None,
) -> VerifyReport:
    """Check every artifact of ``hashes``; ``repair`` restores manifests from the catalog and blobs from
    ``repair_from`` (a local copy)."""
    copies = LocalCopies(repair_from) if repair_from is not None else None
    results = []
    for hash_ in hashes:
        result = check_artifact(catalog, store, hash_, copies, repair)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return VerifyReport(results, str(repair_from) if repair_from is not None else None)
