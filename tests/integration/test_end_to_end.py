"""End to end: files submitted as the API does, drained by the real `media-worker` command.

Each test runs on three deployments: moto S3+SQS with PostgreSQL ("services"), SeaweedFS S3 with
LocalStack SQS and PostgreSQL ("real"), and the embedded default.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from pathlib import Path

import pytest
import pyvips
from PIL import Image, ImageOps

from media_worker.types import MediaRecord, MediaStatus
from tests.integration.deployments import Deployment, log_events

pytestmark = pytest.mark.services


def corpus_files(corpus: Path) -> list[Path]:
    """The issue's set: orientation and camera JPEGs, plus a PNG, a GIF and an H.264 MP4."""
    return [
        *sorted((corpus / "images" / "orientation").glob("*.jpg")),
        *sorted((corpus / "images" / "camera").glob("*.jpg")),
        corpus / "images" / "formats" / "png" / "pil123rgba.png",
        corpus / "images" / "formats" / "gif" / "iss634.gif",
        corpus / "videos" / "sample.mp4",
    ]


def upright_size(path: Path) -> tuple[int, int]:
    """Display size of a still image (EXIF orientation applied), or a video's coded size."""
    if path.suffix == ".mp4":
        return 1080, 720  # sample.mp4: H.264 1080x720, no rotation (MANIFEST.tsv)
    with Image.open(path) as image:
        return ImageOps.exif_transpose(image).size


def rows(deployment: Deployment, ids: list[str]) -> list[MediaRecord]:
    with deployment.components() as components:
        found = [components.repository.get(media_id) for media_id in ids]
    assert all(found)
    return found  # type: ignore[return-value]


def assert_thumbnails_right(deployment: Deployment, record: MediaRecord,
                            original: tuple[int, int]) -> None:
    """Every size present in storage, decodable, inside its box, with the original's aspect."""
    sizes = {size.name: size for size in deployment.settings().thumbnail_sizes}
    assert record.thumbnails is not None
    assert {thumb.size for thumb in record.thumbnails} == set(sizes)
    with deployment.components() as components:
        for thumb in record.thumbnails:
            data = components.storage.read(thumb.bucket, thumb.key)
            image = pyvips.Image.new_from_buffer(data, "")
            box = sizes[thumb.size]
            assert (image.width, image.height) == (thumb.width, thumb.height)
            assert thumb.bytes == len(data)
            scale = min(box.width / original[0], box.height / original[1], 1.0)
            expected = (original[0] * scale, original[1] * scale)
            assert image.width <= box.width
            assert image.height <= box.height
            assert abs(image.width - expected[0]) <= 1, (thumb.size, original)
            assert abs(image.height - expected[1]) <= 1, (thumb.size, original)


def test_corpus_media_become_ready_with_upright_thumbnails(
    deployment: Deployment, corpus: Path
) -> None:
    files = corpus_files(corpus)
    ids = deployment.enqueue(*files)
    deployment.drain()
    for path, record in zip(files, rows(deployment, ids), strict=True):
        assert record.status is MediaStatus.READY, f"{path.name}: {record.error}"
        assert_thumbnails_right(deployment, record, upright_size(path))
        assert (record.metadata or {}).get("width") == upright_size(path)[0], path.name


def test_thumbnail_keys_are_deterministic(deployment: Deployment, corpus: Path) -> None:
    [media_id] = deployment.enqueue(corpus / "images" / "formats" / "png" / "pil123rgba.png")
    deployment.drain()
    [record] = rows(deployment, [media_id])
    assert sorted(t.key for t in record.thumbnails or []) == sorted(
        f"thumbnails/{media_id}/{name}.webp" for name in ("small", "medium", "large"))


def test_video_metadata_has_a_duration(deployment: Deployment, corpus: Path) -> None:
    [media_id] = deployment.enqueue(corpus / "videos" / "sample.mp4")
    deployment.drain()
    [record] = rows(deployment, [media_id])
    assert record.metadata is not None
    assert record.metadata["duration"] == pytest.approx(1.0, abs=0.1)


def test_corrupt_file_fails_with_an_error_and_the_worker_goes_on(
    deployment: Deployment, corpus: Path, tmp_path: Path
) -> None:
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40)
    noise = tmp_path / "noise.png"
    noise.write_bytes(uuid.uuid4().bytes * 500)
    good = corpus / "images" / "orientation" / "Landscape_6.jpg"
    ids = deployment.enqueue(corrupt, noise, good)
    deployment.drain()
    bad_jpeg, bad_noise, fine = rows(deployment, ids)
    assert bad_jpeg.status is MediaStatus.FAILED
    assert bad_jpeg.error
    assert bad_noise.status is MediaStatus.FAILED
    assert "unsupported" in (bad_noise.error or "").lower()
    assert fine.status is MediaStatus.READY
    with deployment.components() as components:
        depth = components.queue.depth()
    assert (depth.visible, depth.in_flight) == (0, 0)


def test_poison_missing_row_and_already_ready_messages_are_removed(
    deployment: Deployment, corpus: Path
) -> None:
    # A job whose row is missing is dropped at once here (waiting for a late row has tests of
    # its own); the default grace would keep the drain waiting two minutes per deployment.
    deployment.env["MISSING_ROW_GRACE_SECONDS"] = "0"
    [media_id] = deployment.enqueue(corpus / "images" / "orientation" / "Portrait_3.jpg")
    deployment.drain()
    with deployment.components() as components:
        for body in ("not json at all", json.dumps({"jobId": "no-media-id"}),
                     json.dumps({"mediaId": str(uuid.uuid4())}),
                     json.dumps({"mediaId": media_id, "jobId": "duplicate"})):
            components.queue.send(body)
    result = deployment.drain()
    with deployment.components() as components:
        depth = components.queue.depth()
        record = components.repository.get(media_id)
    assert (depth.visible, depth.in_flight, depth.dead_letter) == (0, 0, 2)
    assert record is not None
    assert record.status is MediaStatus.READY
    events = Counter(e["event"] for e in log_events(result.stderr))
    assert events["poison message"] == 2
    assert events["no such media row; dropping the message"] == 1
    assert events["already finished; dropping the duplicate message"] == 1


def test_two_workers_on_one_queue_never_both_claim_a_row(
    deployment: Deployment, corpus: Path, tmp_path: Path
) -> None:
    files = sorted((corpus / "images" / "orientation").glob("*.jpg")) * 2
    ids = deployment.enqueue(*files)
    logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]
    workers = [deployment.start("run", "--drain", "--concurrency", "2", log=log) for log in logs]
    for worker in workers:
        assert worker.wait(timeout=600) == 0
    records = rows(deployment, ids)
    assert all(r.status is MediaStatus.READY for r in records)
    assert all(r.attempts == 1 for r in records)
    finished = Counter()
    for log in logs:
        for event in log_events(log.read_text()):
            if event["event"] == "ready":
                finished[event["mediaId"]] += 1
    assert finished == Counter(dict.fromkeys(ids, 1))
    assert all(log_events(log.read_text()) for log in logs)


def test_bucket_holds_exactly_the_expected_thumbnails(
    deployment: Deployment, corpus: Path
) -> None:
    ids = deployment.enqueue(corpus / "images" / "orientation" / "Landscape_1.jpg",
                             corpus / "images" / "orientation" / "Portrait_8.jpg")
    deployment.drain()
    with deployment.components() as components:
        keys = components.storage.list_keys(deployment.settings().minio_bucket, "thumbnails/")
    assert sorted(keys) == sorted(
        f"thumbnails/{i}/{s}.webp" for i in ids for s in ("small", "medium", "large"))
