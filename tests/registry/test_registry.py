"""The registry against real services: LocalStore+SQLite and S3Store (Ceph RGW)+PostgreSQL."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from dataclasses import replace
from pathlib import Path

import pytest

from registry import manifest as mf
from registry.api import BuildFacts
from registry.canonical import canonical_json, digest_of
from registry.catalog.db import utcnow
from registry.errors import IntegrityError, InvalidInput, NotFound, UnsafeManifest
from registry.resolve import HostFacts
from registry.store.base import blob_key
from tests.registry.conftest import ENGINE_META, Backend, make_engine


def _push(reg, src: Path, name: str = "llama", **kw):  # noqa: ANN001, ANN202
    kw.setdefault("metadata", ENGINE_META)
    return reg.push(src, name=name, **kw)


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_push_pull_roundtrip_idempotent(backend: Backend, tmp_path: Path) -> None:
    reg = backend.open()
    src = make_engine(
        tmp_path / "eng", {"config.json": b'{"a": 1}', "rank0.engine": 200_000, "sub/x.bin": 10}
    )
    art = _push(
        reg, src, tag="prod", provenance=BuildFacts(host="b1", driver_version="570.1", build_seconds=2)
    )
    assert art.hash == mf.build("engine", [], {}).digest or art.hash.startswith("sha256:")
    assert art.metadata == ENGINE_META and art.provenance.build_seconds == 2.0
    assert art.columns["driver_version"] == "570.1" and "driver_version" not in art.metadata.to_dict()
    assert art.tags == ["llama:prod"] and art.pushed is not None and art.pushed.created
    again = _push(reg, src, tag="prod", provenance=BuildFacts(host="b2"))  # same bytes: same hash, no upload
    assert again.hash == art.hash and again.pushed is not None
    assert not again.pushed.created and again.pushed.uploaded_bytes == 0
    assert again.provenance.host == "b1"  # the first push's build facts are kept
    dest = tmp_path / "out" / "engine"
    assert reg.pull("llama:prod", dest).hash == art.hash
    assert _tree(dest) == _tree(src) | {mf.MARKER_NAME: (dest / mf.MARKER_NAME).read_bytes()}
    assert json.loads((dest / mf.MARKER_NAME).read_text())["hash"] == art.hash
    before = (dest / "rank0.engine").stat().st_mtime_ns
    reg.pull(art.hash, dest)  # complete DEST with the same hash: no-op
    assert (dest / "rank0.engine").stat().st_mtime_ns == before
    assert reg.read_file(f"llama@{art.hash}", "config.json") == b'{"a": 1}'
    assert [a.hash for a in reg.list(name="llama")] == [art.hash]
    assert reg.find_by_build_key("nope", "engine") is None


def test_repush_after_config_change_uploads_only_that_file(backend: Backend, tmp_path: Path) -> None:
    reg = backend.open()
    src = make_engine(
        tmp_path / "eng", {"config.json": b'{"v": 1}', "rank0.engine": 300_000, "rank1.engine": 300_000}
    )
    first = _push(reg, src, metadata=replace(ENGINE_META, build_key="k1"))
    (src / "config.json").write_bytes(b'{"v": 22}')
    second = _push(reg, src, metadata=replace(ENGINE_META, build_key="k1"))
    assert second.hash != first.hash
    assert second.pushed is not None and second.pushed.uploaded_bytes == len(b'{"v": 22}')
    assert reg.find_by_build_key("k1", "engine").hash == second.hash  # newest complete artifact


def test_pull_replaces_partial_and_old_dest_but_never_foreign_dirs(backend: Backend, tmp_path: Path) -> None:
    reg = backend.open()
    a = _push(reg, make_engine(tmp_path / "a", {"config.json": b"A", "rank0.engine": 1000}, seed=1))
    b = _push(reg, make_engine(tmp_path / "b", {"config.json": b"B", "rank0.engine": 1000}, seed=2))
    dest = tmp_path / "dest"
    reg.pull(a.hash, dest)
    (dest / "rank0.engine").write_bytes(b"truncated")  # damaged copy of a: same marker, wrong size
    reg.pull(a.hash, dest)
    assert (dest / "rank0.engine").read_bytes() == (tmp_path / "a" / "rank0.engine").read_bytes()
    reg.pull(b.hash, dest)  # a different artifact replaces it atomically
    assert (dest / "config.json").read_bytes() == b"B"
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(InvalidInput, match="never overwritten"):
        reg.pull(a.hash, foreign)
    assert (foreign / "notes.txt").read_text() == "mine"


def _corrupt_blob(backend: Backend, reg, hexdigest: str, size: int) -> None:  # noqa: ANN001
    bad = bytes(size)  # same size, wrong bytes
    if backend.kind == "local-sqlite":
        path = reg.store.root / blob_key(hexdigest)
        path.chmod(0o644)
        path.write_bytes(bad)
    else:
        reg.store._client.put_object(
            Bucket=reg.store.bucket, Key=reg.store._key(blob_key(hexdigest)), Body=bad
        )


def test_corrupted_blob_fails_pull_and_leaves_dest_untouched(backend: Backend, tmp_path: Path) -> None:
    reg = backend.open()
    src = make_engine(tmp_path / "eng", {"config.json": b"{}", "rank0.engine": 100_000})
    art = _push(reg, src)
    old = _push(reg, make_engine(tmp_path / "old", {"config.json": b"old"}), name="other")
    dest = tmp_path / "dest"
    reg.pull(old.hash, dest)
    before = _tree(dest)
    entry = next(f for f in art.files if f.path == "rank0.engine")
    _corrupt_blob(backend, reg, entry.sha256, entry.size)
    with pytest.raises(IntegrityError, match="integrity error: rank0.engine"):
        reg.pull(art.hash, dest)
    assert _tree(dest) == before
    r = backend.cli("pull", art.hash, str(tmp_path / "dest2"))
    assert r.returncode == 1 and "integrity error" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "dest2").exists()


@pytest.mark.parametrize(
    "entry, match",
    [
        ({"path": "../../escape.txt", "size": 3, "sha256": "0" * 64}, "'..'"),
        ({"path": "/tmp/abs.txt", "size": 3, "sha256": "0" * 64}, "absolute"),
        ({"path": "link", "size": 0, "sha256": "0" * 64, "type": "symlink", "target": "/etc/passwd"}, "link"),
    ],
)
def test_malicious_manifest_is_refused_before_any_write(
    backend: Backend, tmp_path: Path, entry: dict, match: str
) -> None:
    reg = backend.open()
    obj = {"schema": mf.SCHEMA, "kind": "engine", "files": [entry], "metadata": {}}
    hash_ = digest_of(obj)
    reg.store.put_manifest(hash_[7:], canonical_json(obj))
    reg.catalog.publish(
        {
            "hash": hash_,
            "kind": "engine",
            "name": "evil",
            "size": 3,
            "file_count": 1,
            "created_at": utcnow(),
            "manifest": obj,
            "provenance": {},
        },
        "evil",
        "latest",
    )
    dest = tmp_path / "x" / "dest"
    with pytest.raises(UnsafeManifest, match=match):
        reg.pull("evil:latest", dest)
    assert not (tmp_path / "x").exists() and not (tmp_path / "escape.txt").exists()


def test_push_refuses_symlinks(backend: Backend, tmp_path: Path) -> None:
    reg = backend.open()
    src = make_engine(tmp_path / "eng", {"config.json": b"{}"})
    (src / "rank0.engine").symlink_to("/etc/passwd")
    with pytest.raises(InvalidInput, match="symbolic link"):
        _push(reg, src)


def test_eight_processes_push_the_same_artifact(backend: Backend, tmp_path: Path) -> None:
    src = make_engine(
        tmp_path / "eng", {"config.json": b"{}", "rank0.engine": 2_000_000, "rank1.engine": 500_000}
    )
    meta = json.dumps(ENGINE_META.to_dict())
    procs = [
        backend.popen(
            "push",
            str(src),
            "--name",
            "same",
            "--tag",
            "t",
            "--metadata",
            meta,
            "--json",
            extra_env={"TRTBUILD_HOME": str(tmp_path / f"home{i}")},
        )
        for i in range(8)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    hashes = {json.loads(o[0])["hash"] for o in outs}
    assert len(hashes) == 1
    reg = backend.open()
    assert [a.hash for a in reg.list()] == list(hashes)
    reg.pull("same:t", tmp_path / "dest")
    assert _tree(tmp_path / "dest")["rank0.engine"] == (src / "rank0.engine").read_bytes()


@pytest.mark.slow
def test_kill9_during_push_leaves_nothing_visible_and_repush_completes(
    backend: Backend, tmp_path: Path
) -> None:
    src = make_engine(
        tmp_path / "eng", {"config.json": b"{}", "rank0.engine": 24 << 20, "rank1.engine": 24 << 20}
    )
    small_parts = {"TRTBUILD_S3_MULTIPART_MIB": "8", "TRTBUILD_S3_PART_MIB": "5", "TRTBUILD_HASH_CACHE": "0"}
    reg = backend.open()
    rng = random.Random(1234)
    t0 = time.monotonic()
    r = backend.cli("push", str(src), "--name", "probe", "--json", extra_env=small_parts)
    full = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    probe_hash = json.loads(r.stdout)["hash"]
    outcomes = []
    for i in range(5):
        make_engine(src, {"config.json": json.dumps({"i": i}).encode()})  # a new artifact each round
        p = backend.popen("push", str(src), "--name", "killed", "--json", extra_env=small_parts)
        time.sleep(rng.uniform(0.05, max(0.1, full)))
        p.send_signal(signal.SIGKILL)
        p.communicate()
        visible = reg.list(name="killed")
        outcomes.append(p.returncode)
        for art in visible:  # anything visible must be complete
            reg.pull(art.hash, tmp_path / f"check{i}")
        r = backend.cli("push", str(src), "--name", "killed", "--json", extra_env=small_parts)
        assert r.returncode == 0, r.stderr
        h = json.loads(r.stdout)["hash"]
        reg.pull(h, tmp_path / f"after{i}")
        assert (tmp_path / f"after{i}" / "rank1.engine").read_bytes() == (src / "rank1.engine").read_bytes()
    assert -signal.SIGKILL in outcomes  # at least one push was really killed mid-way
    assert probe_hash


def test_database_unreachable_is_a_clear_error(backend: Backend, tmp_path: Path) -> None:
    r = backend.cli("ls", "--db-url", "postgresql+psycopg://u:secret@127.0.0.1:9/none")
    assert r.returncode == 1
    assert "cannot use the catalog database" in r.stderr and "Traceback" not in r.stderr
    assert "secret" not in r.stderr
    r = backend.cli(
        "push",
        str(make_engine(tmp_path / "e", {"a": b"1"})),
        "--name",
        "x",
        "--db-url",
        "sqlite:////proc/no/such/dir/registry.db",
    )
    assert r.returncode == 2 and "the directory /proc/no/such/dir of the catalog" in r.stderr
    assert "does not exist" in r.stderr and "Traceback" not in r.stderr


def test_resolve_picks_and_explains(backend: Backend, tmp_path: Path) -> None:
    reg = backend.open()
    variants = {
        "h100-tp1": ENGINE_META,
        "h100-tp8": replace(ENGINE_META, tp=8),
        "a100": replace(ENGINE_META, gpu_arch="sm80"),
        "old-trtllm": replace(ENGINE_META, trtllm_version="0.21.0"),
        "cuda13": replace(ENGINE_META, cuda_version="13.0"),
    }
    arts = {}
    for i, (label, meta) in enumerate(variants.items()):
        arts[label] = reg.push(
            make_engine(tmp_path / label, {"config.json": label.encode(), "rank0.engine": 1000}, seed=i),
            name="llama",
            metadata=meta,
        )
    host = HostFacts(
        gpu_arch="sm90", driver_version="570.124.06", gpu_count=4, gpu_mem_gib=79.6, trtllm_version="1.0.0"
    )
    res = reg.resolve("llama", host)
    assert res.best is not None and res.best.hash == arts["h100-tp1"].hash
    reasons = {a.hash: r for a, r in res.rejected}
    assert "needs 8 GPUs" in reasons[arts["h100-tp8"].hash]
    assert "SM arch sm80 != host sm90" in reasons[arts["a100"].hash]
    assert "TensorRT-LLM 0.21.0 != host runtime 1.0.0" in reasons[arts["old-trtllm"].hash]
    assert "580" in reasons[arts["cuda13"].hash]
    r = backend.cli(
        "resolve",
        "llama",
        "--gpu-arch",
        "sm80",
        "--driver",
        "470.57.02",
        "--gpus",
        "1",
        "--gpu-mem-gib",
        "40",
        "--trtllm",
        "1.0.0",
    )
    assert r.returncode == 1 and "rejected" in r.stderr
    r = backend.cli(
        "pull",
        "llama",
        str(tmp_path / "resolved"),
        "--resolve",
        "--gpu-arch",
        "sm90",
        "--driver",
        "570.124.06",
        "--gpus",
        "4",
        "--gpu-mem-gib",
        "79.6",
        "--trtllm",
        "1.0.0",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["hash"] == arts["h100-tp1"].hash
    with pytest.raises(NotFound):
        reg.resolve("nobody", host)


def test_resolve_refuses_an_unknown_runtime_version(backend: Backend, tmp_path: Path) -> None:
    """Without the serving runtime's TensorRT-LLM version, resolve and pull --resolve refuse (exit 2) and
    say how to give it; before, they picked the newest engine of any release with a stderr note."""
    reg = backend.open()
    for i, version in enumerate(("1.0.0", "1.1.0")):  # the 1.1.0 engine is the newest
        reg.push(
            make_engine(tmp_path / version, {"config.json": version.encode(), "rank0.engine": 100}, seed=i),
            name="llama",
            metadata=replace(ENGINE_META, trtllm_version=version),
        )
    with pytest.raises(InvalidInput) as exc:
        reg.resolve("llama", HostFacts(gpu_arch="sm90", driver_version="570.124.06", gpu_count=1))
    assert "--trtllm" in (exc.value.hint or "")
    host = ["--gpu-arch", "sm90", "--driver", "570.124.06", "--gpus", "1", "--gpu-mem-gib", "79.6"]
    r = backend.cli("resolve", "llama", *host)
    assert r.returncode == 2 and r.stdout == "", r.stderr
    assert "TensorRT-LLM version of the serving runtime is unknown" in r.stderr
    assert "--trtllm VERSION" in r.stderr and "--serving-image IMAGE" in r.stderr
    dest = tmp_path / "dest"
    r = backend.cli("pull", "--resolve", "llama", str(dest), *host)
    assert r.returncode == 2 and "--trtllm" in r.stderr and not dest.exists()
    r = backend.cli("pull", "--resolve", "llama", str(dest), *host, "--trtllm", "1.0.0", "--json")
    assert r.returncode == 0, r.stderr
    assert (dest / "config.json").read_bytes() == b"1.0.0"


def test_gc_keeps_tagged_leased_and_shared_blobs(backend: Backend, tmp_path: Path) -> None:
    reg = backend.open()
    shared = {"rank0.engine": random.Random(5).randbytes(50_000)}  # identical bytes in two artifacts
    tagged = _push(
        reg, make_engine(tmp_path / "t", {"config.json": b"t", **shared}, seed=7), name="m", tag="prod"
    )
    time.sleep(0.01)
    leased = _push(
        reg,
        make_engine(tmp_path / "l", {"config.json": b"l", "rank0.engine": 60_000}, seed=8),
        name="m",
        metadata=replace(ENGINE_META, build_key="bk"),
    )
    time.sleep(0.01)
    old = _push(
        reg, make_engine(tmp_path / "o", {"config.json": b"o", "x.bin": 70_000, **shared}, seed=7), name="m"
    )
    assert reg.acquire_lease("bk", "builder-1", 600)
    dry = reg.gc(keep_last=0, dry_run=True, grace_s=0)
    assert dry.deleted_artifacts == [old.hash] and reg.get(old.hash)
    rep = reg.gc(keep_last=0, grace_s=0)
    assert rep.deleted_artifacts == [old.hash] and rep.deleted_blobs == 2  # x.bin and its config.json
    with pytest.raises(NotFound):
        reg.get(old.hash)
    for art in (tagged, leased):
        reg.pull(art.hash, tmp_path / f"pull-{art.hash[7:15]}")
    r = backend.cli("gc", "--keep-last", "0", "--grace", "0", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["deleted_artifacts"] == []
    reg.release_lease("bk", "builder-1")
    assert reg.gc(keep_last=0, grace_s=0).deleted_artifacts == [leased.hash]
    reg.pull("m:prod", tmp_path / "final")  # the tagged one survives every round


def test_tags_move_with_history(backend: Backend, tmp_path: Path) -> None:
    reg = backend.open()
    a = _push(reg, make_engine(tmp_path / "a", {"c": b"a"}))
    b = _push(reg, make_engine(tmp_path / "b", {"c": b"b"}))
    reg.tag(a.hash, "llama:prod")
    r = backend.cli("tag", b.hash, "llama:prod")
    assert r.returncode == 0, r.stderr
    assert reg.get("llama:prod").hash == b.hash
    assert [(h, p) for h, p, _ in reg.tag_history("llama:prod")] == [(a.hash, None), (b.hash, a.hash)]


def test_leases_are_exclusive_and_expire(backend: Backend) -> None:
    reg = backend.open()
    assert reg.acquire_lease("key", "a", 0.5)
    assert not reg.acquire_lease("key", "b", 10)
    assert reg.renew_lease("key", "a", 0.5)
    assert not reg.renew_lease("key", "b", 10)
    time.sleep(0.7)
    assert reg.acquire_lease("key", "b", 10)  # expired: taken over
    assert not reg.renew_lease("key", "a", 10)
    reg.release_lease("key", "b")
    assert reg.acquire_lease("key", "c", 10)


def test_lease_is_atomic_across_processes(backend: Backend) -> None:
    import subprocess
    import sys

    code = (
        "import sys; from registry.api import Registry; "
        "r = Registry.open(sys.argv[2], sys.argv[3]); print(r.acquire_lease('shared-key', sys.argv[1], 60))"
    )
    env = {**os.environ, **backend.env}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, f"holder{i}", backend.db_url, backend.store_url],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(8)
    ]
    results = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert sorted(results) == ["False"] * 7 + ["True"]


def test_cli_show_ls_json(backend: Backend, tmp_path: Path) -> None:
    src = make_engine(tmp_path / "eng", {"config.json": b"{}", "rank0.engine": 1000})
    r = backend.cli(
        "push",
        str(src),
        "--name",
        "cli",
        "--tag",
        "v1",
        "--json",
        "--metadata",
        json.dumps(ENGINE_META.to_dict()),
        "--provenance",
        '{"host": "h", "steps_run": ["build"]}',
    )
    assert r.returncode == 0, r.stderr
    h = json.loads(r.stdout)["hash"]
    shown = json.loads(backend.cli("show", "cli:v1", "--json").stdout)
    assert (
        shown["hash"] == h and shown["provenance"]["steps_run"] == ["build"] and shown["tags"] == ["cli:v1"]
    )
    assert shown["metadata"] == ENGINE_META.to_dict() and shown["columns"]["tp"] == 1
    listed = json.loads(backend.cli("ls", "--name", "cli", "--json").stdout)
    assert [x["hash"] for x in listed] == [h]
    r = backend.cli("show", "cli:missing")
    assert r.returncode == 1 and "no tag cli:missing" in r.stderr
    r = backend.cli("show", "not a ref")
    assert r.returncode == 2
