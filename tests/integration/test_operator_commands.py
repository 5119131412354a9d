"""Operator commands end to end: stats, dlq list/redrive/purge, retry --failed, backfill."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from media_worker.repository.port import NewMedia
from media_worker.types import MediaStatus
from tests.integration.deployments import Deployment

pytestmark = pytest.mark.services


def poison(deployment: Deployment) -> None:
    with deployment.components() as components:
        components.queue.send("this is not json")
    deployment.drain()


def depth(deployment: Deployment) -> tuple[int, int | None]:
    with deployment.components() as components:
        current = components.queue.depth()
    return current.visible, current.dead_letter


def test_dlq_list_shows_the_poison_message_and_why(deployment: Deployment) -> None:
    poison(deployment)
    result = deployment.command("dlq", "list")
    assert result.returncode == 0, result.stderr
    assert "this is not json" in result.stdout
    assert "not JSON" in result.stdout


def test_dlq_redrive_moves_dead_letters_back(deployment: Deployment) -> None:
    poison(deployment)
    result = deployment.command("dlq", "redrive", "--yes")
    assert result.returncode == 0, result.stderr
    assert "redrive: 1 message" in result.stdout
    assert depth(deployment) == (1, 0)


def test_dlq_purge_deletes_dead_letters(deployment: Deployment) -> None:
    poison(deployment)
    assert deployment.command("dlq", "purge", "--yes").returncode == 0
    assert depth(deployment) == (0, 0)


def test_dlq_purge_without_confirmation_does_nothing(deployment: Deployment) -> None:
    poison(deployment)
    result = deployment.command("dlq", "purge")  # stdin is empty: the answer is no
    assert result.returncode == 1
    assert depth(deployment) == (0, 1)


def test_retry_failed_reprocesses_a_fixed_original(
    deployment: Deployment, corpus: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "upload.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" * 10)
    [media_id] = deployment.enqueue(broken)
    deployment.drain()
    with deployment.components() as components:
        record = components.repository.get(media_id)
        assert record is not None
        assert record.status is MediaStatus.FAILED
        good = corpus / "images" / "orientation" / "Landscape_2.jpg"
        components.storage.upload_file(record.bucket, record.key, good, "image/jpeg")
    result = deployment.command("retry", "--failed", "--since", "1h", "--yes")
    assert result.returncode == 0, result.stderr
    assert "re-queued 1 failed media" in result.stdout
    deployment.drain()
    with deployment.components() as components:
        record = components.repository.get(media_id)
    assert record is not None
    assert (record.status, record.attempts) == (MediaStatus.READY, 1)


def test_backfill_enqueues_pending_rows_that_lost_their_message(
    deployment: Deployment, corpus: Path
) -> None:
    media_id = str(uuid.uuid4())
    bucket = deployment.settings().minio_bucket
    with deployment.components() as components:
        components.storage.ensure_bucket(bucket)
        components.storage.upload_file(bucket, f"uploads/{media_id}.jpg",
                                       corpus / "images" / "camera" / "DSCN0010.jpg",
                                       "image/jpeg")
        components.repository.insert(NewMedia(id=media_id, bucket=bucket,
                                              key=f"uploads/{media_id}.jpg"))
    result = deployment.command("backfill", "--older-than", "0s")
    assert result.returncode == 0, result.stderr
    assert "enqueued 1 pending media" in result.stdout
    deployment.drain()
    with deployment.components() as components:
        record = components.repository.get(media_id)
    assert record is not None
    assert record.status is MediaStatus.READY


def test_stats_reports_counts_queue_and_recent_failures(
    deployment: Deployment, tmp_path: Path
) -> None:
    noise = tmp_path / "noise.bin"
    noise.write_bytes(uuid.uuid4().bytes * 10)
    [media_id] = deployment.enqueue(noise)
    deployment.drain()
    result = deployment.command("stats", "--json")
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert stats["media"]["FAILED"] == 1
    assert stats["queue"]["visible"] == 0
    assert stats["recentFailures"][0]["id"] == media_id
    assert "unsupported" in stats["recentFailures"][0]["error"]


def test_invalid_setting_exits_2_with_one_line(deployment: Deployment) -> None:
    deployment.env["THUMBNAIL_SIZES"] = "small"
    result = deployment.command("run", "--drain")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "THUMBNAIL_SIZES" in result.stderr


def test_run_without_the_table_exits_1_with_one_line_naming_it(
    postgres_url: str, tmp_path: Path,
) -> None:
    deployment = Deployment("no-table", {"DATABASE_URL": postgres_url,
                                         "MEDIA_TABLE": "Upload"}, tmp_path)
    result = deployment.command("run", "--drain", timeout=60)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert '"Upload" does not exist' in lines[0]
    assert "media-worker migrate" in lines[0]
