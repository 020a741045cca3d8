"""The S3 backend of the store: ``s3://bucket/prefix``.

Endpoint, region and credentials come from boto3's standard chain
(``AWS_ENDPOINT_URL``/``AWS_ENDPOINT_URL_S3``, ``AWS_REGION``, ``AWS_ACCESS_KEY_ID`` …,
profiles, instance/OIDC roles); requests are signed with SigV4.

Ledger rules need two conditional writes, both plain S3 since 2024 and both honoured
(atomically, checked with racing writers) by SeaweedFS 4.x:

* ``put_if_absent`` — ``PutObject`` with ``If-None-Match: *`` (412 when the key exists);
* ``put_if_match`` — ``PutObject`` with ``If-Match: <etag>`` (412 when it changed), or
  ``If-None-Match: *`` when the caller expects the key to be absent.

A server that answers a conditional write with 501 NotImplemented is refused with a
one-line error rather than silently written unconditionally.

Transient failures (connection refused or reset, timeouts, 5xx, throttling) are retried
with exponential backoff and jitter (:class:`S3Options`; the CLI reads
``REFINERY_S3_RETRIES``); bad credentials, a missing bucket or a refused
request fail at once with a one-line :class:`StoreError`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlparse

from refinery.core.errors import ConflictError, InputError, StoreError
from refinery.core.vocab import SIMPLE_JSON

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True, kw_only=True)
class S3Options:
    """How hard the S3 backend tries: ``retries`` after the first try of a request that
    failed transiently, waiting ``backoff`` seconds (doubled each time, with jitter)."""

    retries: int = 6
    backoff: float = 0.2

    def __post_init__(self) -> None:
        if self.retries < 0 or self.backoff < 0:
            raise InputError(f"S3 retries and backoff must not be negative: {self}")


PYPI_JSON = SIMPLE_JSON

_AUTH_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "InvalidToken",
        "ExpiredToken",
        "AuthorizationHeaderMalformed",
        "InvalidSecurity",
        "403",
        "Forbidden",
    }
)
_THROTTLE_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequests",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "InternalError",
        "ServiceUnavailable",
        "503",
        "500",
        "502",
        "504",
    }
)
_MISSING_KEY = frozenset({"NoSuchKey", "404", "NotFound"})
_CONFLICT = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})


def content_type(key: str) -> str:
    """What a static host should send for ``key`` (index pages, JSON, wheels)."""
    if key.endswith(".html"):
        return "text/html; charset=utf-8"
    if key.endswith("/index.json") and "simple/" in key:
        return PYPI_JSON
    if key.endswith(".json"):
        return "application/json"
    if key.endswith((".log", ".metadata", ".txt")):
        return "text/plain; charset=utf-8"
    if key.endswith(".whl"):
        return "application/zip"
    return "application/octet-stream"


def _code(exc: Exception) -> tuple[str, int]:
    response: dict[str, Any] = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code, status


class S3BlobStore:
    """Blobs under ``s3://bucket/prefix``; the ETag is the version tag."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: S3Client | None = None,
        options: S3Options | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not bucket:
            raise StoreError("s3:// store URL names no bucket (use s3://BUCKET/PREFIX)")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        options = options or S3Options()
        self.retries = options.retries
        self.backoff = options.backoff
        self._sleep = sleep
        self._client = client

    @property
    def client(self) -> S3Client:
        if self._client is None:
            import boto3
            from botocore.config import Config

            # A session of our own: the standard chain is read now, not cached from
            # whatever boto3's default session saw first.
            self._client = boto3.session.Session().client(
                "s3",
                config=Config(
                    signature_version="s3v4",
                    retries={"max_attempts": 1, "mode": "standard"},  # we retry ourselves
                    connect_timeout=5,
                    read_timeout=60,
                    max_pool_connections=32,
                ),
            )
        return self._client

    def _key(self, key: str) -> str:
        if key.startswith("/") or ".." in key.split("/"):
            raise StoreError(f"refusing store key {key!r}")
        return f"{self.prefix}/{key}" if self.prefix else key

    def _rel(self, full: str) -> str:
        return full[len(self.prefix) + 1 :] if self.prefix else full

    # --- error handling ---------------------------------------------------------
    def _call(self, what: str, fn: Callable[[], _T]) -> _T:
        """Run one request; retry transient failures, translate the rest."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionClosedError,
            EndpointConnectionError,
            NoCredentialsError,
            PartialCredentialsError,
            ReadTimeoutError,
        )
        from botocore.exceptions import ConnectionError as BotoConnectionError

        delay = self.backoff
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                return fn()
            except ClientError as exc:
                code, status = _code(exc)
                if code in _MISSING_KEY or code in _CONFLICT:
                    raise
                if code == "NoSuchBucket":
                    raise StoreError(f"{self.url}: bucket {self.bucket!r} does not exist") from None
                if code in _AUTH_CODES or status in (401, 403):
                    raise StoreError(
                        f"{self.url}: credentials rejected by the S3 server ({code or status}) "
                        f"during {what}"
                    ) from None
                if code == "NotImplemented" or status == 501:
                    raise StoreError(
                        f"{self.url}: the S3 server does not implement {what} "
                        "(conditional writes are required for a safe ledger)"
                    ) from None
                transient = code in _THROTTLE_CODES or status >= 500 or status == 429
                if not transient or last:
                    msg = exc.response.get("Error", {}).get("Message", "") or str(exc)
                    raise StoreError(f"{self.url}: {what} failed: {code or status} {msg}") from None
            except (NoCredentialsError, PartialCredentialsError) as exc:
                raise StoreError(f"{self.url}: no S3 credentials found ({exc})") from None
            except (
                EndpointConnectionError,
                ConnectionClosedError,
                ReadTimeoutError,
                BotoConnectionError,
            ) as exc:
                if last:
                    raise StoreError(
                        f"{self.url}: cannot reach the S3 server after {self.retries + 1} "
                        f"tries during {what}: {exc}"
                    ) from None
            except BotoCoreError as exc:
                raise StoreError(f"{self.url}: {what} failed: {exc}") from None
            self._sleep(min(delay, 5.0) * (0.5 + random.random()))
            delay *= 2
        raise AssertionError("unreachable")

    # --- BlobStore ----------------------------------------------------------------
    def get(self, key: str) -> tuple[bytes, str] | None:
        from botocore.exceptions import ClientError

        full = self._key(key)

        def fetch() -> tuple[bytes, str]:
            resp = self.client.get_object(Bucket=self.bucket, Key=full)
            return resp["Body"].read(), resp["ETag"]

        try:
            return self._call(f"get {key}", fetch)
        except ClientError as exc:
            if _code(exc)[0] in _MISSING_KEY:
                return None
            raise

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        full = self._key(key)
        try:
            self._call(f"head {key}", lambda: self.client.head_object(Bucket=self.bucket, Key=full))
        except ClientError as exc:
            if _code(exc)[0] in _MISSING_KEY:
                return False
            raise
        return True

    def put_if_absent(self, key: str, data: bytes) -> bool:
        from botocore.exceptions import ClientError

        full = self._key(key)
        try:
            self._call(
                f"put {key}",
                lambda: self.client.put_object(
                    Bucket=self.bucket,
                    Key=full,
                    Body=data,
                    IfNoneMatch="*",
                    ContentType=content_type(key),
                ),
            )
        except ClientError as exc:
            if _code(exc)[0] in _CONFLICT:
                return False
            raise
        return True

    def put_if_match(self, key: str, data: bytes, etag: str | None) -> str:
        from botocore.exceptions import ClientError

        full = self._key(key)
        args: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": full,
            "Body": data,
            "ContentType": content_type(key),
        }
        if etag is None:
            args["IfNoneMatch"] = "*"
        else:
            args["IfMatch"] = etag
        try:
            resp = self._call(f"put {key}", lambda: self.client.put_object(**args))
        except ClientError as exc:
            if _code(exc)[0] in _CONFLICT | _MISSING_KEY:
                raise ConflictError(f"{key}: changed since it was read") from None
            raise
        return resp["ETag"]

    def put(self, key: str, data: bytes) -> None:
        full = self._key(key)
        self._call(
            f"put {key}",
            lambda: self.client.put_object(
                Bucket=self.bucket, Key=full, Body=data, ContentType=content_type(key)
            ),
        )

    def delete(self, key: str) -> None:
        full = self._key(key)
        self._call(f"delete {key}", lambda: self.client.delete_object(Bucket=self.bucket, Key=full))

    def list_tags(self, prefix: str) -> Iterator[tuple[str, str]]:
        """``(key, etag)`` under ``prefix``: one listing, no object reads."""
        full = self._key(prefix) if prefix else self.prefix
        if self.prefix and not prefix:
            full += "/"
        token: str | None = None
        while True:
            args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": full, "MaxKeys": 1000}
            if token:
                args["ContinuationToken"] = token
            page = self._call(f"list {prefix}", lambda a=args: self.client.list_objects_v2(**a))  # type: ignore[misc]
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if key.endswith("/"):
                    continue  # SeaweedFS shows folders as keys ending in "/"
                yield self._rel(key), obj.get("ETag", "")
            if not page.get("IsTruncated"):
                return
            token = page.get("NextContinuationToken")

    def list(self, prefix: str) -> Iterator[str]:
        for key, _tag in self.list_tags(prefix):
            yield key

    def local_path(self, key: str) -> Path | None:
        """Nothing of a bucket is on this machine."""
        return None


def open_s3(url: str, options: S3Options | None = None) -> S3BlobStore:
    parsed = urlparse(url)
    return S3BlobStore(parsed.netloc, parsed.path, options=options)
