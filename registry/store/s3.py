"""S3Store: any S3 endpoint (AWS S3, MinIO, Ceph RGW) through boto3.

Credentials come only from the standard AWS chain; the endpoint from ``AWS_ENDPOINT_URL`` or
``s3://bucket/prefix?endpoint=http://host:port``.

Push of a file whose digest is not known yet (``ingest``): one read pass. Small files are read, hashed and
PUT create-only. Large files are uploaded with parallel multipart parts to a staging key ``tmp/<uuid>`` while
the reading thread hashes the same buffers; then, only if ``blobs/sha256/<xx>/<hex>`` is absent (HEAD), the
staging object is copied server-side to that key (CopyObject; UploadPartCopy where the server refuses a single
copy, e.g. AWS above 5 GiB) and the staging object is deleted. A killed push leaves only a staging object or
an unfinished multipart upload under ``tmp/``, never a blob; ``clean_staging`` (gc) removes them.
A blob whose digest is already known (hash cache) is HEAD-checked and uploaded directly (``put_blob``).

Downloads are parallel ranged GETs streamed to their offsets with ``pwrite``; the calling thread hashes the
written file in order as parts complete (a read-back from the page cache: the digest is of the bytes on
disk). Tuning: ``TRTBUILD_S3_THREADS`` (default 10), ``TRTBUILD_S3_PART_MIB`` (default 32),
``TRTBUILD_S3_MULTIPART_MIB`` (single PUT below it; default 64), ``TRTBUILD_S3_STAGED_PUSH=0`` (hash every
file first, then upload only the missing blobs: no wasted upload when a large blob already exists, but no
overlap of hashing and upload either).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from registry.errors import IntegrityError, InvalidInput, StoreUnavailable
from registry.hashing import pwrite_all
from registry.store.base import BlobInfo, Progress, Store, blob_key, manifest_key

MIB = 1 << 20
MAX_PARTS = 10_000  # S3's limit on parts per multipart upload
COPY_PART = 1 << 30  # UploadPartCopy part size (S3 allows up to 5 GiB)
STAGING = "tmp/"
RECV_CHUNK = 1 << 20  # download: pwrite pieces (small, reused heap allocations)
HASH_CHUNK = 8 << 20  # download: read-back size for hashing


UNREACHABLE_HINT = (
    "check that the S3 endpoint is up and reachable, then run the command again "
    "(a pull resumes from the files it already verified)"
)


def _env_int(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, default)))
    except ValueError:
        return default


class S3Store(Store):
    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.threads = _env_int("TRTBUILD_S3_THREADS", 10)
        self.part_size = _env_int("TRTBUILD_S3_PART_MIB", 32) * MIB
        self.multipart_threshold = _env_int("TRTBUILD_S3_MULTIPART_MIB", 64) * MIB
        self._client = self._make_client()
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="s3")
        self._if_none_match = True  # cleared when the server refuses the header
        self._unreachable: str | None = None  # set when the endpoint stopped accepting connections
        self._lock = threading.Lock()
        # Part buffers shared by all uploads at once: bounds memory to ~(threads+2) parts, reused.
        self._buffers = _BufferPool(self.threads + 2)
        self.can_ingest = os.environ.get("TRTBUILD_S3_STAGED_PUSH", "1") != "0"

    @classmethod
    def from_url(cls, url: str) -> S3Store:
        parsed = urlparse(url)
        if not parsed.netloc:
            raise InvalidInput(f"store URL {url!r} has no bucket", hint="use s3://bucket/prefix")
        endpoint = (parse_qs(parsed.query).get("endpoint") or [None])[0]
        return cls(parsed.netloc, parsed.path, endpoint)

    def _make_client(self) -> Any:
        import boto3
        from botocore.config import Config

        extra: dict[str, Any] = {}
        if (self.endpoint_url or "").startswith("http://"):
            # Over plain HTTP botocore always signs the payload: the server checks each request body against
            # its SHA-256 in the signature, which subsumes the CRC32 checksum botocore would add on top (an
            # extra pass over every byte on the client's CPU). Over HTTPS the default (CRC32, unsigned
            # payload) stays.
            extra["request_checksum_calculation"] = "when_required"
        cfg = Config(
            max_pool_connections=self.threads * 2 + 4,
            retries={"mode": "standard", "max_attempts": 6},
            connect_timeout=10,
            read_timeout=120,
            tcp_keepalive=True,
            response_checksum_validation="when_required",  # we verify sha256 ourselves
            s3={"addressing_style": "path"} if self.endpoint_url else {},
            **extra,
        )
        session = boto3.session.Session()
        return session.client("s3", endpoint_url=self.endpoint_url, config=cfg)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, fn: Any, **kw: Any) -> Any:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
        )

        if self._unreachable is not None:  # the endpoint refused connections through a full retry cycle:
            raise StoreUnavailable(self._unreachable, hint=UNREACHABLE_HINT)  # fail the other calls at once
        try:
            return fn(Bucket=self.bucket, **kw)
        except NoCredentialsError as exc:
            raise StoreUnavailable(
                f"no AWS credentials for {self.url}",
                hint="set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or an instance role",
            ) from exc
        except ClientError:
            raise
        except BotoCoreError as exc:
            message = f"cannot reach the store {self.url} ({self.endpoint_url or 'AWS'}): {exc}"
            if isinstance(exc, EndpointConnectionError):
                self._unreachable = message
            raise StoreUnavailable(message, hint=UNREACHABLE_HINT) from exc

    def translate_error(self, exc: BaseException) -> StoreUnavailable | None:
        """botocore and urllib3 errors (the endpoint refused, closed or reset a connection mid-transfer)."""
        from botocore.exceptions import BotoCoreError, ClientError
        from urllib3.exceptions import HTTPError

        if not isinstance(exc, BotoCoreError | ClientError | HTTPError):
            return None
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return StoreUnavailable(
            f"the store {self.url} ({self.endpoint_url or 'AWS'}) failed: {first}", hint=UNREACHABLE_HINT
        )

    @staticmethod
    def _code(exc: Exception) -> str:
        return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))

    def _head(self, key: str) -> dict | None:
        from botocore.exceptions import ClientError

        try:
            return self._call(self._client.head_object, Key=self._key(key))
        except ClientError as exc:
            if self._code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise StoreUnavailable(f"HEAD {key} on {self.url} failed: {exc}") from exc

    # -- blobs -------------------------------------------------------------------------------------------
    def has_blob(self, hexdigest: str, size: int) -> bool:
        head = self._head(blob_key(hexdigest))
        return head is not None and int(head["ContentLength"]) == size

    def _put_small(self, key: str, data: bytes) -> bool:
        """Create-only PUT: If-None-Match: * where the server supports it, HEAD-then-PUT otherwise.
        True when this call stored the object, False when it was already there."""
        from botocore.exceptions import ClientError

        if self._if_none_match:
            try:
                self._call(self._client.put_object, Key=self._key(key), Body=data, IfNoneMatch="*")
                return True
            except ClientError as exc:
                code = self._code(exc)
                if code in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                    return False  # already there: create-only and idempotent
                if code not in ("NotImplemented", "501", "InvalidArgument", "400"):
                    raise StoreUnavailable(f"PUT {key} on {self.url} failed: {exc}") from exc
                self._if_none_match = False
        if self._head(key) is not None:
            return False
        try:
            self._call(self._client.put_object, Key=self._key(key), Body=data)
        except ClientError as exc:
            raise StoreUnavailable(f"PUT {key} on {self.url} failed: {exc}") from exc
        return True

    def _part_size(self, size: int) -> int:
        """The configured part size, raised (to whole MiB) where the file would need more than MAX_PARTS."""
        need = -(-size // (MAX_PARTS - 1))
        return max(self.part_size, -(-need // MIB) * MIB)

    # -- push of a file whose digest is not known yet ----------------------------------------------------
    def ingest(self, path: Path, progress: Progress) -> tuple[str, int, bool]:
        """Upload and hash ``path`` in one read; publish it under its digest unless present (create-only)."""
        fd = os.open(path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            if size < self.multipart_threshold:
                data = _read_exact(
                    fd, size
                )  # push() re-stats the file afterwards and refuses one that changed
                hexdigest = hashlib.sha256(data).hexdigest()
                new = self._put_small(blob_key(hexdigest), data)
                progress(len(data))
                return hexdigest, len(data), new
            staging = f"{STAGING}{uuid.uuid4().hex}"
            hexdigest, n = self._upload_hashing(staging, fd, size, progress)
        finally:
            os.close(fd)
        try:
            if self.has_blob(hexdigest, n):
                return hexdigest, n, False
            self._copy(staging, blob_key(hexdigest), n)
            return hexdigest, n, True
        finally:
            try:
                self._call(self._client.delete_object, Key=self._key(staging))
            except Exception:  # noqa: BLE001 - gc's clean_staging removes a leftover staging object
                pass

    def _upload_hashing(self, key: str, fd: int, size: int, progress: Progress) -> tuple[str, int]:
        """Multipart-upload ``fd`` (read sequentially to EOF) to ``key``; the reading thread hashes every part
        it hands to the uploaders, so the digest is of exactly the uploaded bytes. Returns (hex, size).

        Parts are read into a store-wide pool of reusable buffers (threads + 2 of them): memory stays bounded
        over all concurrent uploads and the kernel does not have to fault in fresh pages for every part."""
        part_size = self._part_size(size)
        h = hashlib.sha256()
        futures: list = []
        total = 0

        def part(number: int, buf: bytearray, n: int) -> dict:
            try:
                body = buf if n == len(buf) else bytes(memoryview(buf)[:n])  # last part: exact length
                etag = self._call(
                    self._client.upload_part, Key=full_key, UploadId=upload_id, PartNumber=number, Body=body
                )["ETag"]
                progress(n)
                return {"ETag": etag, "PartNumber": number}
            finally:
                self._buffers.put(buf)

        with self._multipart(key, futures) as (full_key, upload_id):
            while True:
                buf = self._buffers.get(part_size)
                try:
                    n = _readinto_full(fd, buf)
                except BaseException:
                    self._buffers.put(buf)
                    raise
                if n == 0 and futures:
                    self._buffers.put(buf)
                    break
                if len(futures) >= MAX_PARTS:
                    self._buffers.put(buf)
                    raise IntegrityError(f"{key}: the file grew past {MAX_PARTS} parts while it was pushed")
                h.update(memoryview(buf)[:n])  # releases the GIL: uploads of earlier parts go on meanwhile
                total += n
                futures.append(self._pool.submit(part, len(futures) + 1, buf, n))
                if any(f.done() and f.exception() for f in futures):
                    break
                if n < part_size:  # short read: end of file
                    break
            self._complete(full_key, upload_id, futures)
        return h.hexdigest(), total

    def _copy(self, src: str, dst: str, size: int) -> None:
        """Server-side copy ``src`` -> ``dst`` (CopyObject; UploadPartCopy where a single copy is refused)."""
        from botocore.exceptions import ClientError

        source = {"Bucket": self.bucket, "Key": self._key(src)}
        try:
            self._call(self._client.copy_object, Key=self._key(dst), CopySource=source)
        except ClientError as exc:
            if self._code(exc) not in ("InvalidRequest", "EntityTooLarge", "400"):
                raise StoreUnavailable(f"copy {src} -> {dst} on {self.url} failed: {exc}") from exc
            self._copy_multipart(source, dst, size)
        head = self._head(dst)
        if head is None or int(head["ContentLength"]) != size:
            raise IntegrityError(f"server-side copy to {dst} on {self.url} did not produce {size} bytes")

    def _copy_multipart(self, source: dict, dst: str, size: int) -> None:
        step = max(COPY_PART, -(-size // (MAX_PARTS - 1)))
        futures: list = []

        def part(i: int, full_key: str, upload_id: str) -> dict:
            lo = i * step
            hi = min(lo + step, size) - 1
            res = self._call(
                self._client.upload_part_copy,
                Key=full_key,
                UploadId=upload_id,
                PartNumber=i + 1,
                CopySource=source,
                CopySourceRange=f"bytes={lo}-{hi}",
            )
            return {"ETag": res["CopyPartResult"]["ETag"], "PartNumber": i + 1}

        with self._multipart(dst, futures) as (full_key, upload_id):
            futures += [self._pool.submit(part, i, full_key, upload_id) for i in range(-(-size // step))]
            self._complete(full_key, upload_id, futures)

    def put_blob(self, hexdigest: str, path: Path, size: int, progress: Progress) -> None:
        key = blob_key(hexdigest)
        if size < self.multipart_threshold:
            data = Path(path).read_bytes()
            if hashlib.sha256(data).hexdigest() != hexdigest:
                raise IntegrityError(f"{path} changed while it was pushed")
            self._put_small(key, data)
            progress(size)
            return
        self._put_multipart(key, path, size, progress)

    def _put_multipart(self, key: str, path: Path, size: int, progress: Progress) -> None:
        nparts = (size + self.part_size - 1) // self.part_size
        sem = threading.BoundedSemaphore(self.threads)
        futures: list = []
        fd = os.open(path, os.O_RDONLY)

        def part(i: int, full_key: str, upload_id: str) -> dict:
            try:
                off = i * self.part_size
                length = min(self.part_size, size - off)
                data = os.pread(fd, length, off)
                if len(data) != length:
                    raise IntegrityError(f"{path} shrank while it was pushed")
                etag = self._call(
                    self._client.upload_part, Key=full_key, UploadId=upload_id, PartNumber=i + 1, Body=data
                )["ETag"]
                progress(length)
                return {"ETag": etag, "PartNumber": i + 1}
            finally:
                sem.release()

        try:
            with self._multipart(key, futures) as (full_key, upload_id):
                for i in range(nparts):
                    sem.acquire()
                    futures.append(self._pool.submit(part, i, full_key, upload_id))
                    if any(f.done() and f.exception() for f in futures):
                        break
                self._complete(full_key, upload_id, futures)
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _multipart(self, key: str, futures: list) -> Iterator[tuple[str, str]]:
        """A multipart upload to ``key``: yields (full key, upload id). On any error the parts in flight
        (``futures``) are waited for, the upload is aborted (gc aborts what an abort misses) and S3 errors
        become StoreUnavailable."""
        from botocore.exceptions import ClientError

        full_key = self._key(key)
        upload_id = self._call(self._client.create_multipart_upload, Key=full_key)["UploadId"]
        try:
            yield full_key, upload_id
        except BaseException as exc:
            wait(futures)
            try:
                self._call(self._client.abort_multipart_upload, Key=full_key, UploadId=upload_id)
            except Exception:  # noqa: BLE001 - the original error matters; gc aborts leftovers
                pass
            if isinstance(exc, ClientError):
                raise StoreUnavailable(f"multipart upload of {key} to {self.url} failed: {exc}") from exc
            raise

    def _complete(self, full_key: str, upload_id: str, futures: list) -> None:
        """Wait for every part (re-raising the first failure) and complete the upload."""
        wait(futures)
        parts = [f.result() for f in futures]
        self._call(
            self._client.complete_multipart_upload,
            Key=full_key,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},
        )

    def download_blob(self, hexdigest: str, size: int, fd: int, progress: Progress) -> str:
        from botocore.exceptions import ClientError

        key = self._key(blob_key(hexdigest))
        try:
            if size < self.multipart_threshold:
                data = self._call(self._client.get_object, Key=key)["Body"].read()
                pwrite_all(fd, data, 0)
                progress(len(data))
                return hashlib.sha256(data).hexdigest()
            return self._download_ranged(key, size, fd, progress)
        except ClientError as exc:
            if self._code(exc) in ("NoSuchKey", "404"):
                raise IntegrityError(f"blob sha256:{hexdigest} is missing from {self.url}") from exc
            raise StoreUnavailable(f"GET {key} from {self.url} failed: {exc}") from exc

    def _download_ranged(self, key: str, size: int, fd: int, progress: Progress) -> str:
        """Parallel ranged GETs, each streamed to its offset with ``pwrite`` in RECV_CHUNK pieces (no part is
        held in memory); this thread meanwhile hashes the file's bytes in order, reading back each part once
        it is complete (from the page cache), so the digest is of the bytes actually written."""
        part_size = self._part_size(size)
        nparts = (size + part_size - 1) // part_size
        done = _Completion(nparts)

        def part(i: int) -> None:
            try:
                off = i * part_size
                end = min(off + part_size, size)
                body = self._call(self._client.get_object, Key=key, Range=f"bytes={off}-{end - 1}")["Body"]
                pos = off
                while pos < end:
                    chunk = body.read(min(RECV_CHUNK, end - pos))
                    if not chunk:
                        break
                    pwrite_all(fd, chunk, pos)
                    pos += len(chunk)
                    progress(len(chunk))
                if pos != end:
                    raise IntegrityError(f"short read of {key} bytes {off}-{end - 1}: got {pos - off}")
                done.set(i)
            except BaseException as exc:
                done.fail(exc)
                raise

        futures = [self._pool.submit(part, i) for i in range(nparts)]
        try:
            h = hashlib.sha256()
            buf = bytearray(min(HASH_CHUNK, size))
            view = memoryview(buf)
            pos = 0
            for i in range(nparts):
                done.wait(i)
                end = min((i + 1) * part_size, size)
                while pos < end:
                    n = os.preadv(fd, [view[: min(len(buf), end - pos)]], pos)
                    if n <= 0:
                        raise IntegrityError(f"{key}: the partial file ended at {pos} of {size} bytes")
                    h.update(view[:n])
                    pos += n
            return h.hexdigest()
        finally:
            for f in futures:
                f.cancel()
            wait(futures)  # no worker writes to fd after we return
            for f in futures:
                if not f.cancelled() and f.exception() is not None:
                    raise f.exception()  # type: ignore[misc]

    def read_blob(self, hexdigest: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            return self._call(self._client.get_object, Key=self._key(blob_key(hexdigest)))["Body"].read()
        except ClientError as exc:
            if self._code(exc) in ("NoSuchKey", "404"):
                raise IntegrityError(f"blob sha256:{hexdigest} is missing from {self.url}") from exc
            raise StoreUnavailable(f"GET blob sha256:{hexdigest} from {self.url} failed: {exc}") from exc

    # -- manifests ---------------------------------------------------------------------------------------
    def put_manifest(self, hexdigest: str, data: bytes) -> None:
        self._put_small(manifest_key(hexdigest), data)

    def get_manifest(self, hexdigest: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            return self._call(self._client.get_object, Key=self._key(manifest_key(hexdigest)))["Body"].read()
        except ClientError as exc:
            if self._code(exc) in ("NoSuchKey", "404"):
                return None
            raise StoreUnavailable(f"GET manifest {hexdigest} from {self.url} failed: {exc}") from exc

    # -- listing and deletion ----------------------------------------------------------------------------
    def _list(self, sub: str) -> Iterator[dict]:
        paginator = self._client.get_paginator("list_objects_v2")
        for page in self._call(paginator.paginate, Prefix=self._key(sub)):
            yield from page.get("Contents", [])

    @staticmethod
    def _ts(obj: dict) -> float:
        lm = obj.get("LastModified") or datetime.now(UTC)
        return lm.timestamp()

    def list_blobs(self) -> Iterator[BlobInfo]:
        for obj in self._list("blobs/sha256/"):
            yield BlobInfo(obj["Key"].rsplit("/", 1)[-1], int(obj["Size"]), self._ts(obj))

    def list_manifests(self) -> Iterator[BlobInfo]:
        for obj in self._list("manifests/sha256/"):
            name = obj["Key"].rsplit("/", 1)[-1]
            if name.endswith(".json"):
                yield BlobInfo(name[:-5], int(obj["Size"]), self._ts(obj))

    def delete_blob(self, hexdigest: str) -> None:
        self._call(self._client.delete_object, Key=self._key(blob_key(hexdigest)))

    def delete_manifest(self, hexdigest: str) -> None:
        self._call(self._client.delete_object, Key=self._key(manifest_key(hexdigest)))

    def clean_staging(self, older_than: float) -> int:
        """Abort multipart uploads and delete staging objects (of killed pushes) older than ``older_than``."""
        n = 0
        paginator = self._client.get_paginator("list_multipart_uploads")
        for sub in ("blobs/", STAGING):
            for page in self._call(paginator.paginate, Prefix=self._key(sub)):
                for up in page.get("Uploads", []):
                    if up["Initiated"].timestamp() < older_than:
                        self._call(
                            self._client.abort_multipart_upload, Key=up["Key"], UploadId=up["UploadId"]
                        )
                        n += 1
        for obj in self._list(STAGING):
            if self._ts(obj) < older_than:
                self._call(self._client.delete_object, Key=obj["Key"])
                n += 1
        return n


class _BufferPool:
    """At most ``count`` reusable bytearrays; get() blocks while all are in use."""

    def __init__(self, count: int) -> None:
        self._count = count
        self._made = 0
        self._free: list[bytearray] = []
        self._cond = threading.Condition()

    def get(self, size: int) -> bytearray:
        with self._cond:
            while True:
                for i, buf in enumerate(self._free):
                    if len(buf) == size:
                        return self._free.pop(i)
                if self._free and self._made >= self._count:  # only other sizes are free: replace one
                    self._free.pop()
                    self._made -= 1
                if self._made < self._count:
                    self._made += 1
                    return bytearray(size)
                self._cond.wait()

    def put(self, buf: bytearray) -> None:
        with self._cond:
            self._free.append(buf)
            self._cond.notify()


class _Completion:
    """Which parts of a download are complete; wait(i) blocks until part i is, or raises the first failure."""

    def __init__(self, n: int) -> None:
        self._done = [False] * n
        self._error: BaseException | None = None
        self._cond = threading.Condition()

    def set(self, i: int) -> None:
        with self._cond:
            self._done[i] = True
            self._cond.notify_all()

    def fail(self, exc: BaseException) -> None:
        with self._cond:
            if self._error is None:
                self._error = exc
            self._cond.notify_all()

    def wait(self, i: int) -> None:
        with self._cond:
            while not self._done[i] and self._error is None:
                self._cond.wait()
            if self._error is not None:
                raise self._error


def _readinto_full(fd: int, buf: bytearray) -> int:
    """Fill ``buf`` from the current offset of ``fd``; fewer bytes only at end of file. Returns the count."""
    view = memoryview(buf)
    got = 0
    while got < len(buf):
        n = os.readv(fd, [view[got:]])
        if n == 0:
            break
        got += n
    return got


def _read_exact(fd: int, n: int) -> bytes:
    """Up to ``n`` bytes from the current offset of ``fd``; fewer only at end of file."""
    data = os.read(fd, n)
    if len(data) == n or not data:
        return data
    chunks = [data]
    got = len(data)
    while got < n:
        more = os.read(fd, n - got)
        if not more:
            break
        chunks.append(more)
        got += len(more)
    return b"".join(chunks)
