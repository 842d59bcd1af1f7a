"""kill -9 at random moments of push, pull and gc: no listed artifact is ever without its bytes, a
destination holds either its old artifact or the new one complete (never a mix), and the next run of the
same command completes."""

from __future__ import annotations

import hashlib
import json
import random
import signal
import time
from pathlib import Path

from tests.registry.conftest import ENGINE_META, Backend, make_engine
from tests.reliability.conftest import trials

SLOW = {"TRTBUILD_S3_MULTIPART_MIB": "8", "TRTBUILD_S3_PART_MIB": "5", "TRTBUILD_HASH_CACHE": "0"}
FILES = {"config.json": b"{}", "rank0.engine": 12 << 20, "rank1.engine": 12 << 20, "tokenizer/t.json": 500}


def _killed(backend: Backend, args: list[str], delay: float) -> int:
    p = backend.popen(*args, extra_env=SLOW)
    time.sleep(delay)
    p.send_signal(signal.SIGKILL)
    p.communicate()
    return p.returncode


def _timed(backend: Backend, *args: str) -> float:
    t0 = time.monotonic()
    r = backend.cli(*args, extra_env=SLOW)
    assert r.returncode == 0, r.stderr[-2000:]
    return time.monotonic() - t0


def _before_the_end(rng: random.Random, took: float) -> float:
    """A random moment of a run that took ``took`` seconds unkilled (start-up included), before its end: on
    a fast machine a delay past the end kills nothing, and the test would prove nothing."""
    return rng.uniform(0.3, 0.9) * took


def _all_listed_complete(backend: Backend) -> None:
    reg = backend.open()
    for art in reg.list():
        assert reg.store.get_manifest(art.hash[7:]) is not None, art.hash
        for f in art.files:
            assert reg.store.has_blob(f.sha256, f.size), (art.hash, f.path)
    reg.close()


def _holds(dest: Path, art) -> bool:  # noqa: ANN001
    marker = json.loads((dest / ".trtbuild-artifact.json").read_text())
    if marker["hash"] != art.hash:
        return False
    for f in art.files:
        assert hashlib.sha256((dest / f.path).read_bytes()).hexdigest() == f.sha256, f.path
    return True


def test_kill9_push_pull_gc(backend: Backend, tmp_path: Path) -> None:
    rng = random.Random(99)
    meta = json.dumps(ENGINE_META.to_dict())
    a_src, b_src = make_engine(tmp_path / "a", FILES, seed=1), make_engine(tmp_path / "b", FILES, seed=2)
    push_s = _timed(backend, "push", str(a_src), "--name", "k", "--tag", "a", "--metadata", meta)
    _timed(backend, "push", str(b_src), "--name", "k", "--tag", "b", "--metadata", meta)
    reg = backend.open()
    a, b = reg.get("k:a"), reg.get("k:b")
    dest = tmp_path / "deploy" / "engine"
    pull_s = _timed(backend, "pull", "k:a", str(dest))
    kills = {"push": 0, "pull": 0, "gc": 0}
    n = trials(2)
    for i in range(n):
        # pull: replace A by B in place, killed mid-way; DEST is A or B, whole
        target, other = (b, a) if i % 2 == 0 else (a, b)
        code = _killed(backend, ["pull", target.hash, str(dest)], _before_the_end(rng, pull_s))
        kills["pull"] += code == -signal.SIGKILL
        assert _holds(dest, target) or _holds(dest, other)
        _timed(backend, "pull", target.hash, str(dest))
        assert _holds(dest, target)

        # push of new bytes, killed: nothing half-made is listed; pushing again completes
        src = make_engine(tmp_path / f"p{i}", FILES, seed=100 + i)
        code = _killed(
            backend, ["push", str(src), "--name", "k", "--metadata", meta], _before_the_end(rng, push_s)
        )
        kills["push"] += code == -signal.SIGKILL
        _all_listed_complete(backend)
        _timed(backend, "push", str(src), "--name", "k", "--metadata", meta)

        # gc removing untagged rows and sweeping, killed: rows go before bytes
        code = _killed(backend, ["gc", "--keep-last", "0", "--grace", "0"], rng.uniform(0.3, 2.0))
        kills["gc"] += code == -signal.SIGKILL
        _all_listed_complete(backend)
        _timed(backend, "gc", "--keep-last", "0", "--grace", "0")
        _all_listed_complete(backend)
        assert {x.hash for x in backend.open().list()} == {a.hash, b.hash}
    leftovers = [p.name for p in dest.parent.iterdir() if p.name != "engine" and "partial" not in p.name]
    assert leftovers == [], leftovers
    print(f"{backend.kind}: {n} rounds, killed mid-way: {kills}")
    assert kills["pull"] + kills["push"] > 0
