"""Full and read-only disks under the destination, the store, the catalog and the home: every command
exits 1 with a plain message naming the path (no traceback), and nothing partial becomes visible."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.registry.conftest import ENGINE_META, Backend, make_engine
from tests.reliability.faults import read_only, small_tmpfs

FILES = {"config.json": b"{}", "rank0.engine": 3_000_000, "tokenizer/tokenizer.json": 1000}


def _fails_plainly(r: subprocess.CompletedProcess, *needles: str) -> None:
    assert r.returncode == 1, (r.returncode, r.stdout[-1000:], r.stderr[-3000:])
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    assert "error:" in r.stderr
    for needle in needles:
        assert needle in r.stderr, r.stderr[-2000:]


def _pushed(backend: Backend, tmp_path: Path) -> str:
    src = make_engine(tmp_path / "src", FILES)
    r = backend.cli(
        "push", str(src), "--name", "faulty", "--tag", "t", "--metadata", json.dumps(ENGINE_META.to_dict())
    )
    assert r.returncode == 0, r.stderr
    return "faulty:t"


def test_pull_into_a_full_disk(backend: Backend, tmp_path: Path) -> None:
    ref = _pushed(backend, tmp_path)
    with small_tmpfs(tmp_path / "full", "1m") as full:
        r = backend.cli("pull", ref, str(full / "engine"))
        _fails_plainly(r, "no space left", str(full))
        assert [p.name for p in full.iterdir() if not p.name.startswith(".")] == []  # nothing visible
    with small_tmpfs(tmp_path / "roomy", "8m") as roomy:  # with room, the same command works
        assert backend.cli("pull", ref, str(roomy / "engine")).returncode == 0
        assert (roomy / "engine" / "rank0.engine").stat().st_size == FILES["rank0.engine"]


def test_pull_into_a_read_only_directory(backend: Backend, tmp_path: Path) -> None:
    ref = _pushed(backend, tmp_path)
    (tmp_path / "ro").mkdir()
    with read_only(tmp_path / "ro") as ro:
        _fails_plainly(backend.cli("pull", ref, str(ro / "engine")), "read-only", str(ro))
        _fails_plainly(backend.cli("pull", ref, str(ro / "sub" / "engine")), "read-only")
    assert list((tmp_path / "ro").iterdir()) == []
    target = tmp_path / "a-file"
    target.write_text("x")
    r = backend.cli("pull", ref, str(target / "engine"))  # a file where a directory must be
    assert r.returncode in (1, 2) and "Traceback" not in r.stderr and str(target) in r.stderr


def _local(tmp_path: Path, store: Path, db: Path | None = None) -> Backend:
    db_url = f"sqlite:///{db or tmp_path / 'registry.db'}"
    env = {"TRTBUILD_DB_URL": db_url, "TRTBUILD_STORE_URL": f"file://{store}"}
    return Backend(
        "local-sqlite", db_url, f"file://{store}", {**env, "TRTBUILD_HOME": str(tmp_path / "home")}
    )


def test_push_to_a_full_store_leaves_no_row_and_no_staging(tmp_path: Path) -> None:
    src = make_engine(tmp_path / "src", FILES)
    with small_tmpfs(tmp_path / "full", "2m") as full:
        b = _local(tmp_path, full / "store")
        _fails_plainly(b.cli("push", str(src), "--name", "x"), "no space left", "store")
        assert b.open().list() == []
        assert list((full / "store" / "tmp").iterdir()) == []


def test_read_only_store_push_and_gc(tmp_path: Path) -> None:
    src = make_engine(tmp_path / "src", FILES)
    b = _local(tmp_path, tmp_path / "store")
    assert b.cli("push", str(src), "--name", "x").returncode == 0  # untagged: gc may delete it
    src2 = make_engine(tmp_path / "src2", {**FILES, "config.json": b'{"v": 2}'})
    with read_only(tmp_path / "store"):
        _fails_plainly(b.cli("push", str(src2), "--name", "y"), "read-only")
        _fails_plainly(b.cli("gc", "--keep-last", "0", "--grace", "0"), "read-only")
        assert b.cli("ls").returncode == 0  # reading still works
    assert [a.name for a in b.open().list()] == []  # gc removed the row before touching the bytes
    assert b.cli("gc", "--grace", "0").returncode == 0  # writable again: the sweep completes


def test_catalog_on_read_only_or_full_disk(tmp_path: Path) -> None:
    src = make_engine(tmp_path / "src", FILES)
    (tmp_path / "cat").mkdir()
    b = _local(tmp_path, tmp_path / "store", tmp_path / "cat" / "registry.db")
    assert b.cli("ls").returncode == 0  # creates and migrates the catalog
    with read_only(tmp_path / "cat"):
        _fails_plainly(b.cli("push", str(src), "--name", "x"), "registry.db")
    with small_tmpfs(tmp_path / "tiny", "160k") as tiny:
        b2 = _local(tmp_path, tmp_path / "store", tiny / "registry.db")
        r = b2.cli("ls")
        if r.returncode == 0:  # the schema fitted: fill the disk with pushes of large metadata
            meta = json.dumps({"model_source": "x" * 60_000})
            for i in range(8):
                make_engine(src, {"config.json": json.dumps({"i": i}).encode()})
                r = b2.cli("push", str(src), "--name", "x", "--metadata", meta)
                if r.returncode != 0:
                    break
        _fails_plainly(r, "registry.db")


def test_read_only_home_is_not_fatal(tmp_path: Path) -> None:
    """The home holds only the digest cache by then: a read-only one makes every file a cache miss."""
    src = make_engine(tmp_path / "src", FILES)
    b = _local(tmp_path, tmp_path / "store")
    (tmp_path / "home").mkdir()
    with read_only(tmp_path / "home"):
        r = b.cli("push", str(src), "--name", "x", "--tag", "t")
        assert r.returncode == 0, r.stderr
