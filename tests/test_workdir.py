"""The work directory ($TRTBUILD_HOME/work) is cleaned by age and size, never while a build uses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from trtbuild.build import workdir

REPO = Path(__file__).resolve().parents[1]


def _output(root: Path, area: str, name: str, size: int, age_days: float) -> Path:
    d = root / area / name
    d.mkdir(parents=True)
    (d / "data.bin").write_bytes(b"x" * size)
    then = time.time() - age_days * workdir.DAY_S
    for p in (d / "data.bin", d):
        os.utime(p, (then, then))
    return d


def test_clean_by_age_then_size(tmp_path: Path) -> None:
    root = tmp_path / "work"
    old = _output(root, "models", "a" * 16, 1000, age_days=30)
    mid = _output(root, "engines", "b" * 16, 3000, age_days=3)
    new = _output(root, "checkpoints", "c" * 16, 2000, age_days=0)
    dry = workdir.clean(root, max_age_s=7 * workdir.DAY_S, max_bytes=None, dry_run=True)
    assert [e.path for e in dry.removed] == [old] and old.exists()
    rep = workdir.clean(root, max_age_s=7 * workdir.DAY_S, max_bytes=2500)
    assert [e.path for e in rep.removed] == [old, mid]  # too old, then least recently used
    assert rep.freed_bytes == 4000 and rep.kept_bytes == 2000
    assert not old.exists() and not mid.exists() and new.exists()


def test_not_cleaned_while_a_build_holds_it(tmp_path: Path) -> None:
    root = tmp_path / "work"
    old = _output(root, "logs", "d" * 16, 10, age_days=30)
    with workdir.in_use(root):
        rep = workdir.clean(root, max_age_s=0, max_bytes=0)
    assert rep.skipped and rep.removed == [] and old.exists()
    assert workdir.clean(root, max_age_s=0, max_bytes=None).removed[0].path == old


def test_gc_cleans_the_work_directory(tmp_path: Path) -> None:
    home = tmp_path / "home"
    old = _output(home / "work", "models", "e" * 16, 100, age_days=10)
    new = _output(home / "work", "models", "f" * 16, 100, age_days=1)
    env = {**os.environ, "TRTBUILD_HOME": str(home), "PYTHONPATH": str(REPO)}
    r = subprocess.run(
        [sys.executable, "-m", "trtbuild", "gc", "--json"], env=env, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    work = json.loads(r.stdout)["work"]
    assert [e["path"] for e in work["removed"]] == [str(old)] and not old.exists() and new.exists()
