#!/usr/bin/env python3
"""Which S3 data path is fastest here? One object, same server, interleaved runs (a script, not a test).

Compares, for a download of one large object into a file and an upload of one large file:
  boto3   - boto3's own threaded transfer manager (upload_file/download_file, 64 MiB parts, 10 threads)
  crt     - the AWS Common Runtime S3 client (awscrt) as the registry drives it (registry.store.s3_crt)
  obstore - Rust object_store bindings (obstore): parallel ranged GETs / a multipart writer
(The registry's former hand-written boto3 multipart code was measured by this script as of commit ae3a495;
results in RESULTS.md.) Each download is followed by the same verification (sha256
of every 64 MiB chunk, on all cores, read back from the page cache): "bytes on disk and verified".
Needs the env of tests/services/ceph_rgw.sh.
Run:  python bench/registry/s3_clients.py [--size-mib 2048] [--reps 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import resource
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
MIB = 1 << 20
CHUNK = 64 * MIB


def cpu() -> float:
    """CPU seconds (user + system) of this process, all threads."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def verify_chunks(path: Path, size: int) -> list[str]:
    def one(i: int) -> str:
        h = hashlib.sha256()
        with open(path, "rb", buffering=0) as f:
            off, end = i * CHUNK, min((i + 1) * CHUNK, size)
            buf = bytearray(8 * MIB)
            while off < end:
                n = os.preadv(f.fileno(), [memoryview(buf)[: min(len(buf), end - off)]], off)
                h.update(memoryview(buf)[:n])
                off += n
        return h.hexdigest()

    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        return list(pool.map(one, range(-(-size // CHUNK))))


def boto3_manager():  # noqa: ANN201
    import boto3
    from boto3.s3.transfer import TransferConfig

    client = boto3.client("s3", endpoint_url=os.environ["TRTBUILD_TEST_S3_ENDPOINT"])
    cfg = TransferConfig(multipart_chunksize=CHUNK, max_concurrency=10)
    return client, cfg


def boto3_down(bucket: str, key: str, dest: Path, size: int) -> None:
    client, cfg = boto3_manager()
    client.download_file(bucket, key, str(dest), Config=cfg)


def boto3_up(bucket: str, key: str, src: Path, size: int) -> None:
    client, cfg = boto3_manager()
    client.upload_file(str(src), bucket, key, Config=cfg)


def crt_transfer():  # noqa: ANN201
    import boto3

    from registry.store.s3_crt import CrtTransfer

    creds = boto3.session.Session().get_credentials()
    return CrtTransfer("", os.environ["TRTBUILD_TEST_S3_ENDPOINT"], "us-east-1", creds, CHUNK)


def crt_down(bucket: str, key: str, dest: Path, size: int) -> None:
    """A CRT GET delivering the body to Python in order (what a verifying pull would need)."""
    from awscrt.http import HttpHeaders, HttpRequest
    from awscrt.s3 import S3RequestType

    t = crt_transfer()
    fd = os.open(dest, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)

    def on_body(chunk: memoryview, offset: int, **_: object) -> None:
        os.pwrite(fd, chunk, offset)

    try:
        req = HttpRequest("GET", f"/{bucket}/{key}", HttpHeaders([("Host", t.host)]))
        r = t._client.make_request(type=S3RequestType.GET_OBJECT, request=req, on_body=on_body)
        r.finished_future.result()
    finally:
        os.close(fd)


def crt_up(bucket: str, key: str, src: Path, size: int) -> None:
    t = crt_transfer()
    t.bucket = bucket
    t.upload_file(key, str(src), size, lambda: None, lambda n: None)


def obstore_store(bucket: str):  # noqa: ANN201
    from obstore.store import S3Store as ObS3

    return ObS3(
        bucket,
        endpoint=os.environ["TRTBUILD_TEST_S3_ENDPOINT"],
        region="us-east-1",
        access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        virtual_hosted_style_request=False,
        client_options={"allow_http": True},
    )


def obstore_down(bucket: str, key: str, dest: Path, size: int) -> None:
    import obstore

    store = obstore_store(bucket)
    fd = os.open(dest, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)

    def part(i: int) -> None:
        off, end = i * CHUNK, min((i + 1) * CHUNK, size)
        data = obstore.get_range(store, key, start=off, end=end)
        view = memoryview(data)
        while view:
            n = os.pwrite(fd, view, off)
            view, off = view[n:], off + n

    try:
        with ThreadPoolExecutor(10) as pool:
            list(pool.map(part, range(-(-size // CHUNK))))
    finally:
        os.close(fd)


def obstore_up(bucket: str, key: str, src: Path, size: int) -> None:
    import obstore

    store = obstore_store(bucket)
    with open(src, "rb") as f:
        obstore.put(store, key, f, chunk_size=CHUNK, max_concurrency=10)


CLIENTS = {"boto3": (boto3_up, boto3_down), "crt": (crt_up, crt_down), "obstore": (obstore_up, obstore_down)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=2048)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--work", type=Path, default=Path("/tmp/trtbuild-s3-clients"))
    ap.add_argument("--clients", default="boto3,crt,obstore")
    args = ap.parse_args()
    import boto3

    bucket = os.environ["TRTBUILD_TEST_S3_BUCKET"]
    s3 = boto3.client("s3", endpoint_url=os.environ["TRTBUILD_TEST_S3_ENDPOINT"])
    args.work.mkdir(parents=True, exist_ok=True)
    size = args.size_mib * MIB
    src = args.work / "src.bin"
    if not src.exists() or src.stat().st_size != size:
        with open(src, "wb") as f:
            for _ in range(size // (64 * MIB)):
                f.write(random.randbytes(64 * MIB))
    want = verify_chunks(src, size)
    prefix = f"bench-clients-{uuid.uuid4().hex[:8]}"
    clients = args.clients.split(",")
    times: dict[str, dict[str, list[float]]] = {
        c: {"up": [], "down": [], "cpu_up": [], "cpu_down": []} for c in clients
    }
    try:
        for rep in range(args.reps):
            order = clients[rep % len(clients) :] + clients[: rep % len(clients)]
            for c in order:
                up, down = CLIENTS[c]
                h = hashlib.sha256(f"{c}-{rep}".encode()).hexdigest()
                key = f"{prefix}/blobs/sha256/{h[:2]}/{h}"
                t0, c0 = time.perf_counter(), cpu()
                up(bucket, key, src, size)
                times[c]["up"].append(time.perf_counter() - t0)
                times[c]["cpu_up"].append(cpu() - c0)
                dest = args.work / f"dest-{c}"
                t0, c0 = time.perf_counter(), cpu()
                down(bucket, key, dest, size)
                got = verify_chunks(dest, size)
                times[c]["down"].append(time.perf_counter() - t0)
                times[c]["cpu_down"].append(cpu() - c0)
                assert got == want, f"{c}: downloaded bytes differ"
                dest.unlink()
                s3.delete_object(Bucket=bucket, Key=key)
    finally:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
            for o in page.get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=o["Key"])
    print(f"{args.size_mib} MiB, {args.reps} interleaved reps; load average {os.getloadavg()}\n")
    print("| client | upload s (median, min-max) | client CPU s | download+verify s | client CPU s |")
    print("|---|---|---|---|---|")
    for c in clients:
        t = times[c]
        u, d = t["up"], t["down"]
        cu, cd = statistics.median(t["cpu_up"]), statistics.median(t["cpu_down"])
        print(
            f"| {c} | {statistics.median(u):.2f} ({min(u):.2f}-{max(u):.2f}) | {cu:.2f} | "
            f"{statistics.median(d):.2f} ({min(d):.2f}-{max(d):.2f}) | {cd:.2f} |"
        )


if __name__ == "__main__":
    main()
