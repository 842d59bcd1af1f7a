"""A frozen PostgreSQL (SIGSTOP) and a killed S3 gateway: commands fail with exit 1 and a plain message
within a bounded time (TRTBUILD_DB_TIMEOUT; S3 retries), nothing half-made is listed, and the same command
succeeds once the service is back. Each test starts its own service: the shared ones are never touched."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.registry.conftest import ENGINE_META, REPO, Backend, make_engine
from tests.reliability.conftest import trials
from tests.reliability.faults import signal_tree
from tests.reliability.services import own_ceph_rgw, own_postgres, postmaster_pid

DB_TIMEOUT_S = 5  # TRTBUILD_DB_TIMEOUT in these tests
# A frozen server: the call in flight is cut at the deadline; a reconnect is bounded by connect_timeout
# (min(10, TRTBUILD_DB_TIMEOUT)); interpreter start and imports come on top.
FROZEN_DB_BOUND_S = DB_TIMEOUT_S + min(10, DB_TIMEOUT_S) + 8
# A dead S3 endpoint: the calls in flight end after botocore's standard retries (6 attempts, backoff at most
# 1+2+4+8+16 s), parts queued behind them may start one more cycle; later calls fail at once.
S3_DOWN_BOUND_S = 75


@pytest.fixture(scope="module")
def own_pg() -> Iterator[tuple[str, Path]]:
    with own_postgres() as pg:
        yield pg


def _fresh_db(admin_url: str) -> str:
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"f_{uuid.uuid4().hex[:10]}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def _frozen(state: Path):  # noqa: ANN202
    class Frozen:
        def __enter__(self) -> None:
            signal_tree(postmaster_pid(state), signal.SIGSTOP)

        def __exit__(self, *exc: object) -> None:
            signal_tree(postmaster_pid(state), signal.SIGCONT)

    return Frozen()


def _backend(tmp_path: Path, db_url: str) -> Backend:
    store = f"file://{tmp_path / 'store'}"
    env = {
        "TRTBUILD_DB_URL": db_url,
        "TRTBUILD_STORE_URL": store,
        "TRTBUILD_HOME": str(tmp_path / "home"),
        "TRTBUILD_DB_TIMEOUT": str(DB_TIMEOUT_S),
    }
    return Backend("local-postgres", db_url, store, env)


def _timed(b: Backend, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.monotonic()
    r = b.cli(*args, timeout=120)
    return r, time.monotonic() - t0


def test_frozen_database_fails_within_the_bound(own_pg: tuple[str, Path], tmp_path: Path) -> None:
    admin, state = own_pg
    b = _backend(tmp_path, _fresh_db(admin))
    src = make_engine(tmp_path / "src", {"config.json": b"{}", "rank0.engine": 100_000})
    assert b.cli("push", str(src), "--name", "x", "--tag", "t").returncode == 0
    for args in (("ls",), ("pull", "x:t", str(tmp_path / "dest")), ("push", str(src), "--name", "y")):
        with _frozen(state):
            r, took = _timed(b, *args)
        assert r.returncode == 1, (args, r.stderr[-2000:])
        assert "Traceback" not in r.stderr and "catalog database" in r.stderr, r.stderr[-2000:]
        assert took < FROZEN_DB_BOUND_S, (args, took)
        print(f"{' '.join(args[:1])}: exit 1 after {took:.1f} s: {r.stderr.strip().splitlines()[0]}")
    assert b.cli("ls").returncode == 0  # thawed: works again


def test_database_frozen_mid_push_and_mid_gc(own_pg: tuple[str, Path], tmp_path: Path) -> None:
    """Freeze at a random moment of a push (or gc) in flight: it ends within the bound, exit 0 or 1, and
    what the catalog lists afterwards pulls complete; pushing again completes."""
    admin, state = own_pg
    b = _backend(tmp_path, _fresh_db(admin))
    rng = random.Random(7)
    assert b.cli("ls").returncode == 0  # migrated first (a schema upgrade may take up to an hour)
    src = make_engine(tmp_path / "src", {"config.json": b"{}", "rank0.engine": 64 << 20})
    outcomes = []
    for i in range(trials(3)):
        make_engine(src, {"config.json": json.dumps({"i": i}).encode()})
        verb = ("push", str(src), "--name", "x", "--json") if i % 2 == 0 else ("gc", "--grace", "0")
        p = b.popen(*verb, extra_env={"TRTBUILD_HASH_CACHE": "0"})
        time.sleep(rng.uniform(0.3, 1.5))
        with _frozen(state):
            t0 = time.monotonic()
            _out, err = p.communicate(timeout=120)
            took = time.monotonic() - t0
        assert p.returncode in (0, 1) and "Traceback" not in err, err[-2000:]
        assert took < FROZEN_DB_BOUND_S, took
        outcomes.append((verb[0], p.returncode, round(took, 1)))
        reg = b.open()
        for art in reg.list():
            reg.pull(art.hash, tmp_path / f"check{i}-{art.hash[7:15]}")
        assert b.cli("push", str(src), "--name", "x").returncode == 0
    print("outcomes (verb, exit, seconds after the freeze):", outcomes)


def _restart_gateway(conf: Path) -> None:
    subprocess.run(["radosgw", "--conf", str(conf), "-n", "client.rgw.a"], check=True, capture_output=True)
    time.sleep(3)


def _wait_until_transferring(verb: str, tmp_path: Path, rgw: dict[str, str], proc: subprocess.Popen) -> None:
    """Until a pull has written bytes into its partial directory, or a push has a multipart upload open."""
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=rgw["TRTBUILD_TEST_S3_ENDPOINT"],
        aws_access_key_id=rgw["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=rgw["AWS_SECRET_ACCESS_KEY"],
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if verb == "pull":
            if any(f.stat().st_size > 0 for f in tmp_path.glob(".dest.trtbuild-*.partial/rank0.engine")):
                return
        elif s3.list_multipart_uploads(Bucket=rgw["TRTBUILD_TEST_S3_BUCKET"]).get("Uploads"):
            return
        time.sleep(0.05)
    raise AssertionError(f"{verb} never started transferring (exit {proc.poll()})")


@pytest.mark.slow
def test_s3_gateway_killed_mid_pull_and_mid_push(tmp_path: Path, pg_url: str) -> None:
    with own_ceph_rgw() as rgw:
        endpoint, bucket = rgw["TRTBUILD_TEST_S3_ENDPOINT"], rgw["TRTBUILD_TEST_S3_BUCKET"]
        store = f"s3://{bucket}/p?endpoint={endpoint}"
        env = {
            "TRTBUILD_DB_URL": pg_url,
            "TRTBUILD_STORE_URL": store,
            "TRTBUILD_HOME": str(tmp_path / "home"),
            "AWS_ACCESS_KEY_ID": rgw["AWS_ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": rgw["AWS_SECRET_ACCESS_KEY"],
            "TRTBUILD_S3_PART_MIB": "5",
            "TRTBUILD_S3_MULTIPART_MIB": "8",
        }
        b = Backend("s3-postgres", pg_url, store, env)
        src = make_engine(tmp_path / "src", {"config.json": b"{}", "rank0.engine": 96 << 20})
        r = b.cli(
            "push", str(src), "--name", "g", "--tag", "t", "--metadata", json.dumps(ENGINE_META.to_dict())
        )
        assert r.returncode == 0, r.stderr
        pidfile = Path(rgw["RGW_PIDFILE"])
        conf = pidfile.parent.parent / "ceph.conf"
        dest = tmp_path / "dest"
        for verb in (("pull", "g:t", str(dest)), ("push", str(src), "--name", "g2")):
            if verb[0] == "push":  # new bytes, so the push has something to upload
                make_engine(src, {"config.json": b'{"v": 2}', "rank0.engine": 96 << 20}, seed=2)
            p = subprocess.Popen(
                [sys.executable, "-m", "trtbuild", *verb],
                env={**os.environ, **b.env},
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            _wait_until_transferring(verb[0], tmp_path, rgw, p)
            t0 = time.monotonic()
            signal_tree(int(pidfile.read_text()), signal.SIGKILL)
            _out, err = p.communicate(timeout=300)
            took = time.monotonic() - t0
            print(
                f"{verb[0]}, gateway killed mid-transfer: exit {p.returncode} after {took:.0f} s: {err[-99:]}"
            )
            assert p.returncode == 1 and "Traceback" not in err and "store" in err, err[-3000:]
            assert verb[0] != "pull" or not dest.exists()
            assert took < S3_DOWN_BOUND_S
            _restart_gateway(conf)
            r = b.cli(*verb)
            assert r.returncode == 0, r.stderr[-2000:]
        reg = b.open()
        assert sorted(a.name for a in reg.list()) == ["g", "g2"]
