#!/usr/bin/env python3
"""Local-store path and hashing at 16+ GiB on a many-core host (the GPU host): how pull scales with cores.

Times, for one large file (default 16 GiB, page cache warm as after a build):
  sha256 of the file as one stream (what a single-digest verification costs) and `sha256sum`;
  trtbuild's chunk verification alone with 1..N hash threads;
  trtbuild local-store push (copy + whole-file sha256 + chunk digests + fsync);
  trtbuild local-store pull restricted to 1, 2, 4, 8, ... cores (taskset), against `cp -r` and
  `cp -r` + `sha256sum`; and a 10,000-small-file pull against `cp -r`.
Run:  python bench/registry/device_bench.py [--work /tmp/trtbuild-devbench] [--gib 16]
Needs only this checkout's registry package and SQLAlchemy (the pull code imports the catalog models).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
GIB = 1 << 30

PULL = """
import sys, time
from pathlib import Path
from registry import manifest as mf, transfer
from registry.store.local import LocalStore
store = LocalStore(sys.argv[1])
m = mf.parse(Path(sys.argv[2]).read_bytes(), sys.argv[3])
t = time.perf_counter()
transfer.pull(store, sys.argv[3], m, Path(sys.argv[4]), name="bench", progress=False)
print(time.perf_counter() - t)
"""


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": f"{REPO}:{os.environ.get('PYTHONPATH', '')}", **(env or {})}
    t0 = time.perf_counter()
    out = subprocess.run(argv, check=True, capture_output=True, text=True, env=env).stdout
    return time.perf_counter() - t0, out


def write_file(path: Path, size: int) -> None:
    block = random.randbytes(64 << 20)
    with open(path, "wb") as f:
        for i in range(size // len(block)):
            f.write(i.to_bytes(8, "little") + block[8:])


def push(src: Path, store_root: Path, work: Path) -> tuple[float, str, Path]:
    """Push ``src`` into a local store by the registry's own code; returns (seconds, hash, manifest file)."""
    from registry import manifest as mf
    from registry.store.local import LocalStore

    store = LocalStore(store_root)
    t0 = time.perf_counter()
    entries = []
    for p in sorted(q for q in src.rglob("*") if q.is_file()):
        digest, _ = store.ingest(p, lambda n: None)
        rel = p.relative_to(src).as_posix()
        entries.append(
            mf.FileEntry(rel, digest.size, digest.sha256, digest.chunks, 64 << 20 if digest.chunks else 0)
        )
    m = mf.build("engine", entries, {})
    store.put_manifest(m.digest[7:], m.to_bytes())
    dt = time.perf_counter() - t0
    mfile = work / f"{src.name}.manifest.json"
    mfile.write_bytes(m.to_bytes())
    return dt, m.digest, mfile


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/trtbuild-devbench"))
    ap.add_argument("--gib", type=int, default=16)
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0))
    work = args.work
    shutil.rmtree(work, ignore_errors=True)
    (work / "src").mkdir(parents=True)
    size = args.gib * GIB
    rows: list[tuple[str, float]] = []
    t0 = time.perf_counter()
    write_file(work / "src" / "rank0.engine", size)
    (work / "src" / "config.json").write_text("{}")
    print(
        f"host: {cores} cores, {os.uname().release}; "
        f"wrote {args.gib} GiB in {time.perf_counter() - t0:.1f} s",
        flush=True,
    )

    h = hashlib.sha256()
    t0 = time.perf_counter()
    with open(work / "src" / "rank0.engine", "rb", buffering=0) as f:
        buf = bytearray(8 << 20)
        while n := f.readinto(buf):
            h.update(memoryview(buf)[:n])
    rows.append(("sha256, one stream (python hashlib)", time.perf_counter() - t0))
    rows.append(
        ("sha256sum (coreutils, one file)", timed(["sha256sum", str(work / "src" / "rank0.engine")])[0])
    )

    dt, hash_, mfile = push(work / "src", work / "store", work)
    rows.append(("trtbuild local push (copy + sha256 + chunks + fsync)", dt))

    from registry import manifest as mf

    m = mf.parse(mfile.read_bytes(), hash_)
    big = next(f for f in m.files if f.chunks)
    threads = sorted({1, 2, 4, 8, cores} | ({16} if cores >= 16 else set()))
    for n in threads:
        code = (
            "import os,sys,time;from registry.hashing import stale_chunks;"
            "fd=os.open(sys.argv[1],os.O_RDONLY);c=sys.argv[2].split(',');t=time.perf_counter();"
            "bad=stale_chunks(fd,int(sys.argv[3]),c);print(time.perf_counter()-t);assert not bad"
        )
        cpus = f"0-{n - 1}"
        argv = ["taskset", "-c", cpus, "python3", "-c", code, str(work / "src" / "rank0.engine")]
        _, out = timed([*argv, ",".join(big.chunks), str(big.size)])
        rows.append((f"chunk verification only, {n} cores (taskset)", float(out)))
    for n in threads:
        dest = work / f"pull-{n}"
        cpus = f"0-{n - 1}"
        wall, out = timed(
            ["taskset", "-c", cpus, "python3", "-c", PULL, str(work / "store"), str(mfile), hash_, str(dest)]
        )
        rows.append((f"trtbuild local pull, {n} cores (taskset)", float(out)))
        shutil.rmtree(dest)
    rows.append(("cp -r", timed(["cp", "-r", str(work / "src"), str(work / "cp")])[0]))
    rows.append(
        ("cp -r + sha256sum", rows[-1][1] + timed(["sha256sum", str(work / "cp" / "rank0.engine")])[0])
    )
    shutil.rmtree(work / "cp")
    os.remove(work / "src" / "rank0.engine")

    small = work / "small"
    rng = random.Random(1)
    for i in range(10_000):
        d = small / f"d{i % 100:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}.bin").write_bytes(rng.randbytes(rng.randint(0, 4096)))
    dt, shash, smfile = push(small, work / "store", work)
    rows.append(("10,000 small files: trtbuild local push", dt))
    _, out = timed(["python3", "-c", PULL, str(work / "store"), str(smfile), shash, str(work / "small-pull")])
    rows.append(("10,000 small files: trtbuild local pull", float(out)))
    rows.append(("10,000 small files: cp -r", timed(["cp", "-r", str(small), str(work / "small-cp")])[0]))

    print(f"\n| {args.gib} GiB single file unless said | seconds | GB/s |\n|---|---|---|")
    for label, secs in rows:
        rate = f"{size / secs / 1e9:.2f}" if not label.startswith("10,000") else "-"
        print(f"| {label} | {secs:.2f} | {rate} |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
