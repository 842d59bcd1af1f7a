"""Alembic migrations: `upgrade head` on an empty PostgreSQL, and the registry migrating by itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from tests.registry.conftest import REPO

TABLES = {"artifacts", "artifact_names", "tags", "tag_history", "leases", "pushes", "alembic_version"}


def _head() -> str:
    from alembic.script import ScriptDirectory

    from registry.catalog.db import Catalog

    return ScriptDirectory.from_config(Catalog._alembic_config()).get_current_head()


def test_alembic_upgrade_head_on_empty_postgres(pg_url: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "alembic",
            "-c",
            "registry/alembic.ini",
            "-x",
            f"db_url={pg_url}",
            "upgrade",
            "head",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    engine = create_engine(pg_url)
    insp = inspect(engine)
    assert TABLES <= set(insp.get_table_names())
    idx = {i["name"] for i in insp.get_indexes("artifacts")}
    assert {
        "ix_artifacts_build_key_kind",
        "ix_artifacts_name_created",
        "ix_artifacts_arch_trtllm",
        "ix_artifacts_resolve",
    } <= idx
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == _head()
    engine.dispose()


def test_registry_migrates_on_open(pg_url: str, tmp_path: Path) -> None:
    from registry.api import Registry

    for url in (pg_url, f"sqlite:///{tmp_path / 'r.db'}"):
        Registry.open(url, f"file://{tmp_path / 'store'}").close()
        Registry.open(url, f"file://{tmp_path / 'store'}").close()  # second open: already at head
        engine = create_engine(url)
        assert TABLES <= set(inspect(engine).get_table_names())
        engine.dispose()


def test_head_revision_constant_matches_alembic_head():
    from alembic.script import ScriptDirectory

    from registry.catalog.db import Catalog
    from registry.migrations import HEAD_REVISION

    assert ScriptDirectory.from_config(Catalog._alembic_config()).get_current_head() == HEAD_REVISION


def test_a_catalog_newer_than_this_client_is_a_plain_error(tmp_path):
    """An old trtbuild opening a catalog migrated by a newer one: a typed error, not Alembic's traceback."""
    from sqlalchemy import create_engine, text

    from registry.catalog.db import Catalog
    from registry.errors import CatalogUnavailable

    url = f"sqlite:///{tmp_path / 'future.db'}"
    Catalog(url)  # at head
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(CatalogUnavailable, match="newer than this trtbuild knows"):
        Catalog(url)
