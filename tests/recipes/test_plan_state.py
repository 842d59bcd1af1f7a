"""Dry runs, plans and matrices say what the registry already has: "already built" (nothing would run), or
which steps would run (fetch and quantize/convert are skipped when the checkpoint is published)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from registry.api import CheckpointMetadata, EngineMetadata
from tests.conftest import RECIPES
from trtbuild.build.plan import plan_recipe
from trtbuild.settings import open_registry

REPO = RECIPES.parent
RECIPE = RECIPES / "llama3-8b-bf16.toml"
ALL_STEPS = ["fetch", "convert", "build", "verify", "publish"]


def trtbuild(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "trtbuild", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _publish(tmp_path: Path, kind: str, key: str) -> str:
    d = tmp_path / kind
    d.mkdir()
    (d / "config.json").write_text(kind)
    meta = EngineMetadata(build_key=key) if kind == "engine" else CheckpointMetadata(build_key=key)
    return open_registry().push(d, name="llama3-8b-bf16", metadata=meta).hash


def test_dry_run_plan_and_matrix_show_registry_state(tmp_path: Path, _isolated_home: Path) -> None:
    plan = plan_recipe(RECIPE)
    assert [s.name for s in plan.steps] == ALL_STEPS
    r = trtbuild("matrix", str(RECIPE), "--json")
    assert r.returncode == 0, r.stderr
    (entry,) = json.loads(r.stdout)["include"]
    assert (entry["built"], entry["hash"], entry["would_run"]) == (False, None, ALL_STEPS)
    assert not (_isolated_home / "registry.db").exists()  # asking created no registry
    ckpt = _publish(tmp_path, "checkpoint", plan.checkpoint_key)
    r = trtbuild("build", str(RECIPE), "--dry-run", "--json")
    state = json.loads(r.stdout)["registry"]
    assert state["would_run"] == ["build", "verify", "publish"] and state["checkpoint_hash"] == ckpt
    engine = _publish(tmp_path, "engine", plan.engine_key)
    r = trtbuild("build", str(RECIPE), "--dry-run")
    assert r.returncode == 0, r.stderr
    assert f"already built: {engine} (nothing would run)" in " ".join(r.stdout.split())
    (entry,) = json.loads(trtbuild("matrix", str(RECIPE), "--json").stdout)["include"]
    assert (entry["built"], entry["hash"], entry["would_run"]) == (True, engine, [])
    assert json.loads(trtbuild("plan", str(RECIPE), "--json").stdout)["registry"]["hash"] == engine


def test_unreachable_registry(tmp_path: Path) -> None:
    """A plan is still shown (state unknown); a matrix, which CI uses to skip runners, fails plainly."""
    env = {"TRTBUILD_DB_URL": "postgresql+psycopg://nobody@127.0.0.1:9/none"}
    r = trtbuild("plan", str(RECIPE), env=env)
    assert r.returncode == 0 and "registry state unknown" in r.stdout, r.stderr
    r = trtbuild("matrix", str(RECIPE), "--json", env=env)
    assert r.returncode == 1 and "catalog" in r.stderr and "Traceback" not in r.stderr
