"""The S3 upload data path: large files through the AWS Common Runtime's S3 client (``awscrt``).

Chosen on measurements (bench/registry/RESULTS.md): the CRT uploads in C on its own event-loop threads
(parallel parts over many connections, no GIL), using a fraction of the client CPU of botocore's Python
HTTP stack. (Its downloads were slower than boto3 ranged GETs on the test server: not used.) boto3 stays the control-plane client (HEAD, small objects, server-side copies, listing, gc).
s3transfer's CRT transfer manager is not used: it always adds trailing CRC32 checksums (aws-chunked uploads),
which some S3 servers refuse (Ceph RGW 16: ``XAmzContentSHA256Mismatch``); integrity is the caller's sha256.

Every transfer waits in short slices and calls the caller's ``poll()`` between them; when it raises (an
interrupt, another file failed), the request is cancelled: the CRT aborts its in-flight parts and the
multipart upload, and the exception propagates.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar
from urllib.parse import urlparse

from registry.errors import StoreUnavailable

POLL_S = 0.05
T = TypeVar("T")
Poll = Callable[[], None]


class CrtTransfer:
    """One CRT S3 client for a bucket: ``upload_file``."""

    def __init__(
        self,
        bucket: str,
        endpoint_url: str | None,
        region: str,
        credentials: Any,
        part_size: int,
        target_gbps: float = 10.0,
    ):
        from awscrt.io import (
            ClientBootstrap,
            ClientTlsContext,
            DefaultHostResolver,
            EventLoopGroup,
            TlsContextOptions,
        )
        from awscrt.s3 import S3Client, S3RequestTlsMode
        from s3transfer.crt import BotocoreCRTCredentialsWrapper

        self.bucket = bucket
        if endpoint_url:
            url = urlparse(endpoint_url)
            self.host, self.path_style, tls = url.netloc, True, url.scheme == "https"
        else:
            self.host, self.path_style, tls = f"{bucket}.s3.{region}.amazonaws.com", False, True
        tls_options = None
        ca = os.environ.get("AWS_CA_BUNDLE")
        if tls and ca:
            opts = TlsContextOptions()
            opts.override_default_trust_store_from_path(ca_filepath=ca)
            tls_options = ClientTlsContext(opts).new_connection_options()
        elg = EventLoopGroup()
        self._client = S3Client(
            bootstrap=ClientBootstrap(elg, DefaultHostResolver(elg)),
            region=region,
            credential_provider=BotocoreCRTCredentialsWrapper(credentials).to_crt_credentials_provider(),
            tls_mode=S3RequestTlsMode.ENABLED if tls else S3RequestTlsMode.DISABLED,
            tls_connection_options=tls_options,
            part_size=part_size,
            multipart_upload_threshold=part_size,
            throughput_target_gbps=target_gbps,
        )

    def _request(self, method: str, key: str, headers: list[tuple[str, str]]) -> Any:
        from urllib.parse import quote

        from awscrt.http import HttpHeaders, HttpRequest

        path = f"/{self.bucket}/{quote(key)}" if self.path_style else f"/{quote(key)}"
        return HttpRequest(method, path, HttpHeaders([("Host", self.host), *headers]))

    @staticmethod
    def _wait(request: Any, poll: Poll) -> None:
        """Wait for a CRT request, calling ``poll`` between short slices (it raises to stop)."""
        future: Future = request.finished_future
        while True:
            try:
                future.result(timeout=POLL_S)
                return
            except FutureTimeout:
                poll()

    @staticmethod
    def _stop(*requests: Any) -> None:
        """Cancel requests and wait until the CRT has stopped writing (and aborted a multipart upload)."""
        for request in requests:
            request.cancel()
        for request in requests:
            try:
                request.finished_future.result(timeout=30)
            except BaseException:  # noqa: BLE001 - cancelled or failed: the caller reports the first cause
                pass

    @staticmethod
    def _failure(exc: BaseException, what: str) -> BaseException:
        status = getattr(exc, "status_code", None)
        if status == 404:
            return FileNotFoundError(what)
        return StoreUnavailable(f"{what} failed: {exc}")

    def upload_file(
        self,
        key: str,
        path: str,
        size: int,
        poll: Poll,
        progress: Callable[[int], None],
        meanwhile: Callable[[], T] | None = None,
    ) -> T | None:
        """PUT the file at ``path`` to ``key`` (multipart in parallel parts above the part size); while it
        runs, this thread runs ``meanwhile()`` (e.g. hashing the same file), whose result is returned."""
        from awscrt.s3 import S3RequestType

        request = self._client.make_request(
            type=S3RequestType.PUT_OBJECT,
            request=self._request("PUT", key, [("Content-Length", str(size))]),
            send_filepath=path,
            on_progress=progress,
        )
        try:
            result = meanwhile() if meanwhile is not None else None
            self._wait(request, poll)
        except BaseException as exc:
            self._stop(request)
            if not _is_crt_error(exc):
                raise
            raise self._failure(exc, f"upload of {key}") from exc
        return result


def _is_crt_error(exc: BaseException) -> bool:
    from awscrt.exceptions import AwsCrtError

    return isinstance(exc, AwsCrtError)
