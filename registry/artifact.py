"""The Artifact record handed out by the registry API."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from registry.manifest import FileEntry
from registry.metadata import ArtifactMetadata, BuildFacts, catalog_columns


@dataclass(frozen=True)
class PushStats:
    """What a push did (returned with the artifact by ``Registry.push``)."""

    created: bool  # a new catalog row was written (False: these bytes were already published)
    uploaded_bytes: int  # bytes newly written to the store
    reused_bytes: int  # bytes the store already had


@dataclass
class Artifact:
    hash: str
    name: str
    kind: str
    size: int
    build_key: str | None
    metadata: ArtifactMetadata  # the manifest's metadata: the identity contract of ``kind``
    provenance: BuildFacts  # per-build facts (host, gpu_name, driver_version, build_seconds, ...)
    files: list[FileEntry]
    created_at: datetime  # when the catalog row was written (the first publish)
    tags: list[str] = field(default_factory=list)  # "name:tag" strings that point here now
    names: list[str] = field(default_factory=list)  # every name this artifact was pushed under
    pushed: PushStats | None = None  # set on the artifact ``Registry.push`` returns

    @property
    def columns(self) -> dict[str, Any]:
        """The catalog column values (tp, pp, gpu_arch, cuda_version, driver_version ...)."""
        return catalog_columns(self.metadata, self.provenance)

    def to_dict(self) -> dict[str, Any]:
        return {
            "hash": self.hash,
            "name": self.name,
            "names": self.names,
            "kind": self.kind,
            "size": self.size,
            "build_key": self.build_key,
            "created_at": self.created_at.isoformat(),
            "tags": self.tags,
            "metadata": self.metadata.to_dict(),
            "provenance": self.provenance.to_dict(),
            "columns": self.columns,
            "files": [f.to_obj() for f in self.files],
        }
