"""GETs to the service: one urllib3 pool shared by every worker thread, bounded retries with
backoff, bounded answers, and errors that never carry the request URL (a presigned one holds
credentials)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import urllib3
from urllib3.exceptions import HTTPError as URLLib3Error
from urllib3.util import Retry, Timeout

from media_worker.errors import ConfigurationError, EngineUnavailableError

RETRIED_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# A thumbnail is at most a few MB; an answer larger than this is not one (a misrouted URL
# streaming an original, an error page in a loop) and is cut off rather than held in memory.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
READ_CHUNK_BYTES = 1024 * 1024
# Connecting is quick when the service is up; waiting the whole read timeout for a host that
# does not answer a SYN only delays the retry.
MAX_CONNECT_SECONDS = 5.0
# urllib3 keeps one connection pool per host: the worker asks only the service's host, the
# spares cost nothing.
POOLS = 4
# A Retry-After is honoured up to this: a job's message is hidden for minutes, not an hour.
MAX_RETRY_AFTER_SECONDS = 30
MAX_BACKOFF_SECONDS = 10
_REASON_CHARS = 300


@dataclass(frozen=True)
class Response:
    status: int
    content_type: str
    body: bytes


class ServiceClient:
    """GETs to one imagor-protocol service. Thread-safe: at most `pool_size` connections per
    host, a thread waiting for a free one rather than opening more."""

    def __init__(self, base_url: str, *, timeout_seconds: float, pool_size: int,
                 retries: int, backoff_seconds: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.where = f"imagorvideo service at {self.base_url}"
        timeout = Timeout(connect=min(MAX_CONNECT_SECONDS, timeout_seconds),
                          read=timeout_seconds)
        self._pool = urllib3.PoolManager(num_pools=POOLS, maxsize=pool_size, block=True,
                                         retries=retry_policy(retries, backoff_seconds),
                                         timeout=timeout)

    def get(self, url: str) -> Response:
        """GET with the pool's retries; the URL never appears in an error."""
        try:
            raw = self._pool.request("GET", url, preload_content=False, redirect=False)
        except URLLib3Error as exc:
            raise EngineUnavailableError(f"{self.where} unreachable: {_reason(exc)}") from None
        try:
            body = self._read_bounded(raw)
        except URLLib3Error as exc:
            raw.close()  # a half-read connection must not go back to the pool
            raise EngineUnavailableError(
                f"{self.where}: answer cut short: {_reason(exc)}") from None
        except BaseException:
            raw.close()
            raise
        raw.release_conn()
        return Response(raw.status, raw.headers.get("Content-Type", ""), body)

    def close(self) -> None:
        self._pool.clear()

    def _read_bounded(self, raw: Any) -> bytes:
        chunks, total = [], 0
        for chunk in raw.stream(READ_CHUNK_BYTES):
            total += len(chunk)
            if total > MAX_RESPONSE_BYTES:
                raise ConfigurationError(
                    f"{self.where} answered with more than {MAX_RESPONSE_BYTES} bytes; a "
                    "thumbnail is never that large")
            chunks.append(chunk)
        return b"".join(chunks)


def retry_policy(retries: int, backoff_seconds: float) -> Retry:
    """Bounded retries of a GET on connection errors, timeouts, 408, 429 and 5xx, with
    exponential backoff (and jitter where urllib3 offers it). After the last try the answer is
    returned, not raised, so its status can be mapped."""
    options: dict[str, Any] = {
        "total": retries, "connect": retries, "read": retries, "status": retries,
        "redirect": 0, "status_forcelist": RETRIED_STATUSES,
        "allowed_methods": frozenset({"GET"}), "backoff_factor": backoff_seconds,
        "raise_on_status": False, "raise_on_redirect": False,
    }
    accepted = inspect.signature(Retry.__init__).parameters
    if "retry_after_max" in accepted:  # recent urllib3 caps Retry-After itself
        options |= {"respect_retry_after_header": True,
                    "retry_after_max": MAX_RETRY_AFTER_SECONDS}
    else:
        options["respect_retry_after_header"] = False
    if "backoff_jitter" in accepted:  # urllib3 2
        options |= {"backoff_jitter": backoff_seconds, "backoff_max": MAX_BACKOFF_SECONDS}
    return Retry(**options)


def _reason(exc: Exception) -> str:
    """What went wrong, without the request URL that urllib3 puts in its messages."""
    reason = getattr(exc, "reason", None) or exc
    text = str(reason)
    if ": " in text and "object at 0x" in text:
        text = text.split(": ", 1)[1]  # drop "<HTTPConnection object at 0x…>: "
    if "url:" in text:
        text = text.split("url:", 1)[0].rstrip(" (")
    return f"{type(reason).__name__}: {text}"[:_REASON_CHARS]
