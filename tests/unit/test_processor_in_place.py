"""The processor and originals read in place (issue 15): every job reads its original's
head; a video or a PDF the engine reads in place is never downloaded, a still always is."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import structlog

from media_worker.engines.port import OutputSpec, RenderedThumbnail, RenderResult, SourceMedia
from media_worker.errors import OriginalChangedError
from media_worker.jobs import InFlightJob
from media_worker.outcomes import Outcome
from media_worker.processor import MediaProcessor, ProcessorSettings
from media_worker.queue.port import ReceivedMessage
from media_worker.repository.port import NewMedia
from media_worker.types import MediaStatus, ThumbnailSize
from tests.fakes import FakeQueue, FakeRepository, FakeStorage

SIZES = ThumbnailSize.parse_list("small:150x150")
# An MP4's first box (ftyp, brand isom), then media data: sniffed as a video.
VIDEO = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 60_000
STILL = b"\xff\xd8\xff\xe0" + b"\x00" * 50_000
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + b"\x00" * 60_000
READ_BY_ENGINE = 4321


@dataclass
class ReadingEngine:
    """Records what it was given; reports `READ_BY_ENGINE` bytes read for a source it reads in
    place, and checks a local copy exists otherwise; raises `fail_with` when set."""

    sources: list[SourceMedia] = field(default_factory=list)
    copies: list[bytes] = field(default_factory=list)
    fail_with: Exception | None = None

    def render(self, source: SourceMedia, sizes: list[ThumbnailSize],
               output: OutputSpec) -> RenderResult:
        self.sources.append(source)
        if self.fail_with is not None:
            raise self.fail_with
        metadata: dict[str, object] = {"kind": "video" if source.in_place else "image"}
        if source.in_place:
            metadata["bytesRead"] = READ_BY_ENGINE
        else:
            assert isinstance(source.path, Path)
            self.copies.append(source.path.read_bytes())
        thumbs = [RenderedThumbnail(size, 10, 10, "webp", "image/webp", b"t") for size in sizes]
        return RenderResult(thumbs, metadata)

    def close(self) -> None:
        pass


class World:
    def __init__(self, data: bytes, *, in_place: bool = True) -> None:
        self.storage, self.repository = FakeStorage(), FakeRepository()
        self.engine = ReadingEngine()
        self.storage.objects[("media", "uploads/m1")] = data
        self.repository.insert(NewMedia(id="m1", bucket="media", key="uploads/m1"))
        settings = ProcessorSettings(sizes=SIZES, output=OutputSpec(), thumbnail_bucket="media",
                                     max_read_bytes=12345, read_in_place=in_place,
                                     max_input_bytes=100_000)
        self.processor = MediaProcessor(repository=self.repository, storage=self.storage,
                                        engine=self.engine, queue=FakeQueue(),
                                        settings=settings, logger=structlog.get_logger("test"))

    def deliver(self) -> Outcome:
        self.job = InFlightJob(ReceivedMessage("msg-1", "r-1", '{"mediaId": "m1"}', 1, None))
        return self.processor.handle(self.job)


def test_a_video_the_engine_reads_in_place_is_not_downloaded() -> None:
    world = World(VIDEO)
    assert world.deliver() is Outcome.READY
    (source,) = world.engine.sources
    assert (source.path, source.bucket, source.key, source.max_read_bytes) == (
        None, "media", "uploads/m1", 12345)
    assert "download" not in world.job.stages
    assert "read" in world.job.stages


def test_a_video_over_max_input_bytes_is_rendered_in_place() -> None:
    world = World(VIDEO + b"\x00" * 200_000)  # past max_input_bytes (100,000)
    assert world.deliver() is Outcome.READY
    assert world.repository.rows["m1"].status is MediaStatus.READY


def test_the_row_says_the_original_size_and_what_reading_it_fetched() -> None:
    world = World(VIDEO)
    world.deliver()
    metadata = world.repository.rows["m1"].metadata or {}
    assert metadata["bytes"] == len(VIDEO)
    head = 16 * 1024  # the processor's sniff of the head (HEAD_BYTES)
    assert metadata["bytesRead"] == READ_BY_ENGINE + head


def test_a_still_is_downloaded_after_its_head_is_read() -> None:
    world = World(STILL)
    assert world.deliver() is Outcome.READY
    assert world.engine.copies == [STILL]
    assert {"read", "download"} <= set(world.job.stages)


def test_a_still_over_max_input_bytes_fails_before_the_engine() -> None:
    world = World(STILL + b"\x00" * 100_000)
    assert world.deliver() is Outcome.FAILED
    assert "over the limit" in (world.repository.rows["m1"].error or "")
    assert world.engine.sources == []


def test_a_video_is_downloaded_when_the_engine_cannot_read_in_place() -> None:
    world = World(VIDEO, in_place=False)
    assert world.deliver() is Outcome.READY
    assert world.engine.copies == [VIDEO]


def test_an_original_changed_while_read_in_place_is_retried() -> None:
    world = World(VIDEO)
    world.engine.fail_with = OriginalChangedError("the original changed while it was read")
    assert world.deliver() is Outcome.RETRY
    assert world.repository.rows["m1"].status is MediaStatus.PENDING


def test_a_pdf_the_engine_reads_in_place_is_not_downloaded_whatever_its_size() -> None:
    world = World(PDF + b"\x00" * 200_000)  # past max_input_bytes (100,000)
    assert world.deliver() is Outcome.READY
    (source,) = world.engine.sources
    assert (source.path, source.key, source.max_read_bytes) == (None, "uploads/m1", 12345)
    assert "download" not in world.job.stages
    assert (world.repository.rows["m1"].metadata or {})["bytesRead"] == READ_BY_ENGINE + 16 * 1024


def test_a_pdf_is_downloaded_when_the_engine_cannot_read_in_place() -> None:
    world = World(PDF, in_place=False)
    assert world.deliver() is Outcome.READY
    assert world.engine.copies == [PDF]


def test_an_original_of_no_known_type_is_downloaded_for_the_engine_to_explain() -> None:
    world = World(b"\x00garbage" * 1000)
    assert world.deliver() is Outcome.READY  # this engine renders anything
    assert len(world.engine.copies) == 1
