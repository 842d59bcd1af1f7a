"""push asks the store, not the catalog, which blobs exist: a blob or manifest lost from the store is
uploaded again by the next push of the same directory, and the artifact pulls again."""

from __future__ import annotations

import json
from pathlib import Path

from tests.registry.conftest import ENGINE_META, Backend, make_engine


def test_repush_restores_lost_blob_and_manifest(backend: Backend, tmp_path: Path) -> None:
    src = make_engine(
        tmp_path / "src", {"config.json": b"{}", "rank0.engine": 300_000, "rank1.engine": 200_000}
    )
    meta = json.dumps(ENGINE_META.to_dict())
    first = json.loads(
        backend.cli("push", str(src), "--name", "r", "--tag", "t", "--metadata", meta, "--json").stdout
    )
    reg = backend.open()
    art = reg.get("r:t")
    lost = next(f for f in art.files if f.path == "rank1.engine")
    reg.store.delete_blob(lost.sha256)
    reg.store.delete_manifest(art.hash.removeprefix("sha256:"))
    r = backend.cli("pull", "r:t", str(tmp_path / "broken"))
    assert r.returncode == 1 and "Traceback" not in r.stderr

    again = backend.cli("push", str(src), "--name", "r", "--tag", "t", "--metadata", meta, "--json")
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)
    assert result["hash"] == first["hash"] and result["created"] is False
    assert result["uploaded_bytes"] == lost.size  # exactly the lost blob, found missing in the store
    r = backend.cli("pull", "r:t", str(tmp_path / "fixed"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "fixed" / "rank1.engine").read_bytes() == (src / "rank1.engine").read_bytes()
