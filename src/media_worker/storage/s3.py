"""S3 and every S3-compatible store (MinIO, Garage, Ceph, AWS) through one boto3 client.

The client is built once and shared by every worker thread: boto3 clients are thread-safe,
sessions are not, and one client means one connection pool sized for the worker's
concurrency. Every botocore exception is translated into the worker's error taxonomy here, so
the processor never sees boto3.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    ParamValidationError,
)
from urllib3.exceptions import HTTPError as URLLib3HTTPError

from media_worker.aws_access import (
    STORAGE_DEVELOPMENT_KEYS,
    STORAGE_KEY_VARIABLES,
    OpenedSession,
    ServiceAccess,
    is_aws_endpoint,
    open_session,
)
from media_worker.errors import (
    MediaWorkerError,
    ObjectTooLargeError,
    OriginalNotFoundError,
    PermanentError,
    StorageUnavailableError,
)
from media_worker.storage.read_ahead import ReadAhead
from media_worker.storage.reader import DEFAULT_READ_AHEAD, ObjectReader
from media_worker.storage.s3_reader import S3RangeSource

_CHUNK_BYTES = 1024 * 1024
_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NoSuchBucket", "NotFound"})
_CREDENTIAL_CODES = frozenset({
    "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
    "InvalidToken", "RequestTimeTooSkewed", "403",
})
_MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # the SigV4 ceiling
_MIN_SCRUBBED_SECRET = 8


class S3Storage:
    """ObjectStorage over the S3 API: path-style for MinIO and other self-hosted stores,
    virtual-hosted on AWS itself."""

    def __init__(
        self,
        *,
        endpoint_url: str | None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        region: str = "us-east-1",
        session: OpenedSession | None = None,
        max_attempts: int = 5,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_pool_connections: int = 32,
        read_ahead: ReadAhead = DEFAULT_READ_AHEAD,
    ) -> None:
        """`session` carries credentials resolved by `aws_access.open_session`; without one,
        the keys given here (or, when None, boto3's chain) are used. `max_attempts` counts
        every try of one request, the first included; botocore's standard mode backs off with
        jitter between them (5xx, throttling, connection errors); a ranged read whose body
        is cut short is asked again as often. `read_ahead` shapes what open_reader fetches.
        """
        opened = session or open_session(ServiceAccess(
            "storage", endpoint_url, region, access_key_id, secret_access_key, None,
            STORAGE_KEY_VARIABLES, STORAGE_DEVELOPMENT_KEYS))
        self._endpoint_url = endpoint_url
        self._region = region
        self._max_attempts = max_attempts
        self._read_ahead = read_ahead
        self._credential_source = opened.credential_source
        # Kept only to scrub them from messages; never formatted anywhere.
        self._secrets = tuple(s for s in opened.secrets if len(s) >= _MIN_SCRUBBED_SECRET)
        # AWS itself addresses buckets as virtual hosts (path style is deprecated there, and
        # an endpoint URL pins one region); self-hosted stores rarely have wildcard DNS.
        on_aws = is_aws_endpoint(endpoint_url)
        self._client: Any = opened.session.client(
            "s3",
            endpoint_url=None if on_aws else endpoint_url,
            config=_client_config(
                region, max_attempts, connect_timeout, read_timeout, max_pool_connections,
                addressing_style="virtual" if on_aws else "path",
            ),
        )

    def __repr__(self) -> str:
        return f"S3Storage(endpoint_url={self._endpoint_url!r}, region={self._region!r})"

    # --- the port -------------------------------------------------------------------------
    def ensure_bucket(self, bucket: str) -> None:
        """HEAD first, so credentials without CreateBucket work once the bucket exists."""
        if self._bucket_exists(bucket):
            return
        with self._translated("CreateBucket", bucket):
            try:
                self._client.create_bucket(**self._create_bucket_args(bucket))
            except ClientError as exc:
                # Another worker (or an earlier run) created it between our HEAD and PUT.
                if _error_code(exc) != "BucketAlreadyOwnedByYou":
                    raise

    def size(self, bucket: str, key: str) -> int:
        with self._translated("HeadObject", bucket, key):
            return int(self._client.head_object(Bucket=bucket, Key=key)["ContentLength"])

    def download(self, bucket: str, key: str, destination: Path, *,
                 max_bytes: int | None = None) -> int:
        """Stream the body to disk in chunks: originals can be far larger than RAM allows.

        One GET, no transfer-manager threads, so a worker thread holds one pooled connection;
        the length is judged from the GET's own Content-Length (a HEAD first would cost a
        request per job) and the body is closed unread when it is too long.
        A failed download removes the partial file, so nobody mistakes it for the original.
        """
        with self._translated("GetObject", bucket, key):
            response = self._client.get_object(Bucket=bucket, Key=key)
            body = response["Body"]
            try:
                length = int(response.get("ContentLength", 0))
                if max_bytes is not None and length > max_bytes:
                    raise ObjectTooLargeError(length, max_bytes)
                return _stream_to_file(body, destination, max_bytes)
            except BaseException:
                destination.unlink(missing_ok=True)
                raise
            finally:
                body.close()

    def open_reader(self, bucket: str, key: str, *, max_read_bytes: int) -> ObjectReader:
        """Ranged GETs of the version found by the first one (storage/s3_reader.py)."""
        first = min(self._read_ahead.first or _CHUNK_BYTES, max_read_bytes)
        source, head = S3RangeSource.open(self._client, bucket, key, first=first,
                                          attempts=self._max_attempts,
                                          translated=self._translated)
        return ObjectReader(source, name=key, max_read_bytes=max_read_bytes,
                            read_ahead=self._read_ahead, head=head)

    def upload(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        with self._translated("PutObject", bucket, key):
            self._client.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)

    def upload_file(self, bucket: str, key: str, source: Path, content_type: str) -> None:
        """One streamed PUT from the open file (botocore rewinds it on a retry); up to 5 GB,
        the S3 single-PUT limit, far above MAX_INPUT_BYTES."""
        with source.open("rb") as stream, self._translated("PutObject", bucket, key):
            self._client.put_object(
                Bucket=bucket, Key=key, Body=stream, ContentType=content_type
            )

    def read(self, bucket: str, key: str) -> bytes:
        with self._translated("GetObject", bucket, key):
            body = self._client.get_object(Bucket=bucket, Key=key)["Body"]
            try:
                return body.read()
            finally:
                body.close()

    def exists(self, bucket: str, key: str) -> bool:
        try:
            self.size(bucket, key)
        except OriginalNotFoundError:
            return False
        return True

    def check_bucket(self, bucket: str) -> None:
        """HeadBucket: the bucket itself, not an object in it (a 404 on a probe object would
        say nothing about the bucket)."""
        if not self._bucket_exists(bucket):
            raise OriginalNotFoundError(f"bucket {bucket!r} does not exist")

    def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every page of ListObjectsV2; S3 orders by UTF-8 bytes, we sort by code point
        (the same order) so both adapters agree."""
        with self._translated("ListObjectsV2", bucket):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix
            )
            return sorted(item["Key"] for page in pages for item in page.get("Contents", ()))

    def delete(self, bucket: str, key: str) -> None:
        """S3 answers 204 for a missing key, which is what the port promises."""
        with self._translated("DeleteObject", bucket, key):
            self._client.delete_object(Bucket=bucket, Key=key)

    def close(self) -> None:
        self._client.close()

    # --- beyond the port ------------------------------------------------------------------
    def presigned_get_url(self, bucket: str, key: str, expires_seconds: int) -> str:
        """A URL a remote engine can GET without credentials, valid for `expires_seconds`.

        Signed locally (no request is made), so it cannot tell whether the object exists.
        """
        if not 1 <= expires_seconds <= _MAX_PRESIGN_SECONDS:
            raise ValueError(f"expires_seconds must be between 1 and {_MAX_PRESIGN_SECONDS}")
        with self._translated("presign GetObject", bucket, key):
            return str(self._client.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_seconds
            ))

    # --- helpers --------------------------------------------------------------------------
    def _bucket_exists(self, bucket: str) -> bool:
        with self._translated("HeadBucket", bucket):
            try:
                self._client.head_bucket(Bucket=bucket)
            except ClientError as exc:
                if _is_not_found(exc):
                    return False
                raise
        return True

    def _create_bucket_args(self, bucket: str) -> dict[str, Any]:
        # us-east-1 is the one region that rejects an explicit LocationConstraint.
        if self._region == "us-east-1":
            return {"Bucket": bucket}
        return {"Bucket": bucket,
                "CreateBucketConfiguration": {"LocationConstraint": self._region}}

    @contextmanager
    def _translated(self, action: str, bucket: str, key: str | None = None) -> Iterator[None]:
        """Turn botocore's exceptions into the taxonomy the status machine acts on."""
        try:
            yield
        except ClientError as exc:
            raise self._scrubbed(
                _from_client_error(exc, action, bucket, key, self._credential_source)) from exc
        except NoCredentialsError as exc:
            raise StorageUnavailableError(
                f"{action} {_where(bucket, key)} failed: {self._credential_source}") from exc
        except ParamValidationError as exc:
            # Rejected before sending (an empty key, an invalid bucket name): never succeeds.
            raise self._scrubbed(PermanentError(
                f"{action} {_where(bucket, key)} is not a valid request: {exc}"
            )) from exc
        except (BotoCoreError, URLLib3HTTPError) as exc:
            # Connection refused, DNS, timeouts, a body cut short: after botocore's own retries.
            raise self._scrubbed(StorageUnavailableError(
                f"{action} {_where(bucket, key)} failed: {exc}"
            )) from exc

    def _scrubbed(self, error: MediaWorkerError) -> MediaWorkerError:
        """Defence in depth: no message may ever carry the secret key. Messages are built from
        error codes and botocore's text, which hold none; a secret shorter than MinIO's
        minimum of 8 characters is too likely to match ordinary words to be scrubbed."""
        text = str(error)
        scrubbed = text
        for secret in self._secrets:
            scrubbed = scrubbed.replace(secret, "***")
        return error if scrubbed == text else type(error)(scrubbed)


def _client_config(
    region: str, max_attempts: int, connect_timeout: float, read_timeout: float,
    max_pool_connections: int, *, addressing_style: str = "path",
) -> Config:
    """SigV4, bounded retries and timeouts, and a pool large enough for the worker threads
    sharing the client."""
    options: dict[str, Any] = {
        "region_name": region,
        "signature_version": "s3v4",
        "s3": {"addressing_style": addressing_style},
        "retries": {"mode": "standard", "total_max_attempts": max(1, max_attempts)},
        "connect_timeout": connect_timeout,
        "read_timeout": read_timeout,
        "max_pool_connections": max_pool_connections,
        "tcp_keepalive": True,
    }
    # botocore >= 1.36 adds CRC checksums (aws-chunked trailers) to every PUT by default, which
    # several S3-compatible stores reject; only send them where the operation requires it.
    if "request_checksum_calculation" in Config.OPTION_DEFAULTS:
        options["request_checksum_calculation"] = "when_required"
        options["response_checksum_validation"] = "when_required"
    return Config(**options)


def _stream_to_file(body: Any, destination: Path, max_bytes: int | None) -> int:
    """Copy a botocore StreamingBody to `destination`; botocore checks Content-Length at the
    end (IncompleteReadError), so a truncated body is an error, not a short file. The cap is
    enforced on the bytes themselves too, whatever the header said."""
    written = 0
    with destination.open("wb") as out:
        for chunk in body.iter_chunks(_CHUNK_BYTES):
            written += len(chunk)
            if max_bytes is not None and written > max_bytes:
                raise ObjectTooLargeError(written, max_bytes)
            out.write(chunk)
    return written


def _from_client_error(
    exc: ClientError, action: str, bucket: str, key: str | None, credential_source: str
) -> MediaWorkerError:
    code = _error_code(exc)
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code == "NoSuchBucket" or (key is None and _is_not_found(exc)):
        return OriginalNotFoundError(f"bucket {bucket!r} does not exist")
    if _is_not_found(exc):
        return OriginalNotFoundError(f"no object {key!r} in bucket {bucket!r}")
    # Everything else is the store's trouble, not the media's. 5xx, SlowDown and RequestTimeout
    # pass after a while. Wrong credentials (403 AccessDenied, InvalidAccessKeyId,
    # SignatureDoesNotMatch) are a configuration problem that retrying will not fix quickly,
    # but the media is not at fault either: they are transient too, bounded by MAX_ATTEMPTS,
    # so the row is not marked FAILED for an operator's typo.
    hint = (f" (credentials from {credential_source}: check them and the bucket policy)"
            if code in _CREDENTIAL_CODES else "")
    return StorageUnavailableError(
        f"{action} {_where(bucket, key)} failed: {code} (HTTP {status}){hint}"
    )


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def _is_not_found(exc: ClientError) -> bool:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return _error_code(exc) in _NOT_FOUND_CODES or status == 404


def _where(bucket: str, key: str | None) -> str:
    return f"s3://{bucket}" if key is None else f"s3://{bucket}/{key}"

