"""Catalog details that keep resolve fast without weakening it: covering indexes, pings of idle
connections."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from registry.api import Registry
from registry.resolve import HostFacts
from tests.registry.conftest import ENGINE_META, make_engine


def test_resolve_query_is_index_only_on_sqlite(tmp_path: Path) -> None:
    reg = Registry.open(f"sqlite:///{tmp_path / 'r.db'}", f"file://{tmp_path / 'store'}")
    reg.push(make_engine(tmp_path / "e", {"rank0.engine": 100}), name="m", metadata=ENGINE_META)
    stmt = reg.catalog._candidates_stmt
    sql = str(stmt.compile(dialect=reg.catalog.engine.dialect))
    with reg.catalog.engine.connect() as conn:
        plan = [r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, ("m", "engine", 1000, 0))]
    assert any("COVERING INDEX ix_artifact_names_name_created_hash" in p for p in plan), plan
    assert any("COVERING INDEX ix_artifacts_resolve" in p for p in plan), plan
    reg.close()


def test_resolve_returns_full_best_with_names_and_tags(pg_url: str, tmp_path: Path) -> None:
    reg = Registry.open(pg_url, f"file://{tmp_path / 'store'}")
    src = make_engine(tmp_path / "e", {"rank0.engine": 100})
    art = reg.push(src, name="b", metadata=ENGINE_META, tag="prod")
    reg.push(src, name="a", metadata=ENGINE_META, tag="stable")  # same bytes: one row, two names
    reg.tag(art.hash, "a:x")
    res = reg.resolve("a", HostFacts("sm90", "570.124.06", 1, 80.0, "1.0.0"))
    assert res.best is not None and res.best.hash == art.hash
    assert res.best.names == ["b", "a"]  # order of first push under each name
    assert res.best.tags == ["a:stable", "a:x", "b:prod"]
    assert res.best.metadata == ENGINE_META and [f.path for f in res.best.files] == ["rank0.engine"]
    reg.close()


def test_idle_connection_dropped_by_the_server_is_replaced(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import registry.catalog.db as db

    reg = Registry.open(pg_url, f"file://{tmp_path / 'store'}")
    assert reg.catalog.get_row("sha256:" + "0" * 64) is None  # a pooled connection now exists
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    admin.dispose()
    assert killed >= 1
    monkeypatch.setattr(db, "PING_IDLE_S", 0.0)  # the pooled connection counts as idle: pinged, replaced
    assert reg.catalog.get_row("sha256:" + "0" * 64) is None
    reg.close()
