"""Fixtures for the registry tests: the same suite runs over LocalStore+SQLite and S3Store+PostgreSQL.

Environment (printed by tests/services/postgres.sh and tests/services/ceph_rgw.sh):
  TRTBUILD_TEST_PG_URL            postgresql+psycopg://user:pw@127.0.0.1:55432/db (role needs CREATEDB)
  TRTBUILD_TEST_S3_ENDPOINT       http://127.0.0.1:7480
  AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, TRTBUILD_TEST_S3_BUCKET
Locally a missing service skips its tests; in CI (CI=true) it fails them.
Each test gets its own PostgreSQL database and its own S3 prefix, both removed afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from registry.api import EngineMetadata

REPO = Path(__file__).resolve().parents[2]


def _missing(what: str) -> None:
    msg = f"{what} not configured: start it with tests/services/*.sh and export what it prints"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg)
    pytest.skip(msg)


@dataclass
class Backend:
    kind: str
    db_url: str
    store_url: str
    env: dict[str, str] = field(default_factory=dict)

    def open(self):  # noqa: ANN201
        from registry.api import Registry

        return Registry.open(self.db_url, self.store_url)

    def cli(
        self, *args: str, extra_env: dict[str, str] | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess:
        env = {**os.environ, **self.env, **(extra_env or {})}
        return subprocess.run(
            [sys.executable, "-m", "trtbuild", *args],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def popen(self, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
        env = {**os.environ, **self.env, **(extra_env or {})}
        return subprocess.Popen(
            [sys.executable, "-m", "trtbuild", *args],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database; dropped afterwards."""
    admin = os.environ.get("TRTBUILD_TEST_PG_URL")
    if not admin:
        _missing("PostgreSQL (TRTBUILD_TEST_PG_URL)")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        _drop_database(engine, name)
        engine.dispose()


def _drop_database(engine, name: str, attempts: int = 20) -> None:
    """DROP … WITH (FORCE), retried: a background worker of the server (not ours to terminate) may still be
    attached to the database for a moment."""
    import time

    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    for attempt in range(attempts):
        try:
            with engine.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except DBAPIError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)


@pytest.fixture
def s3_url() -> Iterator[str]:
    """A unique prefix in the test bucket; emptied afterwards."""
    endpoint = os.environ.get("TRTBUILD_TEST_S3_ENDPOINT")
    bucket = os.environ.get("TRTBUILD_TEST_S3_BUCKET")
    if not (endpoint and bucket and os.environ.get("AWS_ACCESS_KEY_ID")):
        _missing("S3 (TRTBUILD_TEST_S3_ENDPOINT, TRTBUILD_TEST_S3_BUCKET, AWS_ACCESS_KEY_ID)")
    prefix = f"t-{uuid.uuid4().hex[:12]}"
    yield f"s3://{bucket}/{prefix}?endpoint={endpoint}"
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for up in page.get("Uploads", []):
            s3.abort_multipart_upload(Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"])


@pytest.fixture(params=["local-sqlite", "s3-postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Backend:
    home = tmp_path / "home"
    monkeypatch.setenv("TRTBUILD_HOME", str(home))  # hash cache and defaults stay inside the test
    if request.param == "local-sqlite":
        db, store = f"sqlite:///{tmp_path / 'registry.db'}", f"file://{tmp_path / 'store'}"
    else:
        db, store = request.getfixturevalue("pg_url"), request.getfixturevalue("s3_url")
    return Backend(
        request.param,
        db,
        store,
        {"TRTBUILD_DB_URL": db, "TRTBUILD_STORE_URL": store, "TRTBUILD_HOME": str(home)},
    )


def make_engine(root: Path, files: dict[str, bytes | int], seed: int = 0) -> Path:
    """A fake engine directory: value bytes as given, or an int = that many pseudo-random bytes."""
    import random

    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if isinstance(content, bytes) else rng.randbytes(content))
    return root


ENGINE_META = EngineMetadata(
    gpu_arch="sm90",
    tp=1,
    pp=1,
    trtllm_version="1.0.0",
    cuda_version="12.9",
    dtype="float16",
    quant_format="fp8",
    max_batch_size=8,
)
