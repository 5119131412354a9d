"""End to end: PDFs read in place (issue 15) through `media-worker run --drain`. A 100 MB
scanned catalogue (as written, linearized, with object streams) on SeaweedFS and the embedded
default; a 20 MB one on moto, which loads a whole object for every ranged GET. Each renders the
thumbnails of a local copy, fetches a small part of the file and downloads nothing; stills are
still downloaded whole, bounded by MAX_INPUT_BYTES, which a PDF read in place is not."""

from __future__ import annotations

from pathlib import Path

import pytest
import pyvips

from media_worker.app.worker import processor_settings
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import SourceMedia
from media_worker.types import MediaRecord, MediaStatus
from tests.big_pdfs import make_big_pdfs
from tests.integration.deployments import Deployment, log_events
from tests.unit.test_fidelity import ssim

SIZES = "small:160x160,large:640x640"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def big_pdfs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """200 scanned pages, about 100 MB, in each layout qpdf can make."""
    return make_big_pdfs(tmp_path_factory.mktemp("big-pdfs"), pages=200)


@pytest.fixture(scope="module")
def small_pdfs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """40 scanned pages, about 20 MB."""
    return make_big_pdfs(tmp_path_factory.mktemp("small-pdfs"), pages=40)


@pytest.fixture(params=[pytest.param("real", marks=pytest.mark.services), "embedded"])
def big_deployment(request: pytest.FixtureRequest) -> Deployment:
    return request.getfixturevalue(f"{request.param}_deployment")


@pytest.fixture(params=[pytest.param("services", marks=pytest.mark.services), "embedded"])
def small_deployment(request: pytest.FixtureRequest) -> Deployment:
    return request.getfixturevalue(f"{request.param}_deployment")


def drained(deployment: Deployment, files: list[Path]) -> tuple[list[MediaRecord], list[dict]]:
    """The rows of `files` after a drain, and the worker's `ready` log lines."""
    deployment.env |= {"THUMBNAIL_SIZES": SIZES}
    ids = deployment.enqueue(*files)
    result = deployment.drain()
    with deployment.components() as components:
        records = [components.repository.get(media_id) for media_id in ids]
    ready = [event for event in log_events(result.stdout + result.stderr)
             if event.get("event") == "ready"]
    assert all(records)
    return records, ready  # type: ignore[return-value]


def assert_read_in_place(deployment: Deployment, record: MediaRecord, document: Path,
                         ready: list[dict]) -> None:
    assert record.status is MediaStatus.READY, record.error
    size = document.stat().st_size
    metadata = record.metadata or {}
    assert (metadata["bytes"], metadata["kind"]) == (size, "document")
    assert metadata["bytesRead"] <= 0.05 * size  # the first page's scan and the structure
    (line,) = [event for event in ready if event.get("mediaId") == record.id]
    assert "download" not in line["stages"]
    assert_same_thumbnails(deployment, record, document)


def assert_same_thumbnails(deployment: Deployment, record: MediaRecord, document: Path) -> None:
    """SSIM ≥ 0.99 (byte-identical, in fact) against a render from a local copy."""
    settings = deployment.settings()
    engine = LocalEngine(max_pixels=settings.max_pixels,
                         max_video_seconds=settings.max_video_seconds)
    local = engine.render(SourceMedia(document, "local", document.name),
                          settings.thumbnail_sizes, processor_settings(settings).output)
    expected = {thumb.size.name: thumb.data for thumb in local.thumbnails}
    with deployment.components() as components:
        assert record.thumbnails
        for thumb in record.thumbnails:
            data = components.storage.read(thumb.bucket, thumb.key)
            ours = pyvips.Image.new_from_buffer(data, "")
            theirs = pyvips.Image.new_from_buffer(expected[thumb.size], "")
            assert (ours.width, ours.height) == (theirs.width, theirs.height)
            assert data == expected[thumb.size] or ssim(ours, theirs) >= 0.99, thumb.size


def test_big_pdfs_are_read_in_place_with_the_thumbnails_of_a_local_copy(
        big_deployment: Deployment, big_pdfs: dict[str, Path]) -> None:
    files = list(big_pdfs.values())
    records, ready = drained(big_deployment, files)
    for record, document in zip(records, files, strict=True):
        assert_read_in_place(big_deployment, record, document, ready)


def test_a_pdf_over_max_input_bytes_is_read_in_place_and_a_still_over_it_is_refused(
        small_deployment: Deployment, small_pdfs: dict[str, Path], corpus: Path) -> None:
    small_deployment.env |= {"MAX_INPUT_BYTES": str(MIB)}
    document = small_pdfs["catalogue.pdf"]
    photo = corpus / "images" / "camera" / "HMD_Nokia_8.3_5G.jpg"  # 2.1 MB: a whole download
    (pdf_record, photo_record), ready = drained(small_deployment, [document, photo])
    assert_read_in_place(small_deployment, pdf_record, document, ready)
    assert photo_record.status is MediaStatus.FAILED
    assert f"over the limit of {MIB}" in (photo_record.error or "")


def test_a_pdf_that_makes_the_worker_read_too_much_fails_naming_max_read_bytes(
        small_deployment: Deployment, small_pdfs: dict[str, Path]) -> None:
    small_deployment.env |= {"MAX_READ_BYTES": "300000"}  # less than the first page's scan
    (record,), _ = drained(small_deployment, [small_pdfs["catalogue.pdf"]])
    assert record.status is MediaStatus.FAILED
    assert "MAX_READ_BYTES" in (record.error or "")
    assert record.attempts == 1  # permanent: not retried
