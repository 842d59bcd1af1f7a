"""Reliability suite: races, kill -9, injected faults and hostile input against the real backends.

Trial counts are small by default (CI); ``TRTBUILD_SOAK_TRIALS=N`` runs every randomised test N times
(a soak run by hand). The registry backends (LocalStore + SQLite, S3 on Ceph RGW + PostgreSQL) come from
tests/registry/conftest.py.
"""

from __future__ import annotations

import os

from tests.registry.conftest import Backend, backend, make_engine, pg_url, s3_url  # noqa: F401


def trials(default: int) -> int:
    """``TRTBUILD_SOAK_TRIALS`` when set, else ``default``."""
    try:
        return max(1, int(os.environ["TRTBUILD_SOAK_TRIALS"]))
    except (KeyError, ValueError):
        return default
