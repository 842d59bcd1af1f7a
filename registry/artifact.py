"""The Artifact record handed out by the registry API."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from registry.manifest import FileEntry


@dataclass
class Artifact:
    hash: str
    name: str
    kind: str
    size: int
    build_key: str | None
    metadata: dict[str, Any]  # the manifest's metadata: identity fields only
    provenance: dict[str, Any]  # per-build facts (host, gpu_name, driver_version, build_seconds, ...)
    files: list[FileEntry]
    created_at: datetime
    tags: list[str] = field(default_factory=list)  # "name:tag" strings that point here now
    names: list[str] = field(default_factory=list)  # every name this artifact was pushed under
    columns: dict[str, Any] = field(
        default_factory=dict
    )  # catalog columns (tp, pp, gpu_arch, cuda_version ...)

    def get(self, key: str) -> Any:
        """A catalog column, else a metadata key, else a provenance key."""
        if self.columns.get(key) is not None:
            return self.columns[key]
        if key in self.metadata:
            return self.metadata[key]
        return self.provenance.get(key)

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
            "metadata": self.metadata,
            "provenance": self.provenance,
            "columns": self.columns,
            "files": [f.to_obj() for f in self.files],
        }
