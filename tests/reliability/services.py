"""Services a fault test owns (started on free ports in its own directories, stopped afterwards), so it can
freeze or kill them without touching the shared ones."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _exports(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            out[key] = value.strip("'\"")
    return out


@contextmanager
def own_postgres() -> Iterator[tuple[str, Path]]:
    """(admin URL, state dir) of a throw-away PostgreSQL cluster (tests/services/postgres.sh)."""
    state = Path(tempfile.mkdtemp(prefix="trtbuild-own-pg-"))
    state.chmod(0o755)  # the server runs as the postgres user
    script = REPO / "tests/services/postgres.sh"
    try:
        r = subprocess.run(
            ["bash", str(script), "start", str(state / "pg"), str(free_port())],
            capture_output=True,
            text=True,
            timeout=180,
        )
        if r.returncode != 0:
            raise RuntimeError(f"cannot start PostgreSQL: {r.stderr[-2000:]}")
        yield _exports(r.stdout)["TRTBUILD_TEST_PG_URL"], state / "pg"
    finally:
        subprocess.run(["bash", str(script), "stop", str(state / "pg")], capture_output=True, timeout=120)
        shutil.rmtree(state, ignore_errors=True)


def postmaster_pid(state: Path) -> int:
    return int((state / "data" / "postmaster.pid").read_text().splitlines()[0])


@contextmanager
def own_ceph_rgw() -> Iterator[dict[str, str]]:
    """The exports of a throw-away single-node Ceph cluster with its gateway (tests/services/ceph_rgw.sh),
    with ``RGW_PIDFILE`` added."""
    state = Path(tempfile.mkdtemp(prefix="trtbuild-own-ceph-"))
    script = REPO / "tests/services/ceph_rgw.sh"
    env = {**os.environ, "CEPH_BLOCK_GIB": "4", "CEPH_TEST_BUCKET": "faults"}
    try:
        r = subprocess.run(
            ["bash", str(script), "start", str(state / "ceph"), str(free_port()), str(free_port())],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )
        if r.returncode != 0:
            raise RuntimeError(f"cannot start Ceph RGW: {r.stderr[-3000:]}")
        yield {**_exports(r.stdout), "RGW_PIDFILE": str(state / "ceph" / "run" / "client.rgw.a.pid")}
    finally:
        subprocess.run(["bash", str(script), "stop", str(state / "ceph")], capture_output=True, timeout=300)
        shutil.rmtree(state, ignore_errors=True)
