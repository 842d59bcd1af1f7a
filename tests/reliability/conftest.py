"""Reliability suite: races, kill -9, injected faults and hostile input against the real backends.

Trial counts are small by default (CI); ``TRTBUILD_SOAK_TRIALS=N`` runs every randomised test N times
(a soak run by hand). The registry backends (LocalStore + SQLite, S3 on Ceph RGW + PostgreSQL) come from
tests/registry/conftest.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.registry.conftest import Backend, backend, make_engine, pg_url, s3_url  # noqa: F401

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here carries the ``reliability`` marker (select with -m reliability)."""
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.reliability)


@pytest.fixture
def local(tmp_path: Path) -> Backend:
    """LocalStore + SQLite only: for checks made before either backend is touched (input grammar)."""
    db, store = f"sqlite:///{tmp_path / 'registry.db'}", f"file://{tmp_path / 'store'}"
    env = {"TRTBUILD_DB_URL": db, "TRTBUILD_STORE_URL": store, "TRTBUILD_HOME": str(tmp_path / "home")}
    return Backend("local-sqlite", db, store, env)


def trials(default: int) -> int:
    """``TRTBUILD_SOAK_TRIALS`` when set, else ``default``."""
    try:
        return max(1, int(os.environ["TRTBUILD_SOAK_TRIALS"]))
    except (KeyError, ValueError):
        return default
