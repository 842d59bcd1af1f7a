#!/usr/bin/env python3
"""Registry benchmarks (a script, not a test): prints tables with ratios (medians of interleaved runs).

Needs the S3 server and PostgreSQL of tests/services/ (export what their start scripts print):
  TRTBUILD_TEST_S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, TRTBUILD_TEST_S3_BUCKET, TRTBUILD_TEST_PG_URL
Run:  python bench/registry/bench.py [--work /tmp/trtbuild-bench] [--reps 3] [--skip-s3] [--skip-local] [--skip-resolve]

Measures: push/pull of a 2 GiB single-file engine and of an 8 x 256 MiB engine against the same S3 server,
trtbuild (default staged push, and hash-first) vs `rclone copy` (AWS_CA_BUNDLE unset, --ignore-times) vs
`aws s3 cp --recursive`; local-store push/pull vs `cp -r` and vs `sha256sum` + `cp -r`; bytes uploaded by a re-push after changing only config.json; resolve latency p50/p99 with
100,000 artifacts in SQLite and in PostgreSQL. Page cache is warm for every tool alike (files were just written).
"""

from __future__ import annotations

import argparse
import json
import os
import random
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


def run(argv: list[str], env: dict[str, str] | None = None) -> float:
    """Seconds one command takes. `python -m trtbuild` runs this checkout's code (cwd and PYTHONPATH = REPO)."""
    env = {**os.environ, **(env or {})}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - t0


def make_data(work: Path) -> dict[str, Path]:
    sets = {
        "single 2 GiB": (work / "single", {"rank0.engine": 2048 * MIB}),
        "8 x 256 MiB": (work / "multi", {f"rank{i}.engine": 256 * MIB for i in range(8)}),
    }
    out = {}
    for label, (root, files) in sets.items():
        root.mkdir(parents=True, exist_ok=True)
        (root / "config.json").write_text(json.dumps({"label": label}))
        for name, size in files.items():
            p = root / name
            if not p.exists() or p.stat().st_size != size:
                with open(p, "wb") as f:
                    for _ in range(size // (64 * MIB)):
                        f.write(random.randbytes(64 * MIB))
        out[label] = root
    return out


def total_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def trtbuild_push_pull(src: Path, work: Path, tag: str, store_url: str, **extra: str) -> tuple[float, float]:
    """Time `trtbuild push` then `trtbuild pull` with a fresh SQLite catalog (hash cache off: hashing counts)."""
    env = {
        "TRTBUILD_DB_URL": f"sqlite:///{work / (tag + '.db')}",
        "TRTBUILD_STORE_URL": store_url,
        "TRTBUILD_HOME": str(work / "home"),
        "TRTBUILD_HASH_CACHE": "0",
        **extra,
    }
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


def bench_s3(data: dict[str, Path], work: Path, reps: int) -> list[list[str]]:
    endpoint = os.environ["TRTBUILD_TEST_S3_ENDPOINT"]
    bucket = os.environ["TRTBUILD_TEST_S3_BUCKET"]
    rclone_env = {
        "RCLONE_CONFIG_B_TYPE": "s3",
        "RCLONE_CONFIG_B_PROVIDER": "Ceph",
        "RCLONE_CONFIG_B_ENDPOINT": endpoint,
        "RCLONE_CONFIG_B_ACCESS_KEY_ID": os.environ["AWS_ACCESS_KEY_ID"],
        "RCLONE_CONFIG_B_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"],
        "AWS_CA_BUNDLE": "",
    }
    rclone_flags = [
        "--ignore-times",
        "--transfers",
        "8",
        "--s3-upload-concurrency",
        "8",
        "--s3-chunk-size",
        "32M",
        "--multi-thread-streams",
        "8",
        "--checkers",
        "16",
    ]
    aws = ["aws", "--endpoint-url", endpoint, "--only-show-errors", "s3", "cp", "--recursive"]
    peers = ("rclone copy", "aws s3 cp")

    def one(tool: str, src: Path) -> tuple[float, float]:
        prefix = f"bench-{uuid.uuid4().hex[:8]}"
        try:
            if tool == "trtbuild":
                return trtbuild_push_pull(src, work, prefix, f"s3://{bucket}/{prefix}?endpoint={endpoint}")
            if tool.startswith("trtbuild (hash first"):
                return trtbuild_push_pull(
                    src,
                    work,
                    prefix,
                    f"s3://{bucket}/{prefix}?endpoint={endpoint}",
                    TRTBUILD_S3_STAGED_PUSH="0",
                )
            dest = work / "pulled-peer"
            if tool == "rclone copy":
                push = run(["rclone", "copy", *rclone_flags, str(src), f"b:{bucket}/{prefix}"], rclone_env)
                pull = run(["rclone", "copy", *rclone_flags, f"b:{bucket}/{prefix}", str(dest)], rclone_env)
            else:
                push = run([*aws, str(src), f"s3://{bucket}/{prefix}/"], {"AWS_CA_BUNDLE": ""})
                pull = run([*aws, f"s3://{bucket}/{prefix}/", str(dest)], {"AWS_CA_BUNDLE": ""})
            shutil.rmtree(dest)
            return push, pull
        finally:
            s3_delete_prefix(prefix)

    tools = ("trtbuild", "trtbuild (hash first: TRTBUILD_S3_STAGED_PUSH=0)", *peers)
    rows = []
    for label, src in data.items():
        size = total_bytes(src)
        samples: dict[str, dict[str, list[float]]] = {t: {"push": [], "pull": []} for t in tools}
        for rep in range(reps):  # interleaved, rotating the order, so that load bursts hit every tool alike
            order = tools[rep % len(tools) :] + tools[: rep % len(tools)]
            for tool in order:
                push, pull = one(tool, src)
                samples[tool]["push"].append(push)
                samples[tool]["pull"].append(pull)
        for op in ("push", "pull"):
            med = {t: statistics.median(samples[t][op]) for t in tools}
            best_peer = min(med[p] for p in peers)
            for tool in tools:
                t = med[tool]
                spread = f"{min(samples[tool][op]):.2f}-{max(samples[tool][op]):.2f}"
                rows.append(
                    [label, op, tool, f"{t:.2f}", spread, f"{size / t / 1e6:.0f}", f"{best_peer / t:.2f}"]
                )
    return rows


def bench_local(data: dict[str, Path], work: Path, reps: int) -> list[list[str]]:
    """trtbuild vs `cp -r` (no verification) and vs `sha256sum` + `cp -r` (the peer that also hashes every byte,
    one after the other). Medians over ``reps`` interleaved runs; ratios: peer time / this time."""
    rows = []
    variants = (("trtbuild (fsync, default)", "1"), ("trtbuild (TRTBUILD_LOCAL_FSYNC=0)", "0"))
    for label, src in data.items():
        size = total_bytes(src)
        files = sorted(str(p) for p in src.rglob("*") if p.is_file())
        samples: dict[str, list[tuple[float, float]]] = {}
        for _ in range(reps):
            for variant, fsync in variants:
                tag = f"local-{uuid.uuid4().hex[:8]}"
                samples.setdefault(variant, []).append(
                    trtbuild_push_pull(
                        src, work, tag, f"file://{work / ('store-' + tag)}", TRTBUILD_LOCAL_FSYNC=fsync
                    )
                )
                shutil.rmtree(work / ("store-" + tag))
            a, b = work / "cp-push", work / "cp-pull"
            cp = (run(["cp", "-r", str(src), str(a)]), run(["cp", "-r", str(a), str(b)]))
            shutil.rmtree(a)
            shutil.rmtree(b)
            sc_push = run(["sha256sum", *files]) + run(["cp", "-r", str(src), str(a)])
            sc_pull = run(["cp", "-r", str(a), str(b)]) + run(
                ["sha256sum", *(str(b / Path(f).relative_to(src)) for f in files)]
            )
            shutil.rmtree(a)
            shutil.rmtree(b)
            samples.setdefault("cp -r (no fsync, no hash)", []).append(cp)
            samples.setdefault("sha256sum + cp -r (no fsync)", []).append((sc_push, sc_pull))
        for i, op in enumerate(("push", "pull")):
            med = {k: statistics.median(v[i] for v in vs) for k, vs in samples.items()}
            cp_t, sc_t = med["cp -r (no fsync, no hash)"], med["sha256sum + cp -r (no fsync)"]
            for tool, t in med.items():
                rows.append(
                    [
                        label,
                        op,
                        tool,
                        f"{t:.2f}",
                        f"{size / t / 1e6:.0f}",
                        f"{cp_t / t:.2f}",
                        f"{sc_t / t:.2f}",
                    ]
                )
    return rows


def bench_repush(data: dict[str, Path], work: Path) -> list[list[str]]:
    from registry.api import EngineMetadata, Registry

    rows = []
    endpoint, bucket = os.environ["TRTBUILD_TEST_S3_ENDPOINT"], os.environ["TRTBUILD_TEST_S3_BUCKET"]
    src = data["8 x 256 MiB"]
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

        # What autovacuum does after a bulk insert (PostgreSQL >= 13 vacuums insert-only tables too): statistics,
        # and the visibility map that lets the covering indexes answer without visiting the table.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/trtbuild-bench"))
    ap.add_argument("--skip-s3", action="store_true")
    ap.add_argument("--skip-local", action="store_true")
    ap.add_argument("--skip-resolve", action="store_true")
    ap.add_argument(
        "--reps", type=int, default=3, help="interleaved runs per transfer measurement (median kept)"
    )
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    data = make_data(args.work)
    try:
        if not args.skip_s3:
            print(
                "## S3 (Ceph RGW on 127.0.0.1), seconds and MB/s; ratio = best peer time / this time (>= 0.95 is the target)\n"
            )
            print(
                md_table(
                    ["data", "op", "tool", "median s", "min-max s", "MB/s", "ratio vs best peer"],
                    bench_s3(data, args.work, args.reps),
                ),
                flush=True,
            )
            print("\n## Re-push after changing only config.json (S3, 8 x 256 MiB)\n")
            print(
                md_table(["push", "bytes uploaded", "bytes reused", "s"], bench_repush(data, args.work)),
                flush=True,
            )
        if not args.skip_local:
            print("\n## Local store vs cp -r and vs sha256sum + cp -r; ratio = peer time / this time\n")
            print(
                md_table(
                    ["data", "op", "tool", "s", "MB/s", "ratio vs cp -r", "ratio vs sha256sum + cp -r"],
                    bench_local(data, args.work, args.reps),
                ),
                flush=True,
            )
        if not args.skip_resolve:
            print("\n## Resolve latency (ms), 100,000 artifacts, 1,000 names; target p99 < 5 ms\n")
            print(
                md_table(
                    ["catalog", "artifacts", "per name", "p50 ms", "p99 ms", "5 ms / p99 (>= 1 meets)"],
                    bench_resolve(args.work),
                ),
                flush=True,
            )
    finally:
        shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
