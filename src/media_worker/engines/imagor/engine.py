"""The remote engine: thumbnails rendered by an imagor-protocol service (imagorvideo, imagor or
Thumbor), one signed GET per size, each answer checked before it is stored.

The parts: `original.py` (the local probe, the process it runs in, and the formats the worker
renders itself: camera RAW and PDF), `url.py` (URLs and signatures), `client.py` (HTTP,
retries), `statuses.py` (what a non-200 means), `answers.py` (what makes a 200 a thumbnail)
and `meta.py` (the service's own /meta).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from media_worker.config import ThumbnailFormat
from media_worker.engines.imagor.answers import check_thumbnail
from media_worker.engines.imagor.client import Response, ServiceClient
from media_worker.engines.imagor.crops import size_request
from media_worker.engines.imagor.meta import metadata_from_meta
from media_worker.engines.imagor.original import (
    RENDERED_BY,
    IsolatedProbe,
    LocalProbe,
    Probe,
    Prober,
    StorageFactory,
    renders_locally,
)
from media_worker.engines.imagor.statuses import FailedRequest, error_for
from media_worker.engines.imagor.url import (
    Filter,
    ImagorParams,
    Signer,
    SignerType,
    UrlBuilder,
    seek_to_time,
)
from media_worker.engines.port import OutputSpec, RenderedThumbnail, RenderResult, SourceMedia
from media_worker.engines.probe import configure_libvips
from media_worker.engines.render_clock import encoding, measured
from media_worker.engines.sniff import MediaKind
from media_worker.engines.video import SEEK_CAP_SECONDS, SEEK_FRACTION, SHORT_CLIP_SECONDS
from media_worker.errors import ConfigurationError, MediaWorkerError
from media_worker.originals import BYTES_READ
from media_worker.types import ThumbnailSize

if TYPE_CHECKING:
    from media_worker.engines.decode_budget import DecodeBudget

Source = Literal["s3", "presigned"]
Presign = Callable[[str, str, int], str]  # (bucket, key, expires_seconds) -> URL
VideoFrameChoice = Callable[[float | None], Filter | None]  # duration (s) -> frame filter

SIGNATURE_PROBE_KEY = ".media-worker/signature-probe-missing-object"
# A presigned URL is minted per job and must outlive every request of that job (sizes x tries
# x the request timeout), and no longer: fifteen minutes.
PRESIGN_SECONDS = 15 * 60


def like_local_engine(duration: float | None) -> Filter | None:
    """The frame choice of the local engine, as an imagorvideo filter: seek to 10% of the
    duration (at most 5 s) and let the service pick the best frame from there. Short clips and
    unknown durations keep imagorvideo's own choice from the start."""
    if duration is None or duration < SHORT_CLIP_SECONDS:
        return None
    return seek_to_time(min(duration * SEEK_FRACTION, SEEK_CAP_SECONDS))


@dataclass(frozen=True)
class _Job:
    """One render: the image path every request uses, and what it is checked against."""

    source: SourceMedia
    probe: Probe
    image: str


class ImagorEngine:
    """ThumbnailEngine over an imagor-protocol HTTP service. Thread-safe: one connection pool
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
        probe_processes: int = 0,
        render_timeout_seconds: float | None = None,
        max_header_pixels: int | None = None,
        budget: DecodeBudget | None = None,
        storage: StorageFactory | None = None,
        video_frame: VideoFrameChoice = like_local_engine,
        service_metadata: bool = False,
        pool_size: int = 10,
        retries: int = 3,
        backoff_seconds: float = 0.5,
    ) -> None:
        """Raises ValueError for a configuration that cannot work (no secret and unsafe not
        allowed, a presigned source without a presigner, a truncation below 17).
        `probe_processes` > 0 probes originals in that many decoder processes (timing out
        with the requests), 0 in the calling process; RAW files and PDFs are rendered there
        (timing out after `render_timeout_seconds`, else with the requests; `budget` is
        DECODE_MEMORY_MB's). `storage` builds, in that process, the storage adapter a
        video's probe reads it in place through (None: every original must be downloaded)."""
        if source == "presigned" and presign is None:
            raise ValueError("IMAGORVIDEO_SOURCE=presigned needs S3-compatible storage to "
                             "presign URLs (set MINIO_ENDPOINT)")
        signer = Signer(secret, signer_type, signer_truncate) if secret else None
        self._urls = UrlBuilder(base_url, signer, allow_unsafe)
        self._client = ServiceClient(base_url, timeout_seconds=timeout_seconds,
                                     pool_size=pool_size, retries=retries,
                                     backoff_seconds=backoff_seconds)
        self._source = source
        self._presign = presign
        configure_libvips()  # answers are decoded here: untrusted loaders stay blocked
        self._video_frame = video_frame
        self._service_metadata = service_metadata
        self._reads_in_place = storage is not None
        limits: dict[str, Any] = {"max_pixels": max_pixels,
                                  "max_video_seconds": max_video_seconds,
                                  "max_header_pixels": max_header_pixels, "budget": budget,
                                  "storage": storage}
        self._prober: Prober = (
            IsolatedProbe(processes=probe_processes, timeout_seconds=timeout_seconds,
                          render_timeout_seconds=render_timeout_seconds, **limits)
            if probe_processes > 0
            else LocalProbe(**limits))

    @property
    def reads_in_place(self) -> bool:
        """Whether originals the processor does not download (videos, PDFs: originals.py) can
        be given: the service fetches each original itself, the probe reads a video through
        a reader of its own and a PDF is rendered locally from one."""
        return self._reads_in_place

    def __repr__(self) -> str:
        return f"ImagorEngine(base_url={self._client.base_url!r}, source={self._source!r})"

    # --- the port ---------------------------------------------------------------------------
    def render(
        self, source: SourceMedia, sizes: list[ThumbnailSize], output: OutputSpec
    ) -> RenderResult:
        """One request per size, in the order given; every answer checked before use. Timed
        as a local render is: the probe is the decode, each request an encode. The row's
        placeholders and pHash come from the answers. A RAW or a PDF is rendered by the local
        engine's own paths instead (original.py says why)."""
        with measured() as timings:
            probe = self._prober.probe(source)
            if renders_locally(probe.media_type):
                return self._rendered_locally(source, sizes, output, probe)
            job = _Job(source, probe, self._image_path(source))
            metadata = dict(probe.metadata) | {RENDERED_BY: "imagorvideo"}
            if self._service_metadata:
                metadata |= metadata_from_meta(self._fetch_meta(job))
            filters = self._filters(output, probe)
            thumbnails = []
            for size in sizes:
                with encoding(size.name):
                    thumbnails.append(self._render_size(job, size, output, filters))
            metadata |= self._prober.facts(thumbnails, output.placeholders)
        return RenderResult(thumbnails, metadata, tuple(timings))

    def _rendered_locally(self, source: SourceMedia, sizes: list[ThumbnailSize],
                          output: OutputSpec, probe: Probe) -> RenderResult:
        """The local engine's thumbnails, timed in its process; what the probe fetched of an
        original read in place counts with what the render fetched."""
        result = self._prober.render(source, sizes, output)
        metadata = {**result.metadata, RENDERED_BY: "local"}
        if BYTES_READ in probe.metadata:
            metadata[BYTES_READ] = (int(metadata.get(BYTES_READ, 0))
                                    + int(probe.metadata[BYTES_READ]))
        return replace(result, metadata=metadata)

    def close(self) -> None:
        """Close the pooled connections and the probe's processes."""
        self._client.close()
        self._prober.close()

    # --- requests ---------------------------------------------------------------------------
    def _image_path(self, source: SourceMedia) -> str:
        """The object key for the service's S3 loader, or a presigned GET URL for its HTTP
        loader (minted per job)."""
        if self._source == "presigned":
            assert self._presign is not None
            return self._presign(source.bucket, source.key, PRESIGN_SECONDS)
        return source.key

    def _filters(self, output: OutputSpec, probe: Probe) -> tuple[Filter, ...]:
        filters = [Filter("format", output.format.value)]
        if output.format is not ThumbnailFormat.PNG:
            filters.append(Filter("quality", str(output.quality)))
        filters.append(Filter("strip_exif"))
        if probe.media_type.kind is MediaKind.VIDEO:
            frame = self._video_frame(probe.duration)
            if frame is not None:
                filters.append(frame)
        return tuple(filters)

    def _render_size(self, job: _Job, size: ThumbnailSize, output: OutputSpec,
                     filters: tuple[Filter, ...]) -> RenderedThumbnail:
        upright = job.probe.candidates[0] if job.probe.candidates else None
        params, crop = size_request(job.image, size, upright, job.source.focus, filters)
        response = self._client.get(self._urls.url(params))
        if response.status != 200:
            raise self._error_for(response, job)
        return check_thumbnail(response, job.probe, size, output, crop)

    def _fetch_meta(self, job: _Job) -> dict[str, Any]:
        response = self._client.get(self._urls.url(ImagorParams(image=job.image, meta=True)))
        if response.status != 200:
            raise self._error_for(response, job)
        try:
            meta = json.loads(response.body)
        except ValueError:
            raise ConfigurationError(
                f"{self._client.where} answered /meta with "
                f"{response.content_type or 'no content type'}, not JSON") from None
        return meta if isinstance(meta, dict) else {}

    # --- errors -----------------------------------------------------------------------------
    def _error_for(self, response: Response, job: _Job) -> MediaWorkerError:
        where = f"s3://{job.source.bucket}/{job.source.key}"
        presigned = self._source == "presigned"
        request = FailedRequest(
            where=self._client.where, what=job.probe.media_type.format.upper(),
            original=f"the presigned URL of {where}" if presigned else where,
            key=None if presigned else job.source.key,
            loads_from=((urlsplit(job.image).netloc or "the storage endpoint") if presigned
                        else f"bucket {job.source.bucket!r}"),
            read_here="width" in job.probe.metadata)
        return error_for(response, request, lambda: self._signature_rejected(job))

    def _signature_rejected(self, job: _Job) -> bool:
        """Ask, signed the same way, for an object that does not exist: a service that
        accepts the signature answers 404 (or at least not 400)."""
        probe = SourceMedia(job.source.path, job.source.bucket, SIGNATURE_PROBE_KEY)
        params = ImagorParams(image=self._image_path(probe), fit_in=True, width=1, height=1)
        return self._client.get(self._urls.url(params)).status in (400, 401, 403)
