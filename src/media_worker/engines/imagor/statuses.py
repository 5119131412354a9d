"""What a non-200 answer means, in the worker's failure taxonomy.

imagor answers `{"message", "status"}`; Thumbor answers with an empty body. 408/429/5xx were
already retried by the client; what is left maps onto permanent or transient errors here.

A bare 400 is ambiguous: Thumbor sends it both for a signature it rejects and for bytes it
cannot read. The engine then asks once more, signed the same way, for an object that does not
exist: a service that accepts the signature answers that with 404 (or another non-400), one
that rejects it answers 400 again. So a wrong secret becomes a ConfigurationError and an
unreadable file a CorruptMediaError, on evidence rather than a guess.

Not every service decodes every format the worker does (Thumbor's Pillow reads no HEIC or JPEG
XL without plugins, nor an older Pillow AVIF; imagor's libvips no BMP or ICO). When the
service cannot read a file of such a format whose header the worker's own decoders read, the
file is not broken: the error says the service lacks the decoder and names
THUMBNAIL_ENGINE=local, as an unsupported format.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from media_worker.engines.imagor.client import RETRIED_STATUSES, Response
from media_worker.errors import (
    ConfigurationError,
    CorruptMediaError,
    EngineUnavailableError,
    LimitExceededError,
    MediaWorkerError,
    UnsupportedMediaError,
)

# nginx's "client closed request", which a proxy in front of the service may log and answer.
CLIENT_CLOSED_REQUEST = 499
SERVER_ERRORS_FROM = 500
_SIGNATURE_WORDS = ("signature", "hash", "malformed url", "unsafe")
# Keys imagor's S3 loader finds as they are with its default S3_SAFE_CHARS.
_IMAGOR_S3_SAFE_KEY = re.compile(r'^[A-Za-z0-9\-_.~/!"()*]*$')
# Formats some imagor-protocol services cannot decode at all (see the module docstring).
SERVICE_OPTIONAL_FORMATS = frozenset({"HEIC", "AVIF", "JXL", "BMP", "ICO"})
_BODY_CHARS = 2000  # read of an error body: a JSON message fits, an HTML page is not read
_MESSAGE_CHARS = 300  # kept of its message, for the row's error


@dataclass(frozen=True)
class FailedRequest:
    """What an error message says about the request that failed."""

    where: str  # "imagorvideo service at http://…"
    what: str  # the original's format, "JPEG"
    original: str  # the original as the service was told to load it: "s3://bucket/key", …
    key: str | None  # the object key the service's S3 loader looked up; None when presigned
    loads_from: str  # where the service must be allowed to load from: a bucket or a host
    read_here: bool = False  # the worker's own decoders read the original's header


def error_for(response: Response, request: FailedRequest,
              signature_rejected: Callable[[], bool]) -> MediaWorkerError:
    """The worker's error for a non-200 answer; `signature_rejected` asks the service the
    question of the module docstring, for a bare 400."""
    status, message = response.status, error_message(response.body)
    where, what = request.where, request.what
    said = f": {message}" if message else ""
    if status == 400:
        return _bad_request(message, request, signature_rejected)
    if status in (401, 403):
        return ConfigurationError(
            f"{where} refused the request (HTTP {status}{said}); check IMAGORVIDEO_SECRET, "
            "IMAGORVIDEO_SIGNER_TYPE, IMAGORVIDEO_SIGNER_TRUNCATE and the sources the "
            "service may load")
    if status == 404:
        return ConfigurationError(
            f"{where} found no original at {request.original} (HTTP 404{said}), although the "
            f"worker just read it; check the service's loader settings{_key_hint(request)}")
    if status in (406, 415):
        return _no_decoder(request, f"HTTP {status}{said}") or UnsupportedMediaError(
            f"{where} cannot thumbnail this {what} (HTTP {status}{said})")
    if status in (413, 422):
        return LimitExceededError(f"{where} refused this {what} as too large "
                                  f"(HTTP {status}{said})")
    if (status in RETRIED_STATUSES or status >= SERVER_ERRORS_FROM
            or status == CLIENT_CLOSED_REQUEST):
        return EngineUnavailableError(f"{where} failed (HTTP {status}{said})")
    return ConfigurationError(f"{where} answered HTTP {status}{said}; check IMAGORVIDEO_URL")


def _bad_request(message: str, request: FailedRequest,
                 signature_rejected: Callable[[], bool]) -> MediaWorkerError:
    where, what = request.where, request.what
    if any(word in message.lower() for word in _SIGNATURE_WORDS):
        return ConfigurationError(
            f"{where} rejected the URL signature (HTTP 400: {message}); check "
            "IMAGORVIDEO_SECRET, IMAGORVIDEO_SIGNER_TYPE and IMAGORVIDEO_SIGNER_TRUNCATE")
    if message:
        return _no_decoder(request, f"HTTP 400: {message}") or CorruptMediaError(
            f"{where} cannot read this {what} (HTTP 400: {message})")
    if signature_rejected():
        return ConfigurationError(
            f"{where} rejects our signed URLs (HTTP 400 without a reason, for this file "
            "and for a probe of a missing object): check IMAGORVIDEO_SECRET, "
            "IMAGORVIDEO_SIGNER_TYPE, IMAGORVIDEO_SIGNER_TRUNCATE, and that the service "
            f"may load from {request.loads_from}")
    return _no_decoder(request, "HTTP 400") or CorruptMediaError(
        f"{where} cannot read this {what} (HTTP 400)")


def _no_decoder(request: FailedRequest, answer: str) -> UnsupportedMediaError | None:
    """The error for a file of a format the service may not decode at all, which the
    worker's decoders read; None for the others (their failure is the file's)."""
    if not request.read_here or request.what not in SERVICE_OPTIONAL_FORMATS:
        return None
    return UnsupportedMediaError(
        f"{request.where} cannot read this {request.what} ({answer}), whose header the "
        f"worker's own decoders read: the service has no {request.what} decoder (Thumbor "
        "needs plugins for HEIC and JPEG XL; imagor reads no BMP or ICO). Give it one, or "
        "render with THUMBNAIL_ENGINE=local")


def _key_hint(request: FailedRequest) -> str:
    """imagor's S3 loader looks a key up *escaped* (a space as `+`, `ü` as `%C3%BC`) unless
    the service runs with S3_SAFE_CHARS=--: name that when it can be the cause."""
    if request.key is not None and not _IMAGOR_S3_SAFE_KEY.match(request.key):
        return (" (this key has characters imagor's S3 loader escapes before looking it "
                "up: run the service with S3_SAFE_CHARS=--, or use "
                "IMAGORVIDEO_SOURCE=presigned)")
    return ""


def error_message(body: bytes) -> str:
    """The `message` of an imagor error body, or a short plain-text body; "" for none."""
    text = body[:_BODY_CHARS].decode("utf-8", "replace").strip()
    try:
        parsed = json.loads(text) if text.startswith("{") else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        return " ".join(str(parsed.get("message", "")).split())[:_MESSAGE_CHARS]
    if text and not text.startswith("<") and len(text) <= _MESSAGE_CHARS:
        return " ".join(text.split())
    return ""
