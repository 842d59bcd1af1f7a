"""S3Store: any S3 endpoint (AWS S3, MinIO, Ceph RGW) through boto3.

Credentials come only from the standard AWS chain; the endpoint from ``AWS_ENDPOINT_URL`` or
``s3://bucket/prefix?endpoint=http://host:port``. Large blobs go multipart with parallel parts read by
``pread``; downloads are parallel ranged GETs written with ``pwrite`` while an in-order hasher computes the
sha256 (no second read pass). Tuning: ``TRTBUILD_S3_THREADS`` (default 10), ``TRTBUILD_S3_PART_MIB``
(default 32), ``TRTBUILD_S3_MULTIPART_MIB`` (single PUT below it; default 64).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from registry.errors import IntegrityError, InvalidInput, StoreUnavailable
from registry.hashing import OrderedHasher, pwrite_all
from registry.store.base import BlobInfo, Progress, Store, blob_key, manifest_key

MIB = 1 << 20


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
        self._lock = threading.Lock()

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

        cfg = Config(
            max_pool_connections=self.threads * 2 + 4,
            retries={"mode": "standard", "max_attempts": 6},
            connect_timeout=10,
            read_timeout=120,
            tcp_keepalive=True,
            response_checksum_validation="when_required",  # we verify sha256 ourselves
            s3={"addressing_style": "path"} if self.endpoint_url else {},
        )
        session = boto3.session.Session()
        return session.client("s3", endpoint_url=self.endpoint_url, config=cfg)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, fn: Any, **kw: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

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
            raise StoreUnavailable(f"cannot reach the store {self.url} ({self.endpoint_url or 'AWS'}): {exc}") from exc

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

    def _put_small(self, key: str, data: bytes) -> None:
        """Create-only PUT: If-None-Match: * where the server supports it, HEAD-then-PUT otherwise."""
        from botocore.exceptions import ClientError

        if self._if_none_match:
            try:
                self._call(self._client.put_object, Key=self._key(key), Body=data, IfNoneMatch="*")
                return
            except ClientError as exc:
                code = self._code(exc)
                if code in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                    return  # already there: create-only and idempotent
                if code not in ("NotImplemented", "501", "InvalidArgument", "400"):
                    raise StoreUnavailable(f"PUT {key} on {self.url} failed: {exc}") from exc
                self._if_none_match = False
        if self._head(key) is None:
            try:
                self._call(self._client.put_object, Key=self._key(key), Body=data)
            except ClientError as exc:
                raise StoreUnavailable(f"PUT {key} on {self.url} failed: {exc}") from exc

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
        from botocore.exceptions import ClientError

        full_key = self._key(key)
        upload_id = self._call(self._client.create_multipart_upload, Key=full_key)["UploadId"]
        fd = os.open(path, os.O_RDONLY)
        try:
            nparts = (size + self.part_size - 1) // self.part_size
            sem = threading.BoundedSemaphore(self.threads)

            def part(i: int) -> dict:
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

            futures = []
            for i in range(nparts):
                sem.acquire()
                futures.append(self._pool.submit(part, i))
                if any(f.done() and f.exception() for f in futures):
                    break
            wait(futures)
            parts = [f.result() for f in futures]
            self._call(
                self._client.complete_multipart_upload,
                Key=full_key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException as exc:
            try:
                self._call(self._client.abort_multipart_upload, Key=full_key, UploadId=upload_id)
            except Exception:  # noqa: BLE001 - the original error matters; gc aborts leftovers
                pass
            if isinstance(exc, ClientError):
                raise StoreUnavailable(f"multipart upload of {key} to {self.url} failed: {exc}") from exc
            raise
        finally:
            os.close(fd)

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
        nparts = (size + self.part_size - 1) // self.part_size
        hasher = OrderedHasher(window=self.threads * 2)

        def part(i: int) -> None:
            try:
                off = i * self.part_size
                end = min(off + self.part_size, size) - 1
                body = self._call(self._client.get_object, Key=key, Range=f"bytes={off}-{end}")["Body"]
                data = body.read()
                if len(data) != end - off + 1:
                    raise IntegrityError(f"short read of {key} bytes {off}-{end}: got {len(data)}")
                pwrite_all(fd, data, off)
                hasher.add(i, data)
                progress(len(data))
            except BaseException as exc:
                hasher.fail(exc)
                raise

        futures = []
        for i in range(nparts):
            hasher.wait_for_slot(i)
            futures.append(self._pool.submit(part, i))
        wait(futures)
        for f in futures:
            f.result()
        return hasher.hexdigest()

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
        lm = obj.get("LastModified") or datetime.now(timezone.utc)
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
        """Abort multipart uploads (left by killed pushes) started before ``older_than``."""
        n = 0
        paginator = self._client.get_paginator("list_multipart_uploads")
        for page in self._call(paginator.paginate, Prefix=self._key("blobs/")):
            for up in page.get("Uploads", []):
                if up["Initiated"].timestamp() < older_than:
                    self._call(self._client.abort_multipart_upload, Key=up["Key"], UploadId=up["UploadId"])
                    n += 1
        return n
