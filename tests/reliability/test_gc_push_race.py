"""gc racing a re-push of the same bytes never leaves a listed artifact without its bytes.

Each trial publishes an untagged artifact, then runs, at once and with a random offset, a gc that removes
that row (``keep_last=0``) and sweeps unreferenced blobs, and a push of the same directory under a new tag.
Whatever the interleaving, every artifact the catalog lists afterwards has its manifest and every blob in
the store, and the pushed tag pulls with verified bytes. Local store: blobs are aged past the default grace
(as after a retention run) and gc runs with the default grace; S3 object ages cannot be set back, so gc
runs with grace 0 there (every blob is old enough). Alternate trials push with and without the hash cache
(digests known beforehand vs. copy-while-hashing).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import registry.transfer
from registry.errors import RegistryError
from tests.registry.conftest import ENGINE_META, Backend, make_engine
from tests.reliability.conftest import trials


def _age_store(root: Path, seconds: float) -> None:
    past = time.time() - seconds
    for sub in ("blobs", "manifests"):
        for dirpath, _dirs, files in os.walk(root / sub):
            for name in files:
                os.utime(Path(dirpath) / name, (past, past))


def _assert_complete(reg, problems: list[str]) -> None:  # noqa: ANN001
    """Every listed artifact has its manifest and all its blobs in the store."""
    for art in reg.list():
        if reg.store.get_manifest(art.hash.removeprefix("sha256:")) is None:
            problems.append(f"{art.hash}: manifest missing")
        for f in art.files:
            if not reg.store.has_blob(f.sha256, f.size):
                problems.append(f"{art.hash}: blob of {f.path} missing")


def race(first: Callable[[], Any], second: Callable[[], Any], delay: float, errors: list) -> Any:
    """Start both at once (second after ``delay`` s) in two threads; the result of ``first``."""
    barrier = threading.Barrier(2)
    out: dict[str, Any] = {}

    def run(key: str, fn: Callable[[], Any], pause: float) -> None:
        try:
            barrier.wait()
            time.sleep(pause)
            out[key] = fn()
        except BaseException as exc:  # noqa: BLE001 - the caller asserts on it
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=("first", first, 0.0)),
        threading.Thread(target=run, args=("second", second, delay)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return out.get("first")


@pytest.mark.parametrize("grace", ["default", "zero"])
def test_gc_racing_repush_loses_nothing(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, grace: str
) -> None:
    if backend.kind == "s3-postgres" and grace == "default":
        pytest.skip("S3 object ages cannot be set back: the S3 race runs with grace 0")
    n = trials(8)
    rng = random.Random(20240612)
    setup = backend.open()
    store_root = Path(backend.store_url.removeprefix("file://"))
    grace_s = 3600.0 if grace == "default" else 0.0
    problems: list[str] = []
    outcomes = {"gc_removed_the_old_row": 0, "tag_landed_first": 0, "push_waited_for_the_sweep": 0}

    def count_wait(message: str, enabled: bool) -> None:
        outcomes["push_waited_for_the_sweep"] += "gc" in message

    monkeypatch.setattr(registry.transfer, "notice", count_wait)
    lost_trials = 0
    for i in range(n):
        monkeypatch.setenv("TRTBUILD_HASH_CACHE", "1" if i % 2 else "0")
        files: dict[str, bytes | int] = {f"rank{j}.engine": 4096 + j for j in range(12)}
        files["config.json"] = f'{{"trial": {i}}}'.encode()
        src = make_engine(tmp_path / f"e{i}", files, seed=i)
        first = setup.push(src, name="race", metadata=ENGINE_META)
        if backend.kind == "local-sqlite" and grace == "default":
            _age_store(store_root, 7200)
        gc_reg, push_reg = backend.open(), backend.open()
        errors: list[BaseException] = []
        report = race(
            lambda: gc_reg.gc(keep_last=0, grace_s=grace_s),  # noqa: B023
            lambda: push_reg.push(src, name="race", tag=f"t{i}", metadata=ENGINE_META),  # noqa: B023
            rng.uniform(0, 0.25),
            errors,
        )
        assert not errors, errors
        if first.hash in report.deleted_artifacts:
            outcomes["gc_removed_the_old_row"] += 1
        else:
            outcomes["tag_landed_first"] += 1
        before = len(problems)
        _assert_complete(setup, problems)
        try:
            pulled = setup.pull(f"race:t{i}", tmp_path / f"pulled{i}")
            assert pulled.hash == first.hash
            got = (tmp_path / f"pulled{i}" / "rank3.engine").read_bytes()
            assert got == (src / "rank3.engine").read_bytes()
        except RegistryError as exc:
            problems.append(f"trial {i}: pull race:t{i}: {exc}")
        lost_trials += len(problems) > before
        gc_reg.close()
        push_reg.close()
    print(f"{backend.kind} grace={grace}: {n} trials, {outcomes}, trials with loss: {lost_trials}")
    assert problems == []
