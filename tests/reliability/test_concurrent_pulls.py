"""Eight pulls into one destination at once (two init containers, a retried job): all succeed, one at a
time, and the destination ends complete and verified — fresh, and when it replaces another artifact."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.registry.conftest import ENGINE_META, Backend, make_engine

FILES = {"config.json": b"{}", "rank0.engine": 3_000_000, "rank1.engine": 1_000_000, "tok/t.json": 2000}


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".trtbuild-")
    }


def _pull_eight(backend: Backend, ref: str, dest: Path) -> list[str]:
    procs = [backend.popen("pull", ref, str(dest), "--json") for _ in range(8)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [o[1][-1500:] for o in outs]
    return [json.loads(o[0])["hash"] for o in outs]


def test_eight_concurrent_pulls_fresh_then_replacing(backend: Backend, tmp_path: Path) -> None:
    reg = backend.open()
    a_src = make_engine(tmp_path / "a", FILES, seed=1)
    b_src = make_engine(tmp_path / "b", {**FILES, "rank2.engine": 500_000}, seed=2)
    a = reg.push(a_src, name="pulled", tag="a", metadata=ENGINE_META)
    b = reg.push(b_src, name="pulled", tag="b", metadata=ENGINE_META)
    dest = tmp_path / "deploy" / "engine"

    assert set(_pull_eight(backend, "pulled:a", dest)) == {a.hash}
    assert _digests(dest) == _digests(a_src)
    assert json.loads((dest / ".trtbuild-artifact.json").read_text())["hash"] == a.hash

    assert set(_pull_eight(backend, "pulled:b", dest)) == {b.hash}
    assert _digests(dest) == _digests(b_src)
    assert json.loads((dest / ".trtbuild-artifact.json").read_text())["hash"] == b.hash
    leftovers = sorted(p.name for p in dest.parent.iterdir() if p.name != "engine")
    assert leftovers == [], leftovers  # no lock file, partial or swapped-out directory
