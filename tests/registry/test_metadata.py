"""The artifact contract (registry/metadata.py): one typed class per kind, the catalog columns derived from
it, strict on write and tolerant of an older writer on read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest
from sqlalchemy import JSON, Float, Integer, String

from registry.api import (
    KIND_TYPES,
    AutotunerCacheMetadata,
    BuildFacts,
    CheckpointMetadata,
    EngineMetadata,
    HfCheckpointMetadata,
    InvalidInput,
    ServeConfigMetadata,
    TimingCacheMetadata,
    parse_metadata,
)
from registry.catalog.models import ArtifactRow, JSONType
from registry.metadata import ArtifactMetadata, all_column_names, catalog_columns, register

SQL_TYPES = {str: String, int: Integer, float: Float, dict: (JSON, JSONType)}


def test_every_kind_is_registered_once() -> None:
    assert KIND_TYPES == {
        "checkpoint": CheckpointMetadata,
        "engine": EngineMetadata,
        "timing-cache": TimingCacheMetadata,
        "hf-checkpoint": HfCheckpointMetadata,
        "serve-config": ServeConfigMetadata,
        "autotuner-cache": AutotunerCacheMetadata,
    }
    with pytest.raises(ValueError, match="registered twice"):
        register(EngineMetadata)


def test_every_contract_column_exists_in_the_catalog_with_its_type() -> None:
    from registry.metadata import _field_types

    table = ArtifactRow.__table__.columns
    for cls in (*KIND_TYPES.values(), BuildFacts):
        for name, (value_type, is_column) in _field_types(cls).items():
            if is_column:
                assert name in table, f"{cls.__name__}.{name} has no catalog column"
                assert isinstance(table[name].type, SQL_TYPES[value_type]), f"{cls.__name__}.{name}"
    # and every catalog column between the keys and the bookkeeping is filled by some contract
    bookkeeping = {
        "hash",
        "kind",
        "name",
        "build_key",
        "size",
        "file_count",
        "created_at",
        "manifest",
        "provenance",
    }
    assert set(table.keys()) - bookkeeping == all_column_names()


def test_values_are_checked_on_construction() -> None:
    assert EngineMetadata(tp=2).tp == 2
    assert BuildFacts(build_seconds=3).build_seconds == 3.0  # an int is a number
    for bad in ({"tp": "2"}, {"tp": True}, {"gpu_arch": 90}):
        with pytest.raises(InvalidInput, match="engine metadata field"):
            EngineMetadata(**bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="must be a list of strings"):
        BuildFacts(steps_run=["build", 1])  # type: ignore[list-item]


def test_strict_parse_names_the_unknown_field_and_the_known_ones() -> None:
    with pytest.raises(InvalidInput) as err:
        parse_metadata("engine", {"tp": 1, "max_batch_sise": 8})
    assert "engine metadata: unknown field 'max_batch_sise'" in str(err.value)
    assert "max_batch_size" in (err.value.hint or "")
    with pytest.raises(InvalidInput, match="invalid artifact kind 'model'"):
        parse_metadata("model", {})


def test_reading_an_older_writer_keeps_unknown_and_mistyped_fields_aside() -> None:
    stored = {"tp": 2, "pp": "1", "name": "from-an-old-push", "gpu_arch": "sm90"}
    meta = parse_metadata("engine", stored, strict=False)
    assert isinstance(meta, EngineMetadata) and (meta.tp, meta.pp, meta.gpu_arch) == (2, None, "sm90")
    assert meta.extra == {"pp": "1", "name": "from-an-old-push"}
    assert meta.to_dict() == stored  # shown as stored
    assert meta.columns() == {"tp": 2, "gpu_arch": "sm90"}  # only checked values reach the catalog


def test_checkpoint_identity_has_no_engine_shapes() -> None:
    assert "max_batch_size" not in CheckpointMetadata.column_names()
    assert "gpu_arch" not in CheckpointMetadata.column_names()
    assert {"recipe_digest", "tp", "trtllm_version"} <= set(CheckpointMetadata.column_names())


def test_catalog_columns_merge_identity_and_build_facts() -> None:
    cols = catalog_columns(
        EngineMetadata(tp=1, recipe_digest="sha256:" + "1" * 64, build_key="k"),
        BuildFacts(host="h", driver_version="570.1", fingerprint={"gpu": {}}),
    )
    assert cols == {"tp": 1, "recipe_digest": "sha256:" + "1" * 64, "host": "h", "driver_version": "570.1"}


def test_a_new_kind_plugs_in_through_the_registry() -> None:
    @dataclass(frozen=True, kw_only=True)
    class ServeConfigMetadata(ArtifactMetadata):
        kind: ClassVar[str] = "test-serve-config"
        trtllm_version: str | None = None

    register(ServeConfigMetadata)
    try:
        meta = parse_metadata("test-serve-config", {"trtllm_version": "1.2.1"})
        assert isinstance(meta, ServeConfigMetadata) and meta.label() == "test-serve-config metadata"
        from registry import manifest

        assert manifest.check_kind("test-serve-config") == "test-serve-config"
    finally:
        del KIND_TYPES["test-serve-config"]
