"""Ranged reads of one S3 object version: the RangeSource behind S3Storage.open_reader.

The first GET asks for the object's first bytes with a Range, so one request learns the size
(from Content-Range) and the ETag and brings the bytes every decoder reads first (its magic
number); no HEAD before it. Every later range carries If-Match with that ETag: a replaced
object answers 412 and the job fails as transient (OriginalChangedError) rather than decoding
half of one version and half of another. Each answer's ETag and total size are compared too,
for stores that ignore If-Match.

Retries: botocore's standard mode already retries the request itself (connection errors, 5xx,
throttling) up to the storage's `max_attempts`. A body cut short after the answer began (a
reset, a read timeout, fewer bytes than its Content-Length) is beyond botocore's reach, so that
range is asked again here, as many tries in all, with jittered backoff (tenacity).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential
from urllib3.exceptions import HTTPError as URLLib3HTTPError

from media_worker.errors import (
    OriginalChangedError,
    StorageUnavailableError,
    TruncatedOriginalError,
)

Translated = Callable[[str, str, str | None], AbstractContextManager[None]]

_CHUNK_BYTES = 256 * 1024
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")
_CHANGED = "the original changed while it was read"


class _CutShortError(Exception):
    """The answer's body ended (or broke) before all its bytes arrived."""


@dataclass(frozen=True)
class _Answer:
    start: int
    total: int
    etag: str
    data: bytes


@dataclass
class S3RangeSource:
    """Ranges of `bucket`/`key` as it was when opened (`size`, `etag`)."""

    client: Any
    bucket: str
    key: str
    size: int
    etag: str
    attempts: int
    translated: Translated
    bytes_received: int = 0
    _counting: threading.Lock = field(default_factory=threading.Lock, repr=False)  # prefetches

    @classmethod
    def open(cls, client: Any, bucket: str, key: str, *, first: int, attempts: int,
             translated: Translated) -> tuple[S3RangeSource, bytes]:
        """The source and the object's first `first` bytes (all of it when shorter)."""
        source = cls(client, bucket, key, size=0, etag="", attempts=attempts,
                     translated=translated)
        answer = source._answer(0, first, if_match=None)
        if answer is None:  # 416 for bytes 0-…: S3's answer for an empty object
            with translated("HeadObject", bucket, key):
                head = client.head_object(Bucket=bucket, Key=key)
            source.size, source.etag = int(head["ContentLength"]), str(head.get("ETag", ""))
            return source, b""
        source.size, source.etag = answer.total, answer.etag
        return source, answer.data

    def fetch(self, start: int, length: int) -> bytes:
        answer = self._answer(start, length, if_match=self.etag)
        if answer is None:  # past the end: of a shorter new version, or of a truncated one
            raise self._changed_or_truncated(start, length)
        if answer.etag != self.etag or answer.total != self.size:
            raise OriginalChangedError(
                f"{_CHANGED}: s3://{self.bucket}/{self.key} is now {answer.total} bytes with "
                f"ETag {answer.etag}, was {self.size} bytes with ETag {self.etag}")
        if answer.start != start:
            raise StorageUnavailableError(
                f"GetObject s3://{self.bucket}/{self.key} answered bytes from {answer.start} "
                f"when asked from {start}")
        if len(answer.data) < length:
            raise self._truncated(start, length, len(answer.data))
        return answer.data

    def close(self) -> None:
        """The client is the storage's, shared by every job: nothing of ours to release."""

    # --- one ranged GET -------------------------------------------------------------------
    def _answer(self, start: int, length: int, *, if_match: str | None) -> _Answer | None:
        """The answer to `Range: bytes=start-(start+length-1)`, asked again while its body is
        cut short; None when the store refuses the range as unsatisfiable (416)."""
        retrying = Retrying(stop=stop_after_attempt(max(1, self.attempts)),
                            wait=wait_random_exponential(multiplier=0.1, max=2),
                            retry=retry_if_exception_type(_CutShortError), reraise=True)
        try:
            for attempt in retrying:
                with attempt:
                    return self._answer_once(start, length, if_match)
        except _CutShortError as exc:
            raise StorageUnavailableError(
                f"GetObject s3://{self.bucket}/{self.key} bytes {start}-{start + length - 1} "
                f"was cut short {self.attempts} times: {exc}") from exc
        raise AssertionError("tenacity returned without an outcome")  # pragma: no cover

    def _answer_once(self, start: int, length: int, if_match: str | None) -> _Answer | None:
        request = {"Bucket": self.bucket, "Key": self.key,
                   "Range": f"bytes={start}-{start + length - 1}"}
        if if_match is not None:
            request["IfMatch"] = if_match
        with self.translated("GetObject", self.bucket, self.key):
            try:
                response = self.client.get_object(**request)
            except ClientError as exc:
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if status == 412 or code == "PreconditionFailed":
                    raise OriginalChangedError(
                        f"{_CHANGED}: s3://{self.bucket}/{self.key} no longer has ETag "
                        f"{if_match}") from None
                if status == 416 or code == "InvalidRange":
                    return None
                raise
            body = response["Body"]
            try:
                first, last, total = self._content_range(response)
                data = self._read_body(body, last - first + 1)
            finally:
                body.close()
        return _Answer(first, total, str(response.get("ETag", "")), data)

    def _content_range(self, response: dict[str, Any]) -> tuple[int, int, int]:
        match = _CONTENT_RANGE.match(str(response.get("ContentRange", "")))
        if match is None:  # a store that ignored Range would be sending the whole object
            raise StorageUnavailableError(
                f"GetObject s3://{self.bucket}/{self.key} answered a ranged request without "
                f"a usable Content-Range ({response.get('ContentRange')!r}): this store "
                "cannot serve ranged reads")
        first, last, total = (int(group) for group in match.groups())
        return first, last, total

    def _read_body(self, body: Any, expected: int) -> bytes:
        """The body, counted as it arrives (a body cut short still cost its bytes)."""
        chunks: list[bytes] = []
        received = 0
        try:
            for chunk in body.iter_chunks(_CHUNK_BYTES):
                with self._counting:
                    self.bytes_received += len(chunk)
                received += len(chunk)
                chunks.append(chunk)
        except (BotoCoreError, URLLib3HTTPError) as exc:
            raise _CutShortError(str(exc)) from exc
        if received != expected:
            raise _CutShortError(f"{received} bytes of {expected}")
        return b"".join(chunks)

    def _changed_or_truncated(self, start: int, length: int) -> Exception:
        with self.translated("HeadObject", self.bucket, self.key):
            etag = str(self.client.head_object(Bucket=self.bucket, Key=self.key).get("ETag"))
        if etag != self.etag:
            return OriginalChangedError(f"{_CHANGED}: s3://{self.bucket}/{self.key} has ETag "
                                        f"{etag}, was {self.etag}")
        return self._truncated(start, length, 0)

    def _truncated(self, start: int, length: int, got: int) -> TruncatedOriginalError:
        return TruncatedOriginalError(
            f"the original s3://{self.bucket}/{self.key} is truncated: the store announced "
            f"{self.size} bytes but answered {got} of bytes {start}-{start + length - 1}")
