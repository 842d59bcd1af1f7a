"""SQLAlchemy 2.0 models of the catalog. Schema changes go through Alembic (``registry/migrations``).

The artifact columns between ``build_key`` and ``size`` are filled from the artifact contract
(``registry.metadata``: fields declared ``column()``); a test checks every such field has its column here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class JSONType(TypeDecorator):
    """JSON, stored as JSONB on PostgreSQL. The PostgreSQL dialect is imported only when one is used, so
    opening a SQLite catalog (a cache-hit build) does not pay for it."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())


HASH = String(71)  # "sha256:" + 64 hex

# Columns the resolve query reads (``Catalog.candidates``); ix_artifacts_resolve covers them all.
RESOLVE_COLUMNS = (
    "hash",
    "kind",
    "name",
    "size",
    "build_key",
    "created_at",
    "gpu_arch",
    "trtllm_version",
    "cuda_version",
    "tp",
    "pp",
    "driver_version",
    "gpu_name",
)


class Base(DeclarativeBase):
    pass


class ArtifactRow(Base):
    """One published artifact; its bytes (manifest + blobs) are in the store before this row exists."""

    __tablename__ = "artifacts"

    hash: Mapped[str] = mapped_column(HASH, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))  # the name it was first pushed under
    build_key: Mapped[str | None] = mapped_column(String(200))
    recipe_digest: Mapped[str | None] = mapped_column(String(200))
    model_source: Mapped[str | None] = mapped_column(String(500))
    model_revision: Mapped[str | None] = mapped_column(String(200))
    dtype: Mapped[str | None] = mapped_column(String(32))
    quant_format: Mapped[str | None] = mapped_column(String(64))
    kv_cache_quant: Mapped[str | None] = mapped_column(String(64))
    tp: Mapped[int | None] = mapped_column(Integer)
    pp: Mapped[int | None] = mapped_column(Integer)
    max_batch_size: Mapped[int | None] = mapped_column(Integer)
    max_input_len: Mapped[int | None] = mapped_column(Integer)
    max_seq_len: Mapped[int | None] = mapped_column(Integer)
    max_num_tokens: Mapped[int | None] = mapped_column(Integer)
    max_beam_width: Mapped[int | None] = mapped_column(Integer)
    gpu_arch: Mapped[str | None] = mapped_column(String(32))
    gpu_name: Mapped[str | None] = mapped_column(String(200))
    driver_version: Mapped[str | None] = mapped_column(String(64))
    cuda_version: Mapped[str | None] = mapped_column(String(64))
    trtllm_version: Mapped[str | None] = mapped_column(String(64))
    tensorrt_version: Mapped[str | None] = mapped_column(String(64))
    modelopt_version: Mapped[str | None] = mapped_column(String(64))
    toolchain_image: Mapped[str | None] = mapped_column(String(500))
    size: Mapped[int] = mapped_column(BigInteger)
    file_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    host: Mapped[str | None] = mapped_column(String(255))
    build_seconds: Mapped[float | None] = mapped_column(Float)
    verification: Mapped[Any | None] = mapped_column(JSONType)
    manifest: Mapped[dict] = mapped_column(JSONType)  # the manifest object; digest_of(manifest) == hash
    provenance: Mapped[dict | None] = mapped_column(JSONType)

    __table_args__ = (
        Index("ix_artifacts_build_key_kind", "build_key", "kind"),
        Index("ix_artifacts_name_created", "name", "created_at"),
        Index("ix_artifacts_arch_trtllm", "gpu_arch", "trtllm_version"),
        Index("ix_artifacts_created_at", "created_at"),
        # Covering index of resolve: the join from artifact_names looks up (hash, kind) and reads every
        # other column from the index, never the wide row (manifest/provenance JSON). Migration 0002.
        Index("ix_artifacts_resolve", *RESOLVE_COLUMNS),
    )


class ArtifactName(Base):
    """Every name an artifact was pushed under (identical bytes pushed under two names share one row)."""

    __tablename__ = "artifact_names"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    hash: Mapped[str] = mapped_column(
        HASH, ForeignKey("artifacts.hash", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    # (name, created_at, hash): resolve and ls scan a name newest first from the index alone (migration 0002).
    __table_args__ = (
        Index("ix_artifact_names_hash", "hash"),
        Index("ix_artifact_names_name_created_hash", "name", "created_at", "hash"),
    )


class TagRow(Base):
    """The current target of ``name:tag``."""

    __tablename__ = "tags"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    tag: Mapped[str] = mapped_column(String(128), primary_key=True)
    hash: Mapped[str] = mapped_column(HASH, ForeignKey("artifacts.hash"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_tags_hash", "hash"),)


class TagEvent(Base):
    """History of tag moves: every (re)assignment and removal of ``name:tag``."""

    __tablename__ = "tag_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    tag: Mapped[str] = mapped_column(String(128))
    hash: Mapped[str | None] = mapped_column(HASH)  # None: the tag was removed (untag)
    previous_hash: Mapped[str | None] = mapped_column(HASH)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_tag_history_name_tag", "name", "tag", "changed_at"),)


class LeaseRow(Base):
    """A build lease: one holder builds ``build_key`` until ``expires_at`` (epoch seconds, database clock)."""

    __tablename__ = "leases"

    build_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    acquired_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)


class PushRow(Base):
    """A push in flight: the blobs it relies on, so gc never sweeps them before its row exists."""

    __tablename__ = "pushes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    hash: Mapped[str] = mapped_column(HASH)
    blobs: Mapped[list] = mapped_column(JSONType)
    started_at: Mapped[float] = mapped_column(Float)
