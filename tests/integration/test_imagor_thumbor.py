"""The imagorvideo engine against real peers.

- **Thumbor** (PyPI `thumbor`, in its own virtualenv `.venv-thumbor`, made by `make thumbor`)
  speaks imagor's URL and signature protocol. With its HTTP loader reading presigned URLs from
  the moto S3 server, corpus still images go through the real worker pipeline (SQS, S3 and
  PostgreSQL adapters, MediaProcessor, QueuePoller) and end READY with thumbnails Thumbor made.
  A wrong secret ends FAILED as a configuration error on the first attempt.
  Camera RAW files and PDFs, which Thumbor cannot read, end READY with thumbnails the worker
  rendered itself (Thumbor is not asked), or FAILED with the local engine's readable error.
- **A fake imagorvideo** of this file's own (no imagorvideo binary can be installed here): it
  parses and verifies imagor paths (signature, filters) independently of the code under test,
  reads the original from the moto bucket as imagorvideo's S3 loader would, and answers with a
  real frame decoded by PyAV. Scripted answers (406 with a 1x1 pixel, 503, 429, …) prove how
  the engine reads a misbehaving service. Videos go through it: the worker's probe reads them
  in place (nothing downloaded), as the service fetches them itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import os
import posixpath
import re
import subprocess
import threading
import time
import urllib.request
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import av
import boto3
import pytest
import pyvips
import structlog
from PIL import Image, ImageOps

from media_worker.app import Components, build_poller, open_components
from media_worker.app.adapters import build_storage
from media_worker.app.worker import processor_settings
from media_worker.config import Settings, ThumbnailFormat
from media_worker.engines.imagor import ImagorEngine
from media_worker.engines.imagor.url import (
    Filter,
    ImagorParams,
    Signer,
    UrlBuilder,
    frame_at_position,
)
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, RenderResult, SourceMedia
from media_worker.errors import (
    ConfigurationError,
    EngineUnavailableError,
    LimitExceededError,
    UnsupportedMediaError,
)
from media_worker.outcomes import Outcome
from media_worker.repository.port import NewMedia
from media_worker.storage.port import ObjectStorage
from media_worker.storage.s3 import S3Storage
from media_worker.types import MediaRecord, MediaStatus, ThumbnailSize, WorkerQueueMessage
from tests.big_videos import BigVideos, ffmpeg_available, make_big_videos
from tests.conftest import REPO_ROOT, free_port
from tests.unit.raw_fixtures import make_dng, stored

pytestmark = pytest.mark.services

THUMBOR = Path(os.environ.get("MEDIA_WORKER_THUMBOR", REPO_ROOT / ".venv-thumbor/bin/thumbor"))
THUMBOR_SECRET = "thumbor-test-secret-ü"
FAKE_SECRET = "imagorvideo-test-secret"
SIZES = ThumbnailSize.parse_list("small:150x150,medium:480x480,large:1280x1280")
WEBP = OutputSpec(ThumbnailFormat.WEBP, 80)
# A 1x1 transparent GIF, as imagorvideo answers an FFmpeg failure.
FALLBACK_PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAAAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")


# --- a real Thumbor -------------------------------------------------------------------------
@dataclass
class Thumbor:
    url: str
    log: Path

    def render_requests(self) -> list[str]:
        """The paths of every successful render Thumbor logged (Tornado's access log)."""
        lines = self.log.read_text(errors="replace").splitlines()
        return [line for line in lines if "200 GET /" in line and "/fit-in/" in line]


THUMBOR_CONF = """
SECURITY_KEY = {secret!r}
ALLOW_UNSAFE_URL = False
LOADER = 'thumbor.loaders.http_loader'
ALLOWED_SOURCES = ['127.0.0.1']
AUTO_WEBP = False
RESPECT_ORIENTATION = True
ALLOW_ANIMATED_GIFS = False
USE_GIFSICLE_ENGINE = None
STORAGE = 'thumbor.storages.no_storage'
RESULT_STORAGE = None
"""


@pytest.fixture(scope="session")
def thumbor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Thumbor]:
    """Thumbor on a free port, configured as the README tells Thumbor users to."""
    if not THUMBOR.is_file():
        pytest.skip(f"Thumbor not installed at {THUMBOR} (run `make thumbor`)")
    workdir = tmp_path_factory.mktemp("thumbor")
    conf = workdir / "thumbor.conf"
    conf.write_text(THUMBOR_CONF.format(secret=THUMBOR_SECRET))
    port = free_port()
    log = workdir / "thumbor.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [str(THUMBOR), "-p", str(port), "-i", "127.0.0.1", "-c", str(conf), "-l", "info"],
            stdout=handle, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/healthcheck", process, log)
        yield Thumbor(f"http://127.0.0.1:{port}", log)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"thumbor exited with {process.returncode}: {log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"thumbor did not answer {url} within 60 s")


# --- the worker, in-process, on real adapters -----------------------------------------------
@dataclass
class Rig:
    """Settings for real services, and a way to run the worker's pipeline with any engine."""

    settings: Settings
    bucket: str

    def storage(self) -> S3Storage:
        settings = self.settings
        return S3Storage(endpoint_url=settings.minio_endpoint, access_key_id="test",
                         secret_access_key="test", region=settings.minio_region)

    def submit(self, files: dict[str, Path]) -> list[str]:
        """What the API does: store each file under its key, insert PENDING, send a job."""
        ids = []
        with open_components(self.settings, engine=False) as parts:
            parts.storage.ensure_bucket(self.bucket)
            for key, path in files.items():
                media_id = str(uuid.uuid4())
                parts.storage.upload_file(self.bucket, key, path, "application/octet-stream")
                parts.repository.insert(NewMedia(id=media_id, bucket=self.bucket, key=key,
                                                 size=path.stat().st_size))
                message = WorkerQueueMessage(media_id=media_id, bucket=self.bucket, key=key)
                parts.queue.send(json.dumps(message.to_wire()))
                ids.append(media_id)
        return ids

    def drain(self, engine: ImagorEngine,
              wrap: Callable[[ObjectStorage], ObjectStorage] | None = None) -> Counter[Outcome]:
        """Run QueuePoller + MediaProcessor (as `media-worker run --drain`) until empty;
        `wrap` stands in front of the processor's storage (to watch what it fetches)."""
        with open_components(self.settings, engine=False) as parts:
            storage = wrap(parts.storage) if wrap is not None else parts.storage
            components = Components(parts.queue, storage, parts.repository, engine)
            poller = build_poller(self.settings, components, structlog.get_logger("test"),
                                  drain=True)
            return poller.run()

    def rows(self, ids: list[str]) -> list[MediaRecord]:
        with open_components(self.settings, engine=False) as parts:
            found = [parts.repository.get(media_id) for media_id in ids]
        assert all(found)
        return found  # type: ignore[return-value]

    def read(self, bucket: str, key: str) -> bytes:
        storage = self.storage()
        try:
            return storage.read(bucket, key)
        finally:
            storage.close()


@pytest.fixture
def rig(moto_endpoint: str, postgres_url: str, unique_name: str) -> Rig:
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName=unique_name)["QueueUrl"]
    settings = Settings(
        database_url=postgres_url, sqs_queue_url=queue_url, sqs_endpoint=moto_endpoint,
        minio_endpoint=moto_endpoint, minio_access_key="test", minio_secret_key="test",
        minio_bucket=unique_name, aws_access_key_id="test", aws_secret_access_key="test",
        sqs_wait_time_seconds=1, sqs_poll_interval_ms=100, sqs_visibility_timeout=60,
        worker_concurrency=4, max_attempts=3, thumbnail_sizes=SIZES,
    )
    with open_components(settings, engine=False) as parts:
        parts.repository.migrate()
    return Rig(settings, unique_name)


def thumbor_engine(thumbor: Thumbor, rig: Rig, presigner: S3Storage,
                   **options: Any) -> ImagorEngine:
    """The engine on Thumbor, built as the tests need it (with `**in_place(rig)`: as
    build_imagor_engine builds it)."""
    defaults: dict[str, Any] = {
        "base_url": thumbor.url, "secret": THUMBOR_SECRET, "source": "presigned",
        "presign": presigner.presigned_get_url, "timeout_seconds": 30,
        "max_pixels": rig.settings.max_pixels, "pool_size": 4,
    }
    return ImagorEngine(**(defaults | options))


# Still images of the corpus, under keys that need every escaping rule.
def still_images(corpus: Path) -> dict[str, Path]:
    files = [
        *sorted((corpus / "images" / "orientation").glob("*.jpg")),
        corpus / "images" / "formats" / "png" / "pil123rgba.png",
        corpus / "images" / "formats" / "gif" / "iss634.gif",
        corpus / "images" / "formats" / "webp" / "flower.webp",
        corpus / "images" / "formats" / "webp" / "hopper_orientation_6.webp",
    ]
    odd = ["ünïcode dir/", "a #hash/", "what?/", "100% sure/", "plus+sign/", ""]
    return {f"uploads/{odd[i % len(odd)]}{i} {path.name}": path for i, path in enumerate(files)}


def upright_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return ImageOps.exif_transpose(image).size


def assert_fits(record: MediaRecord, original: tuple[int, int], rig: Rig) -> None:
    """Every size stored, decodable, of the recorded size, fitted, never upscaled."""
    boxes = {size.name: size for size in SIZES}
    assert record.thumbnails is not None
    assert {thumb.size for thumb in record.thumbnails} == set(boxes)
    for thumb in record.thumbnails:
        image = pyvips.Image.new_from_buffer(rig.read(thumb.bucket, thumb.key), "")
        box = boxes[thumb.size]
        scale = min(box.width / original[0], box.height / original[1], 1.0)
        assert (image.width, image.height) == (thumb.width, thumb.height)
        assert thumb.format == "webp"
        assert image.get("vips-loader") == "webpload_buffer"
        assert image.width <= box.width
        assert image.height <= box.height
        assert abs(image.width - original[0] * scale) <= 1, (thumb.size, original)
        assert abs(image.height - original[1] * scale) <= 1, (thumb.size, original)


def test_still_images_become_ready_with_thumbnails_made_by_thumbor(
    thumbor: Thumbor, rig: Rig, corpus: Path
) -> None:
    files = still_images(corpus)
    ids = rig.submit(files)
    storage = rig.storage()
    requests_before = len(thumbor.render_requests())
    outcomes = rig.drain(thumbor_engine(thumbor, rig, storage))
    assert outcomes == Counter({Outcome.READY: len(files)})
    for (key, path), record in zip(files.items(), rig.rows(ids), strict=True):
        assert record.status is MediaStatus.READY, f"{key}: {record.error}"
        assert_fits(record, upright_size(path), rig)
        assert (record.metadata or {})["width"] == upright_size(path)[0]
        assert (record.metadata or {})["height"] == upright_size(path)[1]
    # Thumbor rendered every thumbnail: one signed request per size, and its answer is what
    # was stored (the same URL answers the same bytes).
    assert len(thumbor.render_requests()) - requests_before == len(files) * len(SIZES)
    key, path = next(iter(files.items()))
    record = rig.rows(ids[:1])[0]
    small = next(thumb for thumb in record.thumbnails or [] if thumb.size == "small")
    again = _thumbor_render(thumbor, storage.presigned_get_url(rig.bucket, key, 60), SIZES[0])
    assert again == rig.read(small.bucket, small.key)
    storage.close()


def _thumbor_render(thumbor: Thumbor, image_url: str, box: ThumbnailSize) -> bytes:
    params = ImagorParams(image=image_url, fit_in=True, width=box.width, height=box.height,
                          filters=(Filter("format", "webp"), Filter("quality", "80"),
                                   Filter("strip_exif")))
    url = UrlBuilder(thumbor.url, Signer(THUMBOR_SECRET)).url(params)
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def test_service_metadata_from_thumbor_meta(thumbor: Thumbor, rig: Rig, corpus: Path) -> None:
    path = corpus / "images" / "orientation" / "Portrait_6.jpg"
    storage = rig.storage()
    storage.ensure_bucket(rig.bucket)
    storage.upload_file(rig.bucket, "meta/Portrait 6.jpg", path, "image/jpeg")
    engine = thumbor_engine(thumbor, rig, storage, service_metadata=True)
    result = engine.render(SourceMedia(path, rig.bucket, "meta/Portrait 6.jpg"), SIZES[:1], WEBP)
    assert (result.metadata["width"], result.metadata["height"]) == upright_size(path)
    assert result.metadata["pages"] == 1
    engine.close()
    storage.close()


def test_a_wrong_secret_fails_the_row_as_a_configuration_error(
    thumbor: Thumbor, rig: Rig, corpus: Path
) -> None:
    files = {"uploads/photo.jpg": corpus / "images" / "orientation" / "Landscape_3.jpg"}
    ids = rig.submit(files)
    storage = rig.storage()
    outcomes = rig.drain(thumbor_engine(thumbor, rig, storage, secret="not-the-secret"))
    assert outcomes == Counter({Outcome.FAILED: 1})  # permanent: not retried
    record = rig.rows(ids)[0]
    assert record.status is MediaStatus.FAILED
    assert record.attempts == 1
    assert "rejects our signed URLs" in (record.error or "")
    assert "IMAGORVIDEO_SECRET" in (record.error or "")
    assert "not-the-secret" not in (record.error or "")
    storage.close()


def test_thumbor_refuses_unsafe_urls(thumbor: Thumbor, rig: Rig, corpus: Path) -> None:
    path = corpus / "images" / "formats" / "png" / "hopper.png"
    storage = rig.storage()
    storage.ensure_bucket(rig.bucket)
    storage.upload_file(rig.bucket, "hopper.png", path, "image/png")
    engine = thumbor_engine(thumbor, rig, storage, secret=None, allow_unsafe=True)
    with pytest.raises(ConfigurationError, match="rejects our signed URLs"):
        engine.render(SourceMedia(path, rig.bucket, "hopper.png"), SIZES[:1], WEBP)
    storage.close()


def test_unreadable_bytes_are_corrupt_media_not_a_signature_problem(
    thumbor: Thumbor, rig: Rig, tmp_path: Path
) -> None:
    """A bare 400 for a file Thumbor cannot read: the signature probe tells them apart."""
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 64)  # a JPEG signature, then nothing
    storage = rig.storage()
    storage.ensure_bucket(rig.bucket)
    storage.upload_file(rig.bucket, "broken.jpg", path, "image/jpeg")
    engine = thumbor_engine(thumbor, rig, storage)
    with pytest.raises(Exception, match="cannot read this JPEG") as raised:
        engine.render(SourceMedia(path, rig.bucket, "broken.jpg"), SIZES[:1], WEBP)
    assert type(raised.value).__name__ == "CorruptMediaError"
    storage.close()


# --- what Thumbor cannot read: camera RAW and PDF, rendered by the worker ------------------------
class WatchedStorage:
    """The processor's storage, recording which keys it downloaded whole."""

    def __init__(self, inner: ObjectStorage) -> None:
        self._inner = inner
        self.downloaded: list[str] = []

    def download(self, bucket: str, key: str, destination: Path, **options: Any) -> int:
        self.downloaded.append(key)
        return self._inner.download(bucket, key, destination, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def in_place(rig: Rig) -> dict[str, Any]:
    """Engine options as build_imagor_engine gives them: the probe in a decoder process, with
    a storage adapter of its own (built there from the settings) to read originals in place."""
    return {"probe_processes": 1, "storage": partial(build_storage, rig.settings),
            "render_timeout_seconds": 60}


@pytest.fixture(scope="module")
def raw_files(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """DNGs of an upright portrait (Portrait_0.jpg, labelled top, left, right, bottom): one
    stored as a sensor turned a quarter saw it, to demosaic; one with a full-size JPEG
    preview, which covers the largest size."""
    directory = tmp_path_factory.mktemp("raw")
    portrait = pyvips.Image.thumbnail(  # even sides: a Bayer mosaic keeps every pixel
        str(corpus / "images" / "orientation" / "Portrait_0.jpg"), 1600).crop(0, 0, 1066, 1600)
    portrait = portrait.copy_memory()
    portrait.pngsave(str(directory / "portrait.png"))
    return {"portrait": directory / "portrait.png",
            "demosaic": make_dng(directory / "sensor.dng", stored(portrait, 6), orientation=6),
            "preview": make_dng(directory / "preview.dng", portrait, preview=portrait)}


def assert_upright(data: bytes, upright: pyvips.Image) -> None:
    """The thumbnail shows the upright picture, not a turned or mirrored one."""
    thumb = pyvips.Image.new_from_buffer(data, "")

    def off(picture: pyvips.Image) -> float:
        reference = picture.thumbnail_image(thumb.width, height=thumb.height, size="force")
        return float((thumb[:3] - reference[:3]).abs().avg())
    assert off(upright) < 12
    assert off(upright) * 3 < min(off(upright.rot("d180")), off(upright.fliphor()))


def test_raw_files_and_pdfs_are_rendered_by_the_worker_not_sent_to_thumbor(
    thumbor: Thumbor, rig: Rig, corpus: Path, raw_files: dict[str, Path]
) -> None:
    """Thumbor reads neither (Pillow has no RAW or PDF decoder; it took a DNG for a TIFF and
    answered 500). The worker renders them in its decoder process as the local engine does,
    says so in `renderedBy`, and fails the broken ones with the local engine's words."""
    documents, malformed = corpus / "documents", corpus / "images" / "malformed"
    ready = {
        "raw/sensor.dng": raw_files["demosaic"],
        "raw/with preview.dng": raw_files["preview"],
        "docs/minimal.pdf": documents / "pdf" / "minimal-document.pdf",
        "docs/rotated ü.pdf": documents / "pdf" / "habibi-rotated.pdf",
        "photos/Landscape_3.jpg": corpus / "images" / "orientation" / "Landscape_3.jpg",
        "photos/motion.jpg": malformed / "pixel-motion-photo-shortened.jpg",
    }
    failed = {
        "raw/GOPR0024.GPR": (corpus / "images" / "raw" / "GOPR0024.GPR",
                             "unsupported RAW format: GoPro GPR"),
        "raw/IMG_1361.dng": (malformed / "IMG_1361.dng", "all-black picture"),
        "docs/password.pdf": (documents / "malformed" / "libreoffice-writer-password.pdf",
                              "password-protected PDF"),
        # A fine HEIC (a Samsung motion photo) that Thumbor's Pillow cannot read.
        "photos/motion.heic": (corpus / "images" / "camera" / "samsung-one-ui-6.heic",
                               "has no HEIC decoder"),
    }
    files = ready | {key: path for key, (path, _) in failed.items()}
    requests_before = len(thumbor.render_requests())
    records, downloaded = drained_in_place(thumbor, rig, files, len(ready), len(failed))
    # Only the JPEGs reached Thumbor (the HEIC too, which it refused); the RAWs were
    # downloaded, the PDFs read in place.
    assert len(thumbor.render_requests()) - requests_before == 2 * len(SIZES)
    assert sorted(downloaded) == sorted(key for key in files if not key.endswith(".pdf"))
    for key, (_, words) in failed.items():
        assert_failed_readably(records[key], words)
    local = LocalEngine(max_pixels=rig.settings.max_pixels,
                        max_video_seconds=rig.settings.max_video_seconds)
    for key, path in ready.items():
        expected = local.render(SourceMedia(path, rig.bucket, key), SIZES,
                                processor_settings(rig.settings).output)
        assert_rendered_like_the_local_engine(records[key], expected, rig)
    portrait = pyvips.Image.new_from_file(str(raw_files["portrait"]))
    for key, source in (("raw/sensor.dng", "demosaic"),
                        ("raw/with preview.dng", "embedded-preview")):
        metadata = records[key].metadata or {}
        assert metadata["rawSource"] == source
        assert (metadata["width"], metadata["height"]) == (portrait.width, portrait.height)
        large = next(t for t in records[key].thumbnails or [] if t.size == "large")
        assert_upright(rig.read(large.bucket, large.key), portrait)
    motion = (records["photos/motion.jpg"].metadata or {})["motionPhoto"]
    assert (motion["standard"], motion["embedded"]) == ("google", True)
    rotated = records["docs/rotated ü.pdf"].metadata or {}
    assert rotated["pages"] == 4
    assert rotated["width"] > rotated["height"]  # /Rotate 90: shown landscape
    assert rotated["bytesRead"] > 0  # read in place (a 16 KB file: every read fetched it all)


def drained_in_place(thumbor: Thumbor, rig: Rig, files: dict[str, Path], ready: int,
                     failed: int) -> tuple[dict[str, MediaRecord], list[str]]:
    """The rows of `files` after a drain with the engine as build_imagor_engine makes it,
    and the keys the processor downloaded."""
    ids = rig.submit(files)
    storage = rig.storage()
    watched: list[WatchedStorage] = []
    engine = thumbor_engine(thumbor, rig, storage, **in_place(rig))
    try:
        outcomes = rig.drain(engine, wrap=lambda inner: watched.append(WatchedStorage(inner))
                             or watched[-1])
    finally:
        engine.close()
        storage.close()
    assert outcomes == Counter({Outcome.READY: ready, Outcome.FAILED: failed})
    return dict(zip(files, rig.rows(ids), strict=True)), watched[0].downloaded


def assert_failed_readably(record: MediaRecord, words: str) -> None:
    """FAILED on the first attempt with `words`; a service's refusal names the setting."""
    assert record.status is MediaStatus.FAILED, record.key
    assert words in (record.error or ""), (record.key, record.error)
    assert record.attempts == 1  # permanent: not retried
    if "imagorvideo service" in (record.error or ""):
        assert "THUMBNAIL_ENGINE=local" in (record.error or "")


def assert_rendered_like_the_local_engine(record: MediaRecord, expected: RenderResult,
                                          rig: Rig) -> None:
    """A RAW or a PDF: the local engine's very thumbnails and facts. A JPEG: Thumbor's
    thumbnails, with facts read from them (a pHash near the local engine's)."""
    assert record.status is MediaStatus.READY, f"{record.key}: {record.error}"
    metadata = record.metadata or {}
    if expected.metadata["format"] == "jpeg":
        assert metadata["renderedBy"] == "imagorvideo"
        assert metadata["placeholder"]["type"] == "blurhash"
        assert metadata["dominantColor"].startswith("#")
        distance = bin(int(metadata["phash"], 16) ^ int(expected.metadata["phash"], 16))
        assert distance.count("1") <= 6, record.key
        return
    assert metadata["renderedBy"] == "local"
    facts = ("kind", "format", "width", "height", "phash")
    assert {k: metadata[k] for k in facts} == {k: expected.metadata[k] for k in facts}
    stored_thumbs = {thumb.size: rig.read(thumb.bucket, thumb.key)
                     for thumb in record.thumbnails or []}
    assert stored_thumbs == {thumb.size.name: thumb.data for thumb in expected.thumbnails}


# --- a fake imagorvideo -----------------------------------------------------------------------
IMAGOR_PATH = re.compile(
    r"^/(?P<hash>unsafe|[A-Za-z0-9_=-]{9,})/(?P<path>(?P<meta>meta/)?(?:fit-in/)?"
    r"(?:(?P<width>\d+)x(?P<height>\d+)/)?(?:filters:(?P<filters>[^/]*)/)?(?P<image>.+))$"
)


@dataclass
class Seen:
    """One request as the fake service understood it."""

    image: str
    meta: bool
    box: tuple[int, int] | None
    filters: list[str]


@dataclass
class FakeImagorVideo:
    """imagorvideo's URL contract, checked on every request; frames decoded with PyAV."""

    storage: S3Storage
    bucket: str
    secret: str = FAKE_SECRET
    signer_type: str = "sha1"
    truncate: int = 0
    s3_safe_chars: str = "--"  # as the README tells imagorvideo users to run it
    script: deque[tuple[int, str, bytes]] = field(default_factory=deque)
    seen: list[Seen] = field(default_factory=list)

    def answer(self, raw_path: str) -> tuple[int, str, bytes]:
        match = IMAGOR_PATH.match(raw_path)
        if match is None:
            return _json_error(400, "invalid")
        if match["hash"] != self._signature(match["path"]):
            return _json_error(403, "signature mismatch")
        filters = re.findall(r"[a-z_]+\([^)]*\)", match["filters"] or "")
        box = (int(match["width"]), int(match["height"])) if match["width"] else None
        seen = Seen(unquote_plus(match["image"]), bool(match["meta"]), box, filters)
        self.seen.append(seen)
        if self.script and not seen.meta:
            return self.script.popleft()
        try:
            original = self.storage.read(self.bucket, self._loader_key(seen.image))
        except Exception:
            return _json_error(404, "not found")
        return _meta(original) if seen.meta else _render(original, seen)

    def _loader_key(self, image: str) -> str:
        """imagor's S3 loader: the image is cleaned and escaped before the lookup (a space as
        `+`, other bytes as %XX) unless S3_SAFE_CHARS is `--`."""
        if self.s3_safe_chars == "--":
            return image
        safe = set(b"-_.~/!\"()*" + self.s3_safe_chars.encode())
        cleaned = posixpath.normpath(image).strip("/")
        return "".join(chr(b) if chr(b).isascii() and (chr(b).isalnum() or b in safe)
                       else "+" if b == 0x20 else f"%{b:02X}" for b in cleaned.encode())

    def _signature(self, path: str) -> str:
        mac = hmac.new(self.secret.encode(), path.encode(), getattr(hashlib, self.signer_type))
        text = base64.urlsafe_b64encode(mac.digest()).decode()
        return text[: self.truncate] if self.truncate else text


def _json_error(status: int, message: str) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps({"message": message, "status": status}).encode()


def _is_video(data: bytes) -> bool:
    return (data[4:8] == b"ftyp" and data[8:12] != b"avif") or data[:4] == b"\x1a\x45\xdf\xa3"


def _meta(data: bytes) -> tuple[int, str, bytes]:
    """imagorvideo's /meta: the coded size and an EXIF-style orientation."""
    if not _is_video(data):
        image = pyvips.Image.new_from_buffer(data, "")
        orientation = image.get("orientation") if image.get_typeof("orientation") else 1
        body = {"format": "jpeg", "width": image.width, "height": image.height,
                "orientation": orientation}
        return 200, "application/json", json.dumps(body).encode()
    with av.open(_bytes_io(data)) as container:
        stream = container.streams.video[0]
        rotation = round(-(next(container.decode(stream)).rotation or 0)) % 360
        body = {"format": "mp4", "content_type": "video/mp4",
                "orientation": {90: 6, 180: 3, 270: 8}.get(rotation, 1),
                "duration": round(_seconds(container, stream) * 1000),
                "width": stream.codec_context.width, "height": stream.codec_context.height,
                "fps": float(stream.average_rate or 0), "has_video": True,
                "has_audio": bool(container.streams.audio)}
    return 200, "application/json", json.dumps(body).encode()


def _render(data: bytes, seen: Seen) -> tuple[int, str, bytes]:
    formats = [f[7:-1] for f in seen.filters if f.startswith("format(")]
    quality = [f[8:-1] for f in seen.filters if f.startswith("quality(")]
    if formats != ["webp"] or quality != ["80"] or "strip_exif()" not in seen.filters:
        return _json_error(400, f"unexpected filters {seen.filters}")
    assert seen.box is not None
    picture = _frame(data, seen.filters) if _is_video(data) else pyvips.Image.new_from_buffer(
        data, "").autorot()
    fitted = picture.thumbnail_image(seen.box[0], height=seen.box[1], size="down")
    return 200, "image/webp", fitted.webpsave_buffer(Q=80, keep=0)


def _frame(data: bytes, filters: list[str]) -> pyvips.Image:
    """A real frame: at frame(x)/seek(x) when asked, upright as imagorvideo turns it."""
    with av.open(_bytes_io(data)) as container:
        stream = container.streams.video[0]
        wanted = _wanted_time(filters, _seconds(container, stream))
        frame = None
        for frame in container.decode(stream):
            if frame.time is not None and frame.time >= wanted:
                break
        assert frame is not None
        rotation = round(-(frame.rotation or 0)) % 360
        rgb = frame.to_image()  # PIL, RGB
    image = pyvips.Image.new_from_memory(rgb.tobytes(), rgb.width, rgb.height, 3, "uchar")
    return image.rot(f"d{rotation}") if rotation else image


def _seconds(container: Any, stream: Any) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return container.duration / av.time_base


def _wanted_time(filters: list[str], duration: float) -> float:
    for text in filters:
        match = re.fullmatch(r"(?:frame|seek)\(([\d.]+)(s?)\)", text)
        if match:
            value = float(match[1])
            return value if match[2] else value * duration
    return 0.0


def _bytes_io(data: bytes) -> io.BytesIO:
    return io.BytesIO(data)


@pytest.fixture
def fake(moto_endpoint: str, unique_name: str) -> Iterator[tuple[FakeImagorVideo, str]]:
    storage = S3Storage(endpoint_url=moto_endpoint, access_key_id="test",
                        secret_access_key="test")
    storage.ensure_bucket(unique_name)
    service = FakeImagorVideo(storage, unique_name)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, content_type, body = service.answer(self.path)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield service, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    storage.close()


def fake_engine(url: str, **options: Any) -> ImagorEngine:
    defaults: dict[str, Any] = {"base_url": url, "secret": FAKE_SECRET, "source": "s3",
                                "timeout_seconds": 10, "backoff_seconds": 0}
    return ImagorEngine(**(defaults | options))


def put(service: FakeImagorVideo, path: Path, key: str) -> SourceMedia:
    service.storage.upload_file(service.bucket, key, path, "application/octet-stream")
    return SourceMedia(path, service.bucket, key)


def test_video_through_the_worker_with_imagorvideo_urls(
    fake: tuple[FakeImagorVideo, str], rig: Rig, corpus: Path
) -> None:
    """S3 source: the image path is the object key; frames from PyAV; /meta swapped."""
    service, url = fake
    service.bucket = rig.bucket
    files = {
        "videos/sample clip #1.mp4": corpus / "videos" / "sample.mp4",
        "videos/rotated ü.mp4": corpus / "videos" / "video_rotation_90.mp4",
        "videos/bunny.webm": corpus / "videos" / "Big_Buck_Bunny_180_10s.webm",
        "stills/hopper.png": corpus / "images" / "formats" / "png" / "hopper.png",
    }
    ids = rig.submit(files)
    outcomes = rig.drain(fake_engine(url, service_metadata=True))
    assert outcomes == Counter({Outcome.READY: len(files)})
    records = dict(zip(files, rig.rows(ids), strict=True))
    upright = {"videos/sample clip #1.mp4": (1080, 720), "videos/rotated ü.mp4": (60, 100),
               "videos/bunny.webm": (320, 180), "stills/hopper.png": (128, 128)}
    for key, record in records.items():
        assert record.status is MediaStatus.READY, f"{key}: {record.error}"
        metadata = record.metadata or {}
        assert (metadata["width"], metadata["height"]) == upright[key], key
        assert_fits(record, upright[key], rig)
    assert records["videos/rotated ü.mp4"].metadata["orientation"] == 6  # type: ignore[index]
    assert records["videos/bunny.webm"].metadata["duration"] == pytest.approx(10, abs=0.1)  # type: ignore[index]
    # The frame choice of the local engine, as imagorvideo filters: 10% of the duration.
    renders = {seen.image: seen for seen in service.seen if not seen.meta}
    assert "seek(0.1s)" in renders["videos/sample clip #1.mp4"].filters
    assert "seek(1s)" in renders["videos/bunny.webm"].filters
    assert not any(f.startswith(("seek", "frame")) for f in renders["videos/rotated ü.mp4"].filters)
    assert not any(f.startswith(("seek", "frame")) for f in renders["stills/hopper.png"].filters)
    assert sum(seen.meta for seen in service.seen) == len(files)


def test_keys_imagor_s3_loader_would_escape_are_named_in_the_error(
    fake: tuple[FakeImagorVideo, str], corpus: Path
) -> None:
    """With imagor's default S3_SAFE_CHARS a key with a space is looked up as `a+b`: 404."""
    service, url = fake
    service.s3_safe_chars = ""
    plain = put(service, corpus / "images" / "formats" / "png" / "hopper.png", "plain/ok.png")
    assert fake_engine(url).render(plain, SIZES[:1], WEBP).thumbnails[0].width == 128
    spaced = put(service, corpus / "images" / "formats" / "png" / "hopper.png", "my photo.png")
    with pytest.raises(ConfigurationError, match="S3_SAFE_CHARS=--"):
        fake_engine(url).render(spaced, SIZES[:1], WEBP)


def test_a_fixed_frame_filter_reaches_the_service(
    fake: tuple[FakeImagorVideo, str], corpus: Path
) -> None:
    service, url = fake
    source = put(service, corpus / "videos" / "sample.mp4", "clip.mp4")
    engine = fake_engine(url, video_frame=lambda _duration: frame_at_position(0.5))
    result = engine.render(source, SIZES[:1], WEBP)
    assert (result.thumbnails[0].width, result.thumbnails[0].height) == (150, 100)
    assert "frame(0.5)" in service.seen[-1].filters


def test_the_fallback_pixel_of_a_406_is_refused_then_a_retry_succeeds(
    fake: tuple[FakeImagorVideo, str], corpus: Path
) -> None:
    service, url = fake
    source = put(service, corpus / "videos" / "sample.mp4", "clip.mp4")
    service.script.append((406, "image/gif", FALLBACK_PIXEL))
    engine = fake_engine(url)
    with pytest.raises(UnsupportedMediaError, match="HTTP 406"):
        engine.render(source, SIZES[:1], WEBP)
    result = engine.render(source, SIZES[:1], WEBP)
    assert (result.thumbnails[0].width, result.thumbnails[0].height) == (150, 100)


def test_a_fallback_pixel_with_200_is_never_a_thumbnail(
    fake: tuple[FakeImagorVideo, str], corpus: Path
) -> None:
    service, url = fake
    source = put(service, corpus / "videos" / "sample.mp4", "clip.mp4")
    service.script.append((200, "image/webp", pyvips.Image.black(1, 1).webpsave_buffer()))
    with pytest.raises(UnsupportedMediaError, match="1x1 fallback"):
        fake_engine(url).render(source, SIZES[:1], WEBP)


def test_server_errors_and_a_full_queue_are_retried_with_backoff(
    fake: tuple[FakeImagorVideo, str], corpus: Path
) -> None:
    service, url = fake
    source = put(service, corpus / "images" / "formats" / "png" / "hopper.png", "hopper.png")
    service.script.extend([_json_error(503, "busy"), _json_error(429, "queue full")])
    result = fake_engine(url, retries=3).render(source, SIZES[:1], WEBP)
    assert (result.thumbnails[0].width, result.thumbnails[0].height) == (128, 128)
    assert len(service.seen) == 3


def test_errors_that_persist_are_transient_after_bounded_retries(
    fake: tuple[FakeImagorVideo, str], corpus: Path
) -> None:
    service, url = fake
    source = put(service, corpus / "images" / "formats" / "png" / "hopper.png", "hopper.png")
    service.script.extend([_json_error(429, "queue full")] * 5)
    with pytest.raises(EngineUnavailableError, match=r"HTTP 429: queue full"):
        fake_engine(url, retries=2).render(source, SIZES[:1], WEBP)
    assert len(service.seen) == 3


@pytest.mark.parametrize(("answer", "error", "match"), [
    (_json_error(422, "resolution exceeded"), LimitExceededError, "resolution exceeded"),
    (_json_error(406, "unsupported format"), UnsupportedMediaError, "unsupported format"),
    (_json_error(404, "not found"), ConfigurationError, "found no original at s3://"),
    ((200, "text/html", b"<html>hello</html>"), ConfigurationError, "not an image"),
    ((200, "image/png", pyvips.Image.black(150, 150).pngsave_buffer()), ConfigurationError,
     "asked the service for webp, it answered png"),
    ((200, "image/webp", pyvips.Image.black(150, 40).webpsave_buffer()), ConfigurationError,
     "answered 150x40 for the small:150x150 box where 128x128 was expected"),
    ((200, "image/webp", b"RIFF\x00\x00\x00\x00WEBPVP8 broken"), EngineUnavailableError,
     "does not decode"),
])
def test_answers_map_onto_the_error_taxonomy(
    fake: tuple[FakeImagorVideo, str], corpus: Path, answer: tuple[int, str, bytes],
    error: type[Exception], match: str,
) -> None:
    service, url = fake
    source = put(service, corpus / "images" / "formats" / "png" / "hopper.png", "hopper.png")
    service.script.append(answer)
    with pytest.raises(error, match=match):
        fake_engine(url, retries=0).render(source, SIZES[:1], WEBP)


def test_imagor_signature_mismatch_is_a_configuration_error(
    fake: tuple[FakeImagorVideo, str], corpus: Path
) -> None:
    service, url = fake
    source = put(service, corpus / "images" / "formats" / "png" / "hopper.png", "hopper.png")
    with pytest.raises(ConfigurationError, match=r"HTTP 403: signature mismatch.*SECRET"):
        fake_engine(url, secret="wrong").render(source, SIZES[:1], WEBP)


def test_sha512_truncated_signatures_are_accepted(
    fake: tuple[FakeImagorVideo, str], corpus: Path
) -> None:
    service, url = fake
    service.signer_type, service.truncate = "sha512", 40
    source = put(service, corpus / "images" / "formats" / "png" / "hopper.png", "a b/ü#?.png")
    engine = fake_engine(url, signer_type="sha512", signer_truncate=40)
    assert engine.render(source, SIZES[:1], WEBP).thumbnails[0].width == 128
    assert service.seen[-1].image == "a b/ü#?.png"


def test_an_unreachable_service_is_transient_and_says_nothing_secret(corpus: Path) -> None:
    path = corpus / "images" / "formats" / "png" / "hopper.png"
    engine = fake_engine(f"http://127.0.0.1:{free_port()}", source="presigned", retries=1,
                         presign=lambda b, k, s: f"http://127.0.0.1:1/{k}?X-Amz-Signature=SEKRIT")
    with pytest.raises(EngineUnavailableError, match="unreachable") as raised:
        engine.render(SourceMedia(path, "media", "hopper.png"), SIZES[:1], WEBP)
    assert "SEKRIT" not in str(raised.value)
    assert FAKE_SECRET not in str(raised.value)


def test_local_limits_are_checked_before_any_request(
    fake: tuple[FakeImagorVideo, str], corpus: Path
) -> None:
    service, url = fake
    source = put(service, corpus / "images" / "orientation" / "Landscape_1.jpg", "big.jpg")
    with pytest.raises(LimitExceededError, match="MAX_PIXELS"):
        fake_engine(url, max_pixels=1000).render(source, SIZES[:1], WEBP)
    assert service.seen == []


def test_the_local_probe_can_run_in_decoder_processes(
    fake: tuple[FakeImagorVideo, str], corpus: Path
) -> None:
    """The probe decodes untrusted headers and frames: in decoder processes it reads the same
    facts, and its limits still stop the job before any request."""
    service, url = fake
    source = put(service, corpus / "videos" / "video_rotation_90.mp4", "rotated.mp4")
    engine = fake_engine(url, probe_processes=1, timeout_seconds=30)
    try:
        result = engine.render(source, SIZES[:1], WEBP)
        assert (result.metadata["width"], result.metadata["height"]) == (60, 100)
        assert result.metadata["rotation"] == 90
        assert service.seen
    finally:
        engine.close()
    service.seen.clear()
    limited = fake_engine(url, probe_processes=1, timeout_seconds=30, max_pixels=1000)
    try:
        with pytest.raises(LimitExceededError, match="MAX_PIXELS"):
            limited.render(source, SIZES[:1], WEBP)
        assert service.seen == []
    finally:
        limited.close()


# --- videos probed in place (issue 15): the service fetches them, the worker downloads nothing --
@pytest.fixture(scope="module")
def big_videos(tmp_path_factory: pytest.TempPathFactory) -> BigVideos:
    """MP4s of about 16 MB (moov at the end, faststart, fragmented) and a 2-minute WebM."""
    if not ffmpeg_available():
        pytest.skip("needs Debian's ffmpeg")
    return make_big_videos(tmp_path_factory.mktemp("imagor-big-videos"), loops=2, webm_loops=6)


def test_a_video_job_reads_the_original_in_place_and_downloads_nothing(
    fake: tuple[FakeImagorVideo, str], rig: Rig, big_videos: BigVideos, corpus: Path
) -> None:
    """The local probe reads the container's index and first frame through a reader of the
    stored object, in its decoder process; the service is asked as before; a still is still
    downloaded for its probe."""
    service, url = fake
    service.bucket = rig.bucket
    videos = {f"videos/{name}": big_videos[name]
              for name in ("moov-at-end.mp4", "faststart.mp4", "fragmented.mp4", "long.webm")}
    files = videos | {"stills/hopper.png": corpus / "images" / "formats" / "png" / "hopper.png"}
    ids = dict(zip(files, rig.submit(files), strict=True))
    watched: list[WatchedStorage] = []
    engine = fake_engine(url, **in_place(rig))
    try:
        outcomes = rig.drain(engine, wrap=lambda inner: watched.append(WatchedStorage(inner))
                             or watched[-1])
    finally:
        engine.close()
    assert outcomes == Counter({Outcome.READY: len(files)})
    assert watched[0].downloaded == ["stills/hopper.png"]
    records = dict(zip(files, rig.rows(list(ids.values())), strict=True))
    for key, path in videos.items():
        record = records[key]
        assert record.status is MediaStatus.READY, f"{key}: {record.error}"
        metadata = record.metadata or {}
        size = path.stat().st_size
        assert metadata["bytes"] == size
        assert metadata["renderedBy"] == "imagorvideo"
        # The head, the index and the first frame's packets; a fragmented MP4's index is a
        # little of every fragment (the local engine's bound: 2% of the file or 16 MB).
        assert 0 < metadata["bytesRead"] <= max(0.02 * size, 16 * 1024 * 1024), key
        if key != "videos/fragmented.mp4":
            assert metadata["bytesRead"] <= 0.02 * size, (key, metadata["bytesRead"])
        expected = (320, 180) if key.endswith(".webm") else (640, 360)
        assert (metadata["width"], metadata["height"]) == expected
        assert_fits(record, expected, rig)
    assert "bytesRead" not in (records["stills/hopper.png"].metadata or {})
    # The frame choice still comes from the probed duration: 10% of it, at most 5 s.
    renders = {seen.image: seen for seen in service.seen if not seen.meta}
    assert "seek(4s)" in renders["videos/faststart.mp4"].filters
    assert "seek(5s)" in renders["videos/long.webm"].filters


def test_a_video_the_probe_would_read_too_much_of_fails_before_the_service_is_asked(
    fake: tuple[FakeImagorVideo, str], rig: Rig, big_videos: BigVideos
) -> None:
    """MAX_READ_BYTES bounds what the probe fetches, as it bounds the local engine: a
    permanent failure naming the limit, the service never asked."""
    service, url = fake
    service.bucket = rig.bucket
    rig.settings = rig.settings.model_copy(update={"max_read_bytes": 200_000})
    ids = rig.submit({"videos/fragmented.mp4": big_videos["fragmented.mp4"]})
    engine = fake_engine(url, **in_place(rig))
    try:
        outcomes = rig.drain(engine)
    finally:
        engine.close()
    assert outcomes == Counter({Outcome.FAILED: 1})
    record = rig.rows(ids)[0]
    assert record.status is MediaStatus.FAILED
    assert "MAX_READ_BYTES" in (record.error or ""), record.error
    assert record.attempts == 1
    assert service.seen == []
