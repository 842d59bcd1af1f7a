"""Lifecycle of the registry: untag, rm (refusing tagged or leased artifacts unless forced), gc reporting
what goes now and what after the grace period, and verify --repair restoring what the store lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from registry.errors import InUse, NotFound
from tests.registry.conftest import ENGINE_META, Backend, make_engine


def _push(reg, root: Path, seed: int, name: str = "llama", **kw):  # noqa: ANN001, ANN202
    files = {"config.json": f"{seed}".encode(), "rank0.engine": 40_000}
    return reg.push(make_engine(root, files, seed=seed), name=name, metadata=ENGINE_META, **kw)


def test_untag_keeps_the_artifact_and_the_history(backend: Backend, tmp_path: Path) -> None:
    reg = backend.open()
    art = _push(reg, tmp_path / "a", 1, tag="prod")
    reg.tag(art.hash, "llama:typo")
    r = backend.cli("untag", "llama:typo")
    assert r.returncode == 0 and f"untagged llama:typo (was {art.hash})" in r.stdout, r.stderr
    assert reg.get(art.hash).tags == ["llama:prod"]
    assert [(h, p) for h, p, _ in reg.tag_history("llama:typo")] == [(art.hash, None), (None, art.hash)]
    r = backend.cli("untag", "llama:typo")
    assert r.returncode == 1 and "no tag llama:typo" in r.stderr and "Traceback" not in r.stderr
    reg.tag(art.hash, "llama:typo")  # a removed tag can be set again
    assert reg.get("llama:typo").hash == art.hash


def test_rm_refuses_tagged_and_leased_unless_forced(backend: Backend, tmp_path: Path) -> None:
    from dataclasses import replace

    reg = backend.open()
    tagged = _push(reg, tmp_path / "t", 1, tag="prod")
    leased = reg.push(
        make_engine(tmp_path / "l", {"config.json": b"l"}),
        name="llama",
        metadata=replace(ENGINE_META, build_key="bk-1"),
    )
    plain = _push(reg, tmp_path / "p", 3)
    assert reg.acquire_lease("bk-1", "builder", 600)
    r = backend.cli("rm", tagged.hash[7:19])
    assert r.returncode == 1 and "tagged llama:prod" in r.stderr and "untag it first" in r.stderr
    with pytest.raises(InUse, match="leased"):
        reg.remove(leased.hash)
    r = backend.cli("rm", plain.hash, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)[0]["unreferenced_bytes"] == plain.size
    with pytest.raises(NotFound):
        reg.get(plain.hash)
    r = backend.cli("rm", "--force", "llama:prod")
    assert r.returncode == 0 and "untagged llama:prod" in r.stdout, r.stderr
    assert "trtbuild gc" in r.stderr and "grace period" in r.stderr
    assert [(h, p) for h, p, _ in reg.tag_history("llama:prod")][-1] == (None, tagged.hash)
    assert reg.remove(leased.hash, force=True).artifact.hash == leased.hash
    assert reg.list() == []


def test_gc_says_what_goes_now_and_what_after_the_grace_period(backend: Backend, tmp_path: Path) -> None:
    reg = backend.open()
    art = _push(reg, tmp_path / "a", 1)
    reg.remove(art.hash)
    r = backend.cli("gc")  # the blobs were just pushed: younger than the default grace of 1 h
    assert r.returncode == 0, r.stderr
    assert "deleted now: 0 artifacts, 0 manifests, 0 blobs (0 B)" in r.stdout
    assert "after the grace period (1 h): 1 manifests, 2 blobs" in r.stdout
    report = json.loads(backend.cli("gc", "--dry-run", "--json").stdout)
    assert (report["pending_manifests"], report["pending_blobs"]) == (1, 2)
    assert report["pending_bytes"] == art.size and report["pending_until"] > report["grace_s"]
    r = backend.cli("gc", "--grace", "0", "--json")
    swept = json.loads(r.stdout)
    assert (swept["deleted_manifests"], swept["deleted_blobs"], swept["pending_blobs"]) == (1, 2, 0)


def test_verify_finds_and_repairs_what_the_store_lost(backend: Backend, tmp_path: Path) -> None:
    reg = backend.open()
    src = make_engine(tmp_path / "src", {"config.json": b"c", "rank0.engine": 50_000, "sub/x.bin": 10})
    art = reg.push(src, name="llama", metadata=ENGINE_META)
    other = _push(reg, tmp_path / "o", 2, name="other")
    assert backend.cli("verify").returncode == 0
    engine = next(f for f in art.files if f.path == "rank0.engine")
    reg.store.delete_blob(engine.sha256)
    reg.store.delete_manifest(other.hash.removeprefix("sha256:"))
    r = backend.cli("pull", art.hash, str(tmp_path / "pulled"))  # the failure names the way out
    assert r.returncode == 1 and "trtbuild verify REF --repair DIR" in r.stderr
    r = backend.cli("verify")
    assert r.returncode == 1
    assert f"{art.hash} (llama): missing blob {engine.sha256[:12]} (rank0.engine, 50000 bytes)" in r.stdout
    assert f"{other.hash} (other): missing manifest" in r.stdout
    # a catalog row that cannot be read is reported, and the scan goes on
    bad = _push(reg, tmp_path / "b", 3, name="broken")
    from sqlalchemy import text

    with reg.catalog.engine.begin() as conn:
        conn.execute(
            text("UPDATE artifacts SET manifest = :m WHERE hash = :h"),
            {"m": json.dumps({"not": "a manifest"}), "h": bad.hash},
        )
    empty = tmp_path / "empty"
    empty.mkdir()
    r = backend.cli("verify", "--repair", str(empty), "--json")
    report = json.loads(r.stdout)
    assert r.returncode == 1 and report["checked"] == 3
    by_hash = {a["hash"]: a for a in report["artifacts"]}
    assert "catalog row unreadable" in by_hash[bad.hash]["error"]
    assert by_hash[other.hash]["ok"] and by_hash[other.hash]["repaired"] == ["manifest (from the catalog)"]
    assert not by_hash[art.hash]["ok"]  # the empty directory holds no copy of the blob
    r = backend.cli("verify", art.hash[7:19], "--repair", str(src))
    assert r.returncode == 0 and "repaired" in r.stdout, r.stdout + r.stderr
    reg.pull(art.hash, tmp_path / "pulled")
    reg.pull(other.hash, tmp_path / "pulled-other")
    assert (tmp_path / "pulled" / "rank0.engine").read_bytes() == (src / "rank0.engine").read_bytes()
