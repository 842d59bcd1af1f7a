#!/usr/bin/env python3
"""Registry benchmarks (a script, not a test): "how long until the artifact is on local disk and verified?"

Side by side in one run, same server and data, interleaved reps in rotating order (medians; ratios matter):
  S3 (the test Ceph RGW): trtbuild push/pull vs `aws s3 cp --recursive` and `rclone copy` plain, and the same
  peers with `sha256sum` (push: hash then upload; pull: download then hash, one sha256sum per file in parallel
  on all cores, as a careful user scripts it);
  local store: trtbuild push/pull vs `cp -r` and vs `sha256sum` + `cp -r` (same parallel sha256sum);
  data: one large file, a TP-shaped set (4 rank files + small files), 10,000 small files;
  plus bytes uploaded by a re-push after changing only config.json, and resolve latency at 100,000 artifacts.
Each tool's client CPU (user + system of its processes) is reported beside its wall time: on a shared machine
it shows where the time goes. Page cache is warm for every tool alike (files were just written).

Needs the services of tests/services/ (export what their start scripts print): TRTBUILD_TEST_S3_ENDPOINT,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, TRTBUILD_TEST_S3_BUCKET, TRTBUILD_TEST_PG_URL.
Run:  python bench/registry/bench.py [--work DIR] [--reps 3] [--large-mib 1024]
      [--only s3,local,repush,resolve] [--sets large,tp4,small]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
MIB = 1 << 20
CORES = os.cpu_count() or 1


def _child_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one command. `python -m trtbuild` runs this checkout's code.
    AWS_CA_BUNDLE is unset (plain-http test server; botocore 1.44 refuses an empty one)."""
    env = {k: v for k, v in {**os.environ, **(env or {})}.items() if k != "AWS_CA_BUNDLE"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    c0, t0 = _child_cpu(), time.perf_counter()
    subprocess.run(argv, check=True, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - t0, _child_cpu() - c0


def plus(*timings: tuple[float, float]) -> tuple[float, float]:
    return sum(t[0] for t in timings), sum(t[1] for t in timings)


def sha256sum(root: Path) -> tuple[float, float]:
    """`sha256sum` of every file under root, one process per file (32 files per process for small ones),
    CORES at a time: what a careful user scripts (`find | xargs -P`)."""
    return run(["sh", "-c", f"find {root} -type f -print0 | xargs -0 -n 32 -P {CORES} sha256sum > /dev/null"])


def _write_random(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        block = random.randbytes(min(size, 64 * MIB) or 1)
        left, i = size, 0
        while left > 0:
            piece = i.to_bytes(8, "little") + block[8 : min(len(block), left)]
            f.write(piece[:left])
            left -= len(piece[:left])
            i += 1


def make_data(work: Path, large_mib: int) -> dict[str, Path]:
    out = {}
    large = work / "large"
    large.mkdir(parents=True, exist_ok=True)
    (large / "config.json").write_text(json.dumps({"set": "large"}))
    if not (large / "rank0.engine").exists():
        _write_random(large / "rank0.engine", large_mib * MIB)
    out[f"one {large_mib} MiB file"] = large
    tp = work / "tp4"
    tp.mkdir(exist_ok=True)
    for i in range(4):
        if not (tp / f"rank{i}.engine").exists():
            _write_random(tp / f"rank{i}.engine", large_mib // 4 * MIB)
    (tp / "config.json").write_text(json.dumps({"set": "tp4"}))
    tok = tp / "tokenizer"
    tok.mkdir(exist_ok=True)
    for name, size in (("tokenizer.json", 9 * MIB), ("tokenizer_config.json", 50_000), ("special.json", 500)):
        if not (tok / name).exists():
            _write_random(tok / name, size)
    out[f"TP4: 4 x {large_mib // 4} MiB + 4 small"] = tp
    small = work / "small"
    if not small.exists():
        rng = random.Random(1)
        for i in range(10_000):
            d = small / f"d{i % 100:02d}"
            d.mkdir(parents=True, exist_ok=True)
            (d / f"f{i}.bin").write_bytes(rng.randbytes(rng.randint(0, 4096)))
    out["10,000 files of 0-4 KiB"] = small
    return out


def total_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def trtbuild_env(work: Path, tag: str, store_url: str) -> dict[str, str]:
    return {
        "TRTBUILD_DB_URL": f"sqlite:///{work / (tag + '.db')}",
        "TRTBUILD_STORE_URL": store_url,
        "TRTBUILD_HOME": str(work / "home"),
        "TRTBUILD_HASH_CACHE": "0",  # hashing counts
    }


def trtbuild_push_pull(src: Path, work: Path, tag: str, store_url: str) -> tuple[tuple, tuple]:
    """`trtbuild push` then `trtbuild pull` with a fresh SQLite catalog; each (wall s, CPU s)."""
    env = trtbuild_env(work, tag, store_url)
    push = run(
        [sys.executable, "-m", "trtbuild", "push", str(src), "--name", "bench", "--tag", "x", "--json"], env
    )
    dest = work / f"pulled-{tag}"
    pull = run([sys.executable, "-m", "trtbuild", "pull", "bench:x", str(dest), "--json"], env)
    shutil.rmtree(dest)
    return push, pull


def s3_delete_prefix(prefix: str) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=os.environ["TRTBUILD_TEST_S3_ENDPOINT"])
    bucket = os.environ["TRTBUILD_TEST_S3_BUCKET"]
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})


Sample = dict[str, dict[str, list[tuple[float, float]]]]  # tool -> op -> [(wall, cpu)]


def ratio_rows(
    label: str, size: int, samples: Sample, plain: tuple[str, ...], verified: tuple[str, ...]
) -> list:
    """Rows per op and tool: median wall, spread, MB/s, client CPU, and ratios (peer time / this time)."""
    rows = []
    for op in ("push", "pull"):
        med = {t: statistics.median(w for w, _ in samples[t][op]) for t in samples}
        best_plain = min(med[p] for p in plain)
        best_verified = min(med[p] for p in verified)
        for tool in samples:
            walls = [w for w, _ in samples[tool][op]]
            cpu = statistics.median(c for _, c in samples[tool][op])
            t = med[tool]
            rows.append(
                [
                    label,
                    op,
                    tool,
                    f"{t:.2f}",
                    f"{min(walls):.2f}-{max(walls):.2f}",
                    f"{size / t / 1e6:.0f}",
                    f"{cpu:.2f}",
                    f"{best_plain / t:.2f}",
                    f"{best_verified / t:.2f}",
                ]
            )
    return rows


def bench_s3(data: dict[str, Path], work: Path, reps: int) -> list[list[str]]:
    endpoint = os.environ["TRTBUILD_TEST_S3_ENDPOINT"]
    bucket = os.environ["TRTBUILD_TEST_S3_BUCKET"]
    rclone_env = {
        "RCLONE_CONFIG_B_TYPE": "s3",
        "RCLONE_CONFIG_B_PROVIDER": "Ceph",
        "RCLONE_CONFIG_B_ENDPOINT": endpoint,
        "RCLONE_CONFIG_B_ACCESS_KEY_ID": os.environ["AWS_ACCESS_KEY_ID"],
        "RCLONE_CONFIG_B_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"],
    }
    rclone_flags = [
        "--ignore-times",
        "--transfers",
        "8",
        "--s3-upload-concurrency",
        "8",
        "--s3-chunk-size",
        "32M",
    ]
    rclone_flags += ["--multi-thread-streams", "8", "--checkers", "16"]
    aws = ["aws", "--endpoint-url", endpoint, "--only-show-errors", "s3", "cp", "--recursive"]

    def one(tool: str, src: Path) -> dict[str, tuple[tuple, tuple]]:
        """Timings of a tool's push and pull; a peer run also yields its '+ sha256sum' variant."""
        prefix = f"bench-{uuid.uuid4().hex[:8]}"
        try:
            if tool == "trtbuild":
                return {
                    tool: trtbuild_push_pull(src, work, prefix, f"s3://{bucket}/{prefix}?endpoint={endpoint}")
                }
            dest = work / "pulled-peer"
            if tool == "rclone copy":
                push = run(["rclone", "copy", *rclone_flags, str(src), f"b:{bucket}/{prefix}"], rclone_env)
                pull = run(["rclone", "copy", *rclone_flags, f"b:{bucket}/{prefix}", str(dest)], rclone_env)
            else:
                push = run([*aws, str(src), f"s3://{bucket}/{prefix}/"])
                pull = run([*aws, f"s3://{bucket}/{prefix}/", str(dest)])
            sums = sha256sum(src), sha256sum(dest)
            shutil.rmtree(dest)
            return {tool: (push, pull), f"{tool} + sha256sum": (plus(sums[0], push), plus(pull, sums[1]))}
        finally:
            s3_delete_prefix(prefix)

    tools = ("trtbuild", "rclone copy", "aws s3 cp")
    rows = []
    for label, src in data.items():
        samples: Sample = {}
        for rep in range(reps):  # interleaved, rotating the order, so that load bursts hit every tool alike
            for tool in tools[rep % 3 :] + tools[: rep % 3]:
                for name, (push, pull) in one(tool, src).items():
                    samples.setdefault(name, {"push": [], "pull": []})
                    samples[name]["push"].append(push)
                    samples[name]["pull"].append(pull)
        order = ("trtbuild", "rclone copy", "aws s3 cp", "rclone copy + sha256sum", "aws s3 cp + sha256sum")
        rows += ratio_rows(
            label,
            total_bytes(src),
            {t: samples[t] for t in order},
            ("rclone copy", "aws s3 cp"),
            ("rclone copy + sha256sum", "aws s3 cp + sha256sum"),
        )
    return rows


def bench_local(data: dict[str, Path], work: Path, reps: int) -> list[list[str]]:
    """trtbuild (local store, fsync on push as by default) vs `cp -r` (no verification) and vs
    `sha256sum` + `cp -r` (the peer that also hashes every byte)."""
    rows = []
    for label, src in data.items():
        samples: Sample = {k: {"push": [], "pull": []} for k in ("trtbuild", "cp -r", "sha256sum + cp -r")}
        for _ in range(reps):
            tag = f"local-{uuid.uuid4().hex[:8]}"
            push, pull = trtbuild_push_pull(src, work, tag, f"file://{work / ('store-' + tag)}")
            shutil.rmtree(work / ("store-" + tag))
            samples["trtbuild"]["push"].append(push)
            samples["trtbuild"]["pull"].append(pull)
            a, b = work / "cp-push", work / "cp-pull"
            cp_push, cp_pull = run(["cp", "-r", str(src), str(a)]), run(["cp", "-r", str(a), str(b)])
            sums = sha256sum(src), sha256sum(b)
            shutil.rmtree(a)
            shutil.rmtree(b)
            samples["cp -r"]["push"].append(cp_push)
            samples["cp -r"]["pull"].append(cp_pull)
            samples["sha256sum + cp -r"]["push"].append(plus(sums[0], cp_push))
            samples["sha256sum + cp -r"]["pull"].append(plus(cp_pull, sums[1]))
        rows += ratio_rows(label, total_bytes(src), samples, ("cp -r",), ("sha256sum + cp -r",))
    return rows


def bench_repush(data: dict[str, Path], work: Path) -> list[list[str]]:
    from registry.api import EngineMetadata, Registry

    rows = []
    endpoint, bucket = os.environ["TRTBUILD_TEST_S3_ENDPOINT"], os.environ["TRTBUILD_TEST_S3_BUCKET"]
    src = next(p for label, p in data.items() if label.startswith("TP4"))
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    reg = Registry.open(
        f"sqlite:///{work / (prefix + '.db')}",
        f"s3://{bucket}/{prefix}?endpoint={endpoint}",
        hash_cache=work / "home-repush" / "hashcache.db",  # hash cache on
    )
    first = reg.push(src, name="re", metadata=EngineMetadata()).pushed
    (src / "config.json").write_text(json.dumps({"changed": time.time()}))
    t0 = time.perf_counter()
    second = reg.push(src, name="re", metadata=EngineMetadata()).pushed
    dt = time.perf_counter() - t0
    assert first is not None and second is not None
    rows.append(["first push", str(first.uploaded_bytes), str(first.reused_bytes), "-"])
    rows.append(
        ["re-push, config.json changed", str(second.uploaded_bytes), str(second.reused_bytes), f"{dt:.2f}"]
    )
    s3_delete_prefix(prefix)
    return rows


def bench_resolve(work: Path, n: int = 100_000, names: int = 1000, queries: int = 2000) -> list[list[str]]:
    from registry.api import Registry
    from registry.catalog.db import utcnow
    from registry.catalog.models import ArtifactName, ArtifactRow
    from registry.resolve import HostFacts

    rows = []
    urls = {"SQLite": f"sqlite:///{work / 'resolve.db'}"}
    if os.environ.get("TRTBUILD_TEST_PG_URL"):
        urls["PostgreSQL"] = os.environ["TRTBUILD_TEST_PG_URL"]
    archs, versions = ["sm90", "sm80", "sm100"], ["0.21.0", "1.0.0", "1.1.0"]
    host = HostFacts("sm90", "570.124.06", 8, 79.6, "1.0.0")
    for label, url in urls.items():
        if label == "SQLite":
            Path(work / "resolve.db").unlink(missing_ok=True)
        reg = Registry.open(url, f"file://{work / 'resolve-store'}")
        from sqlalchemy import delete

        with reg.catalog.engine.begin() as conn:
            conn.execute(delete(ArtifactName))
            conn.execute(delete(ArtifactRow))
            rng = random.Random(1)
            batch_a, batch_n = [], []
            for i in range(n):
                h = f"sha256:{i:064x}"
                meta = {
                    "gpu_arch": rng.choice(archs),
                    "trtllm_version": rng.choice(versions),
                    "tp": rng.choice([1, 2, 8]),
                    "pp": 1,
                    "cuda_version": "12.9",
                }
                name = f"model-{i % names}"
                now = utcnow()
                batch_a.append(
                    {
                        "hash": h,
                        "kind": "engine",
                        "name": name,
                        "size": rng.randint(1, 60) << 30,
                        "file_count": 2,
                        "created_at": now,
                        "provenance": {},
                        "manifest": {
                            "schema": "trtbuild.artifact.v1",
                            "kind": "engine",
                            "files": [],
                            "metadata": meta,
                        },
                        **meta,
                    }
                )
                batch_n.append({"name": name, "hash": h, "created_at": now})
                if len(batch_a) == 5000:
                    conn.execute(ArtifactRow.__table__.insert(), batch_a)
                    conn.execute(ArtifactName.__table__.insert(), batch_n)
                    batch_a, batch_n = [], []
        from sqlalchemy import text

        # What autovacuum does after a bulk insert (PostgreSQL >= 13 vacuums insert-only tables too):
        # statistics, and the visibility map that lets the covering indexes answer without visiting the table.
        if label == "PostgreSQL":
            with reg.catalog.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))
        else:
            with reg.catalog.engine.begin() as conn:
                conn.execute(text("ANALYZE"))
        lat = []
        rng = random.Random(2)
        for _ in range(200):  # warm-up: connection pool, statement caches, prepared statements
            reg.resolve(f"model-{rng.randrange(names)}", host)
        for _ in range(queries):
            name = f"model-{rng.randrange(names)}"
            t0 = time.perf_counter()
            reg.resolve(name, host)
            lat.append((time.perf_counter() - t0) * 1000)
        lat.sort()
        p50, p99 = statistics.median(lat), lat[int(len(lat) * 0.99) - 1]
        rows.append([label, str(n), str(n // names), f"{p50:.2f}", f"{p99:.2f}", f"{5.0 / p99:.2f}"])
        with reg.catalog.engine.begin() as conn:
            conn.execute(delete(ArtifactName))
            conn.execute(delete(ArtifactRow))
        reg.close()
    return rows


def md_table(headers: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def describe_machine() -> str:
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?"
    )
    mem = int(next(ln.split()[1] for ln in open("/proc/meminfo") if ln.startswith("MemTotal"))) // (1 << 20)
    fs = (
        subprocess.run(["df", "-T", "/tmp"], capture_output=True, text=True)
        .stdout.splitlines()[-1]
        .split()[1]
    )
    return (
        f"{CORES} cores ({cpu}), {mem} GiB RAM, /tmp on {fs}, Python {sys.version.split()[0]}; "
        f"load average at start {os.getloadavg()[0]:.1f}"
    )


HEADERS = ["data", "op", "tool", "median s", "min-max s", "MB/s", "client CPU s"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/trtbuild-bench"))
    ap.add_argument("--reps", type=int, default=3, help="interleaved runs per measurement (median kept)")
    ap.add_argument("--large-mib", type=int, default=1024)
    ap.add_argument("--only", default="s3,local,repush,resolve")
    ap.add_argument("--sets", default="large,tp4,small", help="data sets (for a partial re-run)")
    args = ap.parse_args()
    only = set(args.only.split(","))
    args.work.mkdir(parents=True, exist_ok=True)
    data = make_data(args.work, args.large_mib)
    keys = {"large": "one ", "tp4": "TP4", "small": "10,000"}
    data = {k: v for k, v in data.items() if any(k.startswith(keys[s]) for s in args.sets.split(","))}
    print(f"Machine: {describe_machine()}\n", flush=True)
    try:
        if "s3" in only:
            print("## S3 (Ceph RGW on 127.0.0.1); ratio = peer time / trtbuild-or-this time\n")
            headers = HEADERS + ["ratio vs best plain peer", "ratio vs best verified peer"]
            print(md_table(headers, bench_s3(data, args.work, args.reps)), flush=True)
        if "local" in only:
            print("\n## Local store vs cp -r and vs sha256sum + cp -r; ratio = peer time / this time\n")
            headers = HEADERS + ["ratio vs cp -r", "ratio vs sha256sum + cp -r"]
            print(md_table(headers, bench_local(data, args.work, args.reps)), flush=True)
        if "repush" in only:
            print("\n## Re-push after changing only config.json (S3, TP4 set)\n")
            print(
                md_table(["push", "bytes uploaded", "bytes reused", "s"], bench_repush(data, args.work)),
                flush=True,
            )
        if "resolve" in only:
            print("\n## Resolve latency (ms), 100,000 artifacts, 1,000 names; target p99 < 5 ms\n")
            print(
                md_table(
                    ["catalog", "artifacts", "per name", "p50 ms", "p99 ms", "5 ms / p99 (>= 1 meets)"],
                    bench_resolve(args.work),
                ),
                flush=True,
            )
    finally:
        for sub in args.work.iterdir():
            if sub.name not in ("large", "tp4", "small"):
                shutil.rmtree(sub, ignore_errors=True) if sub.is_dir() else sub.unlink()


if __name__ == "__main__":
    main()
