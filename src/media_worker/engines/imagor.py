"""The remote engine: thumbnails rendered by an imagor-protocol service (imagorvideo, imagor or
Thumbor), one signed GET per size.

What stays in the worker, and why:

- **A light local probe** of the original it has already downloaded (sniffed type, then only
  the header: libvips or Pillow for images, the container and first frame via PyAV for video).
  It enforces MAX_PIXELS / MAX_VIDEO_SECONDS before the service is bothered, refuses audio-only
  files as the local engine does, gives the row its metadata and tells what size each answer
  must have. A header it cannot read does not fail the job: the service has the last word.
- **Checking every answer.** A 200 is not a thumbnail until it is an image of the requested
  format that decodes and fits its box at the expected size. imagorvideo answers an FFmpeg
  failure with a 1x1 fallback pixel; that is refused, never stored.
- **Reading errors.** imagor answers `{"message", "status"}`; Thumbor answers with an empty
  body. Statuses map onto the worker's taxonomy (see `_error_for`); 408/429/5xx and connection
  errors are retried here with backoff (urllib3's Retry, bounded), then reported as transient.

A bare 400 is ambiguous: Thumbor sends it both for a signature it rejects and for bytes it
cannot read. The engine then asks once more, signed the same way, for an object that does not
exist: a service that accepts the signature answers that with 404 (or another non-400), one
that rejects it answers 400 again. So a wrong secret becomes a ConfigurationError and an
unreadable file a CorruptMediaError, on evidence rather than a guess.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import av
import pyvips
import urllib3
from PIL import Image
from urllib3.exceptions import HTTPError as URLLib3Error
from urllib3.util import Retry, Timeout

from media_worker.config import ThumbnailFormat
from media_worker.engines.imagor_url import (
    Filter,
    ImagorParams,
    Signer,
    SignerType,
    UrlBuilder,
    seek_to_time,
)
from media_worker.engines.port import (
    OutputSpec,
    RenderedThumbnail,
    RenderResult,
    SourceMedia,
)
from media_worker.engines.sniff import MediaKind, MediaType, sniff, sniff_bytes
from media_worker.engines.video import SEEK_CAP_SECONDS, SEEK_FRACTION, SHORT_CLIP_SECONDS
from media_worker.errors import (
    ConfigurationError,
    CorruptMediaError,
    EngineUnavailableError,
    LimitExceededError,
    MediaWorkerError,
    UnsupportedMediaError,
)
from media_worker.types import ThumbnailSize

Source = Literal["s3", "presigned"]
Presign = Callable[[str, str, int], str]  # (bucket, key, expires_seconds) -> URL
VideoFrameChoice = Callable[[float | None], Filter | None]  # duration (s) -> frame filter

MIME_TYPES = {
    ThumbnailFormat.WEBP: "image/webp", ThumbnailFormat.JPEG: "image/jpeg",
    ThumbnailFormat.AVIF: "image/avif", ThumbnailFormat.PNG: "image/png",
}
RETRIED_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
SIGNATURE_PROBE_KEY = ".media-worker/signature-probe-missing-object"
_SIGNATURE_WORDS = ("signature", "hash", "malformed url", "unsafe")
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})
_PILLOW_NAMES = {"heic": "HEIF", "bmp": "BMP", "ico": "ICO", "jxl": "JXL", "avif": "AVIF"}
_SIZE_TOLERANCE = 1  # pixels: services round a fitted side up or down
# Formats whose header size is the picture a service renders. Not SVG (rasterised at the
# service's density), HEIC/AVIF (crop and rotation boxes libraries honour differently), JXL.
_EXACT_SIZE_FORMATS = frozenset({"jpeg", "png", "gif", "webp", "tiff", "bmp", "ico"})
# Keys imagor's S3 loader finds as they are with its default S3_SAFE_CHARS.
_IMAGOR_S3_SAFE_KEY = re.compile(r'^[A-Za-z0-9\-_.~/!"()*]*$')


def like_local_engine(duration: float | None) -> Filter | None:
    """The frame choice of the local engine, as an imagorvideo filter: seek to 10% of the
    duration (at most 5 s) and let the service pick the best frame from there. Short clips and
    unknown durations keep imagorvideo's own choice from the start."""
    if duration is None or duration < SHORT_CLIP_SECONDS:
        return None
    return seek_to_time(min(duration * SEEK_FRACTION, SEEK_CAP_SECONDS))


# --- what the local probe learns ------------------------------------------------------------
@dataclass(frozen=True)
class Probe:
    """The original as the worker sees it. `candidates` are the (width, height) pictures a
    service may legitimately thumbnail: upright for images; for video also the coded size
    turned upright but without the pixel-aspect stretch, which imagorvideo does not apply."""

    media_type: MediaType
    metadata: dict[str, Any]
    candidates: tuple[tuple[int, int], ...] = ()
    duration: float | None = None


@dataclass(frozen=True)
class _Response:
    status: int
    content_type: str
    body: bytes


@dataclass(frozen=True)
class _Job:
    """One render: the image path every request uses, and what it is checked against."""

    source: SourceMedia
    probe: Probe
    image: str


class ImagorEngine:
    """ThumbnailEngine over an imagor-protocol HTTP service. Thread-safe: one urllib3 pool
    shared by every worker thread, bounded to `pool_size` connections per host."""

    def __init__(
        self,
        *,
        base_url: str,
        secret: str | None,
        signer_type: SignerType = "sha1",
        signer_truncate: int = 0,
        source: Source = "s3",
        presign: Presign | None = None,
        allow_unsafe: bool = False,
        timeout_seconds: float = 30.0,
        max_pixels: int | None = None,
        max_video_seconds: float | None = None,
        strip_icc: bool = False,
        video_frame: VideoFrameChoice = like_local_engine,
        service_metadata: bool = False,
        pool_size: int = 10,
        retries: int = 3,
        backoff_seconds: float = 0.5,
        presign_seconds: int = 900,
        max_response_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        """Raises ValueError for a configuration that cannot work (no secret and unsafe not
        allowed, a presigned source without a presigner, a truncation below 17)."""
        if source == "presigned" and presign is None:
            raise ValueError("IMAGORVIDEO_SOURCE=presigned needs S3-compatible storage to "
                             "presign URLs (set MINIO_ENDPOINT)")
        signer = Signer(secret, signer_type, signer_truncate) if secret else None
        self._urls = UrlBuilder(base_url, signer, allow_unsafe)
        self._base_url = base_url.rstrip("/")
        self._source = source
        self._presign = presign
        self._presign_seconds = presign_seconds
        self._max_pixels = max_pixels
        self._max_video_seconds = max_video_seconds
        self._strip_icc = strip_icc
        self._video_frame = video_frame
        self._service_metadata = service_metadata
        self._max_response_bytes = max_response_bytes
        self._timeout = Timeout(connect=min(5.0, timeout_seconds), read=timeout_seconds)
        self._pool = urllib3.PoolManager(num_pools=4, maxsize=pool_size, block=True,
                                         retries=retry_policy(retries, backoff_seconds),
                                         timeout=self._timeout)
        # As the local engine: loaders libvips marks untrusted never see an upload.
        pyvips.block_untrusted_set(True)
        pyvips.operation_block_set("VipsForeignLoadSvg", False)

    def __repr__(self) -> str:
        return f"ImagorEngine(base_url={self._base_url!r}, source={self._source!r})"

    # --- the port ---------------------------------------------------------------------------
    def render(
        self, source: SourceMedia, sizes: list[ThumbnailSize], output: OutputSpec
    ) -> RenderResult:
        """One request per size, in the order given; every answer checked before use."""
        probe = probe_original(source.path, max_pixels=self._max_pixels,
                               max_video_seconds=self._max_video_seconds)
        job = _Job(source, probe, self._image_path(source))
        metadata = dict(probe.metadata)
        if self._service_metadata:
            metadata |= metadata_from_meta(self._fetch_meta(job))
        filters = self._filters(output, probe)
        thumbnails = [self._render_size(job, size, output, filters) for size in sizes]
        return RenderResult(thumbnails, metadata)

    def close(self) -> None:
        """Close the pooled connections."""
        self._pool.clear()

    # --- requests ---------------------------------------------------------------------------
    def _image_path(self, source: SourceMedia) -> str:
        """The object key for the service's S3 loader, or a presigned GET URL for its HTTP
        loader (minted per job: it must outlive every request of this job, and no longer)."""
        if self._source == "presigned":
            assert self._presign is not None
            return self._presign(source.bucket, source.key, self._presign_seconds)
        return source.key

    def _filters(self, output: OutputSpec, probe: Probe) -> tuple[Filter, ...]:
        filters = [Filter("format", output.format.value)]
        if output.format is not ThumbnailFormat.PNG:
            filters.append(Filter("quality", str(output.quality)))
        filters.append(Filter("strip_exif"))
        if self._strip_icc:
            filters.append(Filter("strip_icc"))
        if probe.media_type.kind is MediaKind.VIDEO:
            frame = self._video_frame(probe.duration)
            if frame is not None:
                filters.append(frame)
        return tuple(filters)

    def _render_size(self, job: _Job, size: ThumbnailSize, output: OutputSpec,
                     filters: tuple[Filter, ...]) -> RenderedThumbnail:
        params = ImagorParams(image=job.image, fit_in=True, width=size.width,
                              height=size.height, filters=filters)
        response = self._get(self._urls.url(params))
        if response.status != 200:
            raise self._error_for(response, job)
        return check_thumbnail(response, job.probe, size, output)

    def _fetch_meta(self, job: _Job) -> dict[str, Any]:
        response = self._get(self._urls.url(ImagorParams(image=job.image, meta=True)))
        if response.status != 200:
            raise self._error_for(response, job)
        try:
            meta = json.loads(response.body)
        except ValueError:
            raise ConfigurationError(
                f"imagorvideo service at {self._base_url} answered /meta with "
                f"{response.content_type or 'no content type'}, not JSON") from None
        return meta if isinstance(meta, dict) else {}

    def _get(self, url: str) -> _Response:
        """GET with the pool's retries; the URL never appears in an error (a presigned one
        carries credentials)."""
        try:
            raw = self._pool.request("GET", url, preload_content=False, redirect=False)
        except URLLib3Error as exc:
            raise EngineUnavailableError(
                f"imagorvideo service at {self._base_url} unreachable: {_reason(exc)}"
            ) from None
        try:
            body = self._read_bounded(raw)
        except URLLib3Error as exc:
            raw.close()  # a half-read connection must not go back to the pool
            raise EngineUnavailableError(
                f"imagorvideo service at {self._base_url}: answer cut short: {_reason(exc)}"
            ) from None
        except BaseException:
            raw.close()
            raise
        raw.release_conn()
        return _Response(raw.status, raw.headers.get("Content-Type", ""), body)

    def _read_bounded(self, raw: Any) -> bytes:
        chunks, total = [], 0
        for chunk in raw.stream(1024 * 1024):
            total += len(chunk)
            if total > self._max_response_bytes:
                raise ConfigurationError(
                    f"imagorvideo service at {self._base_url} answered with more than "
                    f"{self._max_response_bytes} bytes; a thumbnail is never that large")
            chunks.append(chunk)
        return b"".join(chunks)

    # --- errors -----------------------------------------------------------------------------
    def _error_for(self, response: _Response, job: _Job) -> MediaWorkerError:
        """The worker's error for a non-200 answer (see the module docstring for 400)."""
        status, message = response.status, error_message(response.body)
        what = job.probe.media_type.format.upper()
        said = f": {message}" if message else ""
        where = f"imagorvideo service at {self._base_url}"
        if status == 400:
            return self._bad_request(message, job, what)
        if status in (401, 403):
            return ConfigurationError(
                f"{where} refused the request (HTTP {status}{said}); check IMAGORVIDEO_SECRET, "
                "IMAGORVIDEO_SIGNER_TYPE, IMAGORVIDEO_SIGNER_TRUNCATE and the sources the "
                "service may load")
        if status == 404:
            return ConfigurationError(
                f"{where} found no original at {self._describe_source(job)} (HTTP 404{said}), "
                f"although the worker just read it; check the service's loader settings"
                f"{self._key_hint(job)}")
        if status in (406, 415):
            return UnsupportedMediaError(f"{where} cannot thumbnail this {what} "
                                         f"(HTTP {status}{said})")
        if status in (413, 422):
            return LimitExceededError(f"{where} refused this {what} as too large "
                                      f"(HTTP {status}{said})")
        if status in RETRIED_STATUSES or status >= 500 or status == 499:
            return EngineUnavailableError(f"{where} failed (HTTP {status}{said})")
        return ConfigurationError(f"{where} answered HTTP {status}{said}; check IMAGORVIDEO_URL")

    def _bad_request(self, message: str, job: _Job, what: str) -> MediaWorkerError:
        where = f"imagorvideo service at {self._base_url}"
        if any(word in message.lower() for word in _SIGNATURE_WORDS):
            return ConfigurationError(
                f"{where} rejected the URL signature (HTTP 400: {message}); check "
                "IMAGORVIDEO_SECRET, IMAGORVIDEO_SIGNER_TYPE and IMAGORVIDEO_SIGNER_TRUNCATE")
        if message:
            return CorruptMediaError(f"{where} cannot read this {what} (HTTP 400: {message})")
        if self._signature_rejected(job):
            return ConfigurationError(
                f"{where} rejects our signed URLs (HTTP 400 without a reason, for this file "
                "and for a probe of a missing object): check IMAGORVIDEO_SECRET, "
                "IMAGORVIDEO_SIGNER_TYPE, IMAGORVIDEO_SIGNER_TRUNCATE, and that the service "
                f"may load from {self._source_host(job)}")
        return CorruptMediaError(f"{where} cannot read this {what} (HTTP 400)")

    def _signature_rejected(self, job: _Job) -> bool:
        """Ask, signed the same way, for an object that does not exist: a service that
        accepts the signature answers 404 (or at least not 400)."""
        probe = SourceMedia(job.source.path, job.source.bucket, SIGNATURE_PROBE_KEY)
        params = ImagorParams(image=self._image_path(probe), fit_in=True, width=1, height=1)
        return self._get(self._urls.url(params)).status in (400, 401, 403)

    def _describe_source(self, job: _Job) -> str:
        where = f"s3://{job.source.bucket}/{job.source.key}"
        return f"the presigned URL of {where}" if self._source == "presigned" else where

    def _key_hint(self, job: _Job) -> str:
        """imagor's S3 loader looks a key up *escaped* (a space as `+`, `ü` as `%C3%BC`)
        unless the service runs with S3_SAFE_CHARS=--: name that when it can be the cause."""
        if self._source == "s3" and not _IMAGOR_S3_SAFE_KEY.match(job.source.key):
            return (" (this key has characters imagor's S3 loader escapes before looking it "
                    "up: run the service with S3_SAFE_CHARS=--, or use "
                    "IMAGORVIDEO_SOURCE=presigned)")
        return ""

    def _source_host(self, job: _Job) -> str:
        if self._source == "presigned":
            return urlsplit(job.image).netloc or "the storage endpoint"
        return f"bucket {job.source.bucket!r}"


def retry_policy(retries: int, backoff_seconds: float) -> Retry:
    """Bounded retries of a GET on connection errors, timeouts, 408, 429 and 5xx, with
    exponential backoff (and jitter where urllib3 offers it). A Retry-After header is honoured
    up to 30 s only: a job's message is hidden for a few minutes, not for the service's hour.
    After the last try the answer is returned, not raised, so its status can be mapped."""
    options: dict[str, Any] = {
        "total": retries, "connect": retries, "read": retries, "status": retries,
        "redirect": 0, "status_forcelist": RETRIED_STATUSES,
        "allowed_methods": frozenset({"GET"}), "backoff_factor": backoff_seconds,
        "raise_on_status": False, "raise_on_redirect": False,
    }
    accepted = inspect.signature(Retry.__init__).parameters
    if "retry_after_max" in accepted:  # recent urllib3 caps Retry-After itself
        options |= {"respect_retry_after_header": True, "retry_after_max": 30}
    else:
        options["respect_retry_after_header"] = False
    if "backoff_jitter" in accepted:  # urllib3 2
        options |= {"backoff_jitter": backoff_seconds, "backoff_max": 10}
    return Retry(**options)


# --- checking an answer ---------------------------------------------------------------------
def check_thumbnail(response: _Response, probe: Probe, size: ThumbnailSize,
                    output: OutputSpec) -> RenderedThumbnail:
    """The answer as a thumbnail, or the reason it is not one."""
    if not response.content_type.lower().startswith("image/"):
        raise ConfigurationError(
            f"the service answered {size.name} with {response.content_type or 'no content type'}"
            ", not an image; check IMAGORVIDEO_URL")
    _check_format(response.body, output.format)
    width, height = _decoded_size(response.body)
    _check_size(width, height, size, probe)
    return RenderedThumbnail(size=size, width=width, height=height, format=output.format.value,
                             mime_type=MIME_TYPES[output.format], data=response.body)


def _check_format(body: bytes, wanted: ThumbnailFormat) -> None:
    try:
        got = sniff_bytes(body[:4096]).format
    except UnsupportedMediaError:
        got = "unknown bytes"
    if got != wanted.value:
        raise ConfigurationError(f"asked the service for {wanted.value}, it answered {got}")


def _decoded_size(body: bytes) -> tuple[int, int]:
    """Decode every pixel (a truncated answer fails here) and return the first page's size."""
    try:
        image = pyvips.Image.new_from_buffer(body, "", fail_on="error")  # first page only
        image.avg()
    except pyvips.Error as exc:
        detail = (exc.detail or exc.message or "").strip().splitlines()
        raise EngineUnavailableError(
            f"the service's answer does not decode: {detail[0] if detail else 'libvips error'}"
        ) from None
    return image.width, image.height


def _check_size(width: int, height: int, size: ThumbnailSize, probe: Probe) -> None:
    expected = [fit_in(w, h, size) for w, h in probe.candidates]
    if (width, height) == (1, 1) and (1, 1) not in expected:
        raise UnsupportedMediaError(
            f"the service could not render this {probe.media_type.format.upper()}: it answered "
            "with a 1x1 fallback image")
    if width > size.width + _SIZE_TOLERANCE or height > size.height + _SIZE_TOLERANCE:
        raise ConfigurationError(f"the service answered {width}x{height} for the {size} box")
    if expected and not any(_close(width, height, w, h) for w, h in expected):
        wanted = " or ".join(f"{w}x{h}" for w, h in expected)
        raise ConfigurationError(
            f"the service answered {width}x{height} for the {size} box where {wanted} was "
            "expected: it must rotate by EXIF and never upscale (Thumbor: "
            "RESPECT_ORIENTATION = True)")


def fit_in(width: int, height: int, box: ThumbnailSize) -> tuple[int, int]:
    """The size of a `width`x`height` picture fitted inside `box`, never upscaled."""
    scale = min(box.width / width, box.height / height, 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _close(width: int, height: int, want_w: int, want_h: int) -> bool:
    return abs(width - want_w) <= _SIZE_TOLERANCE and abs(height - want_h) <= _SIZE_TOLERANCE


def error_message(body: bytes) -> str:
    """The `message` of an imagor error body, or a short plain-text body; "" for none."""
    text = body[:2000].decode("utf-8", "replace").strip()
    try:
        parsed = json.loads(text) if text.startswith("{") else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        return " ".join(str(parsed.get("message", "")).split())[:300]
    if text and not text.startswith("<") and len(text) <= 300:
        return " ".join(text.split())
    return ""


def _reason(exc: Exception) -> str:
    """What went wrong, without the request URL that urllib3 puts in its messages."""
    reason = getattr(exc, "reason", None) or exc
    text = str(reason)
    if ": " in text and "object at 0x" in text:
        text = text.split(": ", 1)[1]  # drop "<HTTPConnection object at 0x…>: "
    if "url:" in text:
        text = text.split("url:", 1)[0].rstrip(" (")
    return f"{type(reason).__name__}: {text}"[:300]


# --- the service's /meta --------------------------------------------------------------------
def metadata_from_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """Map a /meta answer onto the row's metadata fields.

    imagor and imagorvideo report the *coded* width and height with an EXIF-style
    `orientation`: for 5-8 (a quarter turn) they are swapped to the upright size, as stored
    everywhere else. imagorvideo's `duration` is in milliseconds. Thumbor nests its answer
    under `thumbor.source` and reports the size already upright."""
    thumbor = meta.get("thumbor")
    if isinstance(thumbor, dict):
        return _from_thumbor_meta(thumbor.get("source") or {})
    mapped: dict[str, Any] = {}
    width, height = meta.get("width"), meta.get("height")
    orientation = meta.get("orientation")
    if isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0:
        if orientation in _SWAPPING_ORIENTATIONS:
            width, height = height, width
        mapped |= {"width": width, "height": height}
    if isinstance(orientation, int) and 1 <= orientation <= 8:
        mapped["orientation"] = orientation
    if isinstance(meta.get("duration"), int | float) and meta["duration"] > 0:
        mapped["duration"] = round(meta["duration"] / 1000, 3)
    if isinstance(meta.get("fps"), int | float) and meta["fps"] > 0:
        mapped["frameRate"] = round(float(meta["fps"]), 3)
    for source_key, key in (("has_audio", "hasAudio"), ("has_alpha", "hasAlpha"),
                            ("pages", "pages")):
        if source_key in meta:
            mapped[key] = meta[source_key]
    return mapped


def _from_thumbor_meta(source: dict[str, Any]) -> dict[str, Any]:
    mapped: dict[str, Any] = {}
    if isinstance(source.get("width"), int) and isinstance(source.get("height"), int):
        mapped |= {"width": source["width"], "height": source["height"]}
    if isinstance(source.get("frameCount"), int):
        mapped["pages"] = source["frameCount"]
    return mapped


# --- the local probe ------------------------------------------------------------------------
def probe_original(path: Path, *, max_pixels: int | None = None,
                   max_video_seconds: float | None = None) -> Probe:
    """Type, size and duration of the original from its header (and, for video, its first
    frame's rotation). Raises for audio-only files and exceeded limits only."""
    media_type = sniff(path)
    if media_type.kind is MediaKind.AUDIO:
        raise UnsupportedMediaError(
            f"unsupported media: no video stream ({media_type.format} audio-only file)")
    base = {"kind": media_type.kind.value, "format": media_type.format,
            "mimeType": media_type.mime_type}
    if media_type.kind is MediaKind.VIDEO:
        return _probe_video(path, media_type, base, max_pixels, max_video_seconds)
    return _probe_image(path, media_type, base, max_pixels)


def _probe_image(path: Path, media_type: MediaType, base: dict[str, Any],
                 max_pixels: int | None) -> Probe:
    header = _image_header(path, media_type)
    if header is None:
        return Probe(media_type, base)
    width, height, orientation, has_alpha, pages = header
    if max_pixels is not None and media_type.format != "svg" and width * height > max_pixels:
        raise LimitExceededError(
            f"image is {width}x{height} = {width * height} pixels, over the limit of "
            f"{max_pixels} (MAX_PIXELS)")
    if orientation in _SWAPPING_ORIENTATIONS:
        width, height = height, width
    metadata = base | {"width": width, "height": height, "orientation": orientation,
                       "hasAlpha": has_alpha, "pages": pages}
    if media_type.format not in _EXACT_SIZE_FORMATS:
        return Probe(media_type, metadata)  # only the box and the fallback pixel are checked
    return Probe(media_type, metadata, candidates=((width, height),))


def _image_header(path: Path, media_type: MediaType) -> tuple[int, int, int, bool, int] | None:
    """(width, height, orientation, has_alpha, pages) as stored; None when unreadable."""
    try:
        if media_type.format == "svg":  # from memory: librsvg must not follow linked files
            image = pyvips.Image.new_from_buffer(path.read_bytes(), "", access="sequential")
        else:
            image = pyvips.Image.new_from_file(str(path), access="sequential")
        orientation = int(image.get("orientation")) if image.get_typeof("orientation") else 1
        pages = int(image.get("n-pages")) if image.get_typeof("n-pages") else 1
        # Loaded with the default of one page, so height is the first page's, not the strip's.
        return (image.width, image.height, _valid_orientation(orientation),
                bool(image.hasalpha()), pages)
    except pyvips.Error:
        return _pillow_header(path, media_type)


def _pillow_header(path: Path, media_type: MediaType) -> tuple[int, int, int, bool, int] | None:
    """Formats pyvips-binary has no loader for (HEIC, BMP, ICO, JPEG XL)."""
    _register_pillow_plugins()
    name = _PILLOW_NAMES.get(media_type.format, media_type.format.upper())
    try:
        with Image.open(path, formats=[name]) as opened:
            orientation = opened.getexif().get(0x0112, 1)
            return (opened.width, opened.height,
                    _valid_orientation(orientation if isinstance(orientation, int) else 1),
                    opened.has_transparency_data, getattr(opened, "n_frames", 1))
    except Exception:  # any decoder complaint means "unknown": the service decides
        return None


def _valid_orientation(value: int) -> int:
    return value if 1 <= value <= 8 else 1


@cache
def _register_pillow_plugins() -> None:
    from pillow_heif import register_heif_opener

    register_heif_opener()
    with contextlib.suppress(ImportError):
        import pillow_jxl  # noqa: F401  (registers JPEG XL with Pillow)


def _probe_video(path: Path, media_type: MediaType, base: dict[str, Any],
                 max_pixels: int | None, max_video_seconds: float | None) -> Probe:
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.video:
                raise UnsupportedMediaError(
                    f"unsupported media: no video stream in this {media_type.format.upper()}")
            stream = container.streams.video[0]
            facts = _video_facts(container, stream)
    except av.FFmpegError:
        return Probe(media_type, base)  # FFmpeg cannot open it: let the service say so
    _check_video_limits(facts, max_pixels, max_video_seconds)
    return _video_probe(media_type, base, facts)


@dataclass(frozen=True)
class _VideoFacts:
    width: int
    height: int
    display_width: int
    rotation: int
    duration: float | None
    codec: str
    frame_rate: float | None
    has_audio: bool


def _video_facts(container: Any, stream: Any) -> _VideoFacts:
    width, height = stream.codec_context.width, stream.codec_context.height
    sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
    display_width = round(width * float(sar)) if sar and float(sar) > 1 else width
    rate = stream.guessed_rate or stream.average_rate
    codec = stream.codec_context.codec
    return _VideoFacts(width, height, display_width, _first_frame_rotation(container, stream),
                       _duration(container, stream), codec.canonical_name or codec.name,
                       round(float(rate), 3) if rate else None, bool(container.streams.audio))


def _duration(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _first_frame_rotation(container: Any, stream: Any, max_packets: int = 60) -> int:
    """The display rotation (clockwise degrees) of the first decodable frame; 0 if none."""
    for count, packet in enumerate(container.demux(stream)):
        if count >= max_packets:
            break
        try:
            frames = packet.decode()
        except av.FFmpegError:
            continue
        if frames:
            return round(-(frames[0].rotation or 0)) % 360
    return 0


def _check_video_limits(facts: _VideoFacts, max_pixels: int | None,
                        max_seconds: float | None) -> None:
    if max_pixels is not None and facts.width * facts.height > max_pixels:
        raise LimitExceededError(
            f"video is {facts.width}x{facts.height} = {facts.width * facts.height} pixels per "
            f"frame, over the limit of {max_pixels} (MAX_PIXELS)")
    if max_seconds is not None and facts.duration is not None and facts.duration > max_seconds:
        raise LimitExceededError(
            f"video lasts {facts.duration:.0f} s, over the limit of {max_seconds:g} s "
            "(MAX_VIDEO_SECONDS)")


def _video_probe(media_type: MediaType, base: dict[str, Any], facts: _VideoFacts) -> Probe:
    turned = facts.rotation in (90, 270)
    display = (facts.height, facts.display_width) if turned else (facts.display_width,
                                                                  facts.height)
    coded = (facts.height, facts.width) if turned else (facts.width, facts.height)
    metadata = base | {
        "width": display[0], "height": display[1],
        "duration": round(facts.duration, 3) if facts.duration is not None else None,
        "codec": facts.codec, "frameRate": facts.frame_rate, "rotation": facts.rotation,
        "hasAudio": facts.has_audio,
    }
    # imagorvideo turns by its own reading of the display matrix and ignores the pixel aspect:
    # any of these pictures is a faithful frame; a wrong aspect or a 1x1 pixel is not.
    candidates = tuple(dict.fromkeys((display, coded, display[::-1], coded[::-1])))
    return Probe(media_type, metadata, candidates, facts.duration)
