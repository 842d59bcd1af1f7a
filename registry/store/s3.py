"""S3Store: any S3 endpoint (AWS S3, MinIO, Ceph RGW) through boto3.

Credentials come only from the standard AWS chain; the endpoint from ``AWS_ENDPOINT_URL`` or
``s3://bucket/prefix?endpoint=http://host:port``.

Data paths, chosen on measurements (bench/registry/RESULTS.md): uploads of large files go through the AWS
Common Runtime's S3 client (``registry.store.s3_crt``: a fraction of the client CPU of the former hand-written
boto3 multipart code, and faster than obstore); downloads stay parallel boto3 ranged GETs (the CRT's ordered
body delivery was slower here). boto3 is also the control plane.

Push of a file whose digest is not known yet (``ingest``): small files are read once, hashed and PUT
create-only. Large files are uploaded by the CRT to a staging key ``tmp/<uuid>`` while this thread hashes them
(whole-file sha256 and chunk digests); then, if the file did not change meanwhile and only if
``blobs/sha256/<xx>/<hex>`` is absent (HEAD), the staging object is copied server-side to that key
(CopyObject; UploadPartCopy where the server refuses a single copy, e.g. AWS above 5 GiB) and deleted. A
killed push leaves only a staging object or an unfinished multipart upload under ``tmp/``, never a blob;
``clean_staging`` (gc) removes them. An interrupted push cancels the CRT request, which aborts the upload.
A blob whose digest is already known (hash cache) is HEAD-checked and uploaded directly (``put_blob``).

Downloads: parallel ranged GETs (``s3_part_mib`` pieces of each requested range) on boto3 threads, each
streamed to its offset (1 MiB reads, ``pwrite`` in 64 KiB pieces: ``hashing.WRITE_PIECE``); the caller
verifies chunks as they land (``registry.hashing.Verifier``) and stops a download by raising from ``landed``.
Tuning (``StoreTuning``): ``s3_part_mib`` (CRT part size, default 64), ``s3_target_gbps`` (CRT throughput
target, default 10: sets how many connections it opens), ``s3_multipart_mib`` (single PUT below it; default
64), ``s3_threads`` (boto3 threads for ranged GETs and server-side part copies, default 10),
``s3_staged_push=False`` (hash every file first, then upload only the missing blobs).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from registry.errors import IntegrityError, InvalidInput, StoreUnavailable
from registry.hashing import FileDigest, digest_bytes, digest_file, pwrite_all
from registry.store.base import (
    BlobInfo,
    Landed,
    Progress,
    Store,
    StoreTuning,
    blob_key,
    file_changed,
    manifest_key,
    missing_blob,
)
from registry.store.s3_crt import CrtTransfer

MIB = 1 << 20
MAX_PARTS = 10_000  # S3's limit on parts per multipart upload
COPY_PART = 1 << 30  # UploadPartCopy part size (S3 allows up to 5 GiB)
STAGING = "tmp/"
RECV_CHUNK = 1 << 20  # download: body reads (small, reused heap allocations), written in WRITE_PIECE pieces


UNREACHABLE_HINT = (
    "check that the S3 endpoint is up and reachable, then run the command again "
    "(a pull resumes from the files it already verified)"
)


class S3Store(Store):
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        tuning: StoreTuning | None = None,
    ) -> None:
        tuning = tuning or StoreTuning()
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.threads = max(1, tuning.s3_threads)
        self.part_size = max(1, tuning.s3_part_mib) * MIB
        self.multipart_threshold = max(1, tuning.s3_multipart_mib) * MIB
        self.target_gbps = tuning.s3_target_gbps
        self._session: Any = None
        self._client = self._make_client()
        self._crt_client: CrtTransfer | None = None
        self._unreachable: str | None = None  # set when the endpoint stopped accepting connections
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="s3")
        self._if_none_match = True  # cleared when the server refuses the header
        self._lock = threading.Lock()
        self.can_ingest = tuning.s3_staged_push

    @classmethod
    def from_url(cls, url: str, tuning: StoreTuning | None = None) -> S3Store:
        parsed = urlparse(url)
        if not parsed.netloc:
            raise InvalidInput(f"store URL {url!r} has no bucket", hint="use s3://bucket/prefix")
        endpoints = parse_qs(parsed.query).get("endpoint")
        return cls(parsed.netloc, parsed.path, endpoints[0] if endpoints else None, tuning)

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
        self._session = boto3.session.Session()
        return self._session.client("s3", endpoint_url=self.endpoint_url, config=cfg)

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
        """botocore, urllib3 and CRT errors (the endpoint refused, closed or reset a connection)."""
        from botocore.exceptions import BotoCoreError, ClientError
        from urllib3.exceptions import HTTPError

        from registry.store.s3_crt import _is_crt_error

        if not (isinstance(exc, BotoCoreError | ClientError | HTTPError) or _is_crt_error(exc)):
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

    # -- push of a file whose digest is not known yet ----------------------------------------------------
    def ingest(self, path: Path, progress: Progress) -> tuple[FileDigest, bool]:
        """Upload and hash ``path`` at once; publish it under its digest unless present (create-only).

        Small files: one read, hashed and PUT create-only. Large files: the CRT uploads the file to a staging
        key while this thread hashes it (whole file and chunks, on other cores); the file must not have
        changed in between (size, mtime, ctime) before the staging object is copied to its blob key."""
        fd = os.open(path, os.O_RDONLY)
        try:
            st = os.fstat(fd)
            if st.st_size < self.multipart_threshold:
                data = _read_exact(fd, st.st_size)  # push() re-stats the file afterwards
                digest = digest_bytes(data)
                new = self._put_small(blob_key(digest.sha256), data)
                progress(len(data))
                return digest, new
        finally:
            os.close(fd)
        staging = f"{STAGING}{uuid.uuid4().hex}"
        try:
            hashed = self._crt().upload_file(
                self._key(staging),
                str(path),
                st.st_size,
                poll=lambda: progress(0),
                progress=progress,
                meanwhile=lambda: digest_file(path, lambda _n: progress(0)),
            )
            assert hashed is not None
            digest = hashed
            if file_changed(path, st) or digest.size != st.st_size:
                raise IntegrityError(
                    f"{path} changed while it was pushed", hint="push again once it is stable"
                )
            if self.has_blob(digest.sha256, digest.size):
                return digest, False
            # A server-side copy of a large object can take long: wait in slices so that an interrupt stops
            # the push at once. An abandoned copy publishes the complete blob or nothing; its staging object
            # is then left for gc (deleting it under a running copy is not safe on every server).
            copy = self._pool.submit(self._copy, staging, blob_key(digest.sha256), digest.size)
            while True:
                try:
                    copy.result(timeout=0.05)
                    break
                except FutureTimeout:
                    try:
                        progress(0)
                    except BaseException:
                        staging = ""
                        raise
            return digest, True
        finally:
            try:
                if staging:
                    self._call(self._client.delete_object, Key=self._key(staging))
            except Exception:  # noqa: BLE001 - gc's clean_staging removes a leftover staging object
                pass

    def _crt(self) -> CrtTransfer:
        """The CRT data-path client, made on first use (it starts event-loop threads)."""
        with self._lock:
            if self._crt_client is None:
                self._crt_client = CrtTransfer(
                    self.bucket,
                    self.endpoint_url,
                    self._client.meta.region_name or "us-east-1",
                    self._session.get_credentials(),
                    self.part_size,
                    self.target_gbps,
                )
                if self._crt_client is None:
                    raise StoreUnavailable(f"no S3 data path for {self.url}")
            return self._crt_client

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
        # The object appears only when the CRT completes its multipart upload; push() re-checks the file.
        self._crt().upload_file(self._key(key), str(path), size, poll=lambda: progress(0), progress=progress)

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

    def download_blob(
        self, hexdigest: str, size: int, fd: int, landed: Landed, ranges: list[tuple[int, int]]
    ) -> None:
        """Parallel ranged GETs (``part_size`` pieces of each range), each streamed to its offset with
        ``pwrite`` in RECV_CHUNK pieces; ``landed`` is called per piece (the caller verifies as they land)."""
        from botocore.exceptions import ClientError

        key = self._key(blob_key(hexdigest))
        failed = threading.Event()
        pieces = [
            (off, min(off + self.part_size, start + length))
            for start, length in ranges
            for off in range(start, start + length, self.part_size)
        ]

        def part(off: int, end: int) -> None:
            if failed.is_set():
                return
            try:
                whole = off == 0 and end == size
                kw = {} if whole else {"Range": f"bytes={off}-{end - 1}"}
                body = self._call(self._client.get_object, Key=key, **kw)["Body"]
                pos = off
                while pos < end and not failed.is_set():
                    chunk = body.read(min(RECV_CHUNK, end - pos))
                    if not chunk:
                        raise IntegrityError(f"short read of {key} bytes {off}-{end - 1}: got {pos - off}")
                    pwrite_all(fd, chunk, pos)
                    landed(pos, len(chunk))
                    pos += len(chunk)
            except ClientError as exc:
                failed.set()
                if self._code(exc) in ("NoSuchKey", "404"):
                    raise missing_blob(hexdigest, self.url) from exc
                raise StoreUnavailable(f"GET {key} from {self.url} failed: {exc}") from exc
            except BaseException:
                failed.set()
                raise

        futures = [self._pool.submit(part, off, end) for off, end in pieces]
        try:
            for f in futures:
                f.result()
        finally:
            failed.set()  # no worker writes to fd after we return
            wait(futures)

    def read_blob(self, hexdigest: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            return self._call(self._client.get_object, Key=self._key(blob_key(hexdigest)))["Body"].read()
        except ClientError as exc:
            if self._code(exc) in ("NoSuchKey", "404"):
                raise missing_blob(hexdigest, self.url) from exc
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
