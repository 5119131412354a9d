"""What `events tail` follows without NOTIFY: the outbox (each event once, from now on) and
the table (each row state once), on the real SQLite repository."""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path

from media_worker.events.outbox import EventRecording, Settled
from media_worker.events.tail import follow_outbox, follow_table
from media_worker.repository.port import NewMedia
from media_worker.repository.sqlite import SqliteMediaRepository
from media_worker.types import ThumbnailData

THUMB = ThumbnailData(size="small", width=1, height=1, format="webp", mime_type="image/webp",
                      bucket="b", key="k", bytes=1)


def repository(tmp_path: Path, targets: tuple[str, ...] = ()) -> SqliteMediaRepository:
    repo = SqliteMediaRepository(tmp_path / "media.db", events=EventRecording(targets=targets))
    repo.migrate()
    return repo


def job(repo: SqliteMediaRepository) -> str:
    media_id = str(uuid.uuid4())
    repo.insert(NewMedia(id=media_id, bucket="b", key="k"))
    claim = repo.claim(media_id, 300)
    assert claim is not None
    repo.complete(claim, [THUMB], {})
    return media_id


def test_the_outbox_is_followed_from_now_each_event_once(tmp_path: Path) -> None:
    repo = repository(tmp_path, targets=("webhook", "sqs"))
    job(repo)  # before the tail started: not shown
    outbox = repo.outbox()
    lines = follow_outbox(outbox, interval=0.01, sleep=lambda _s: None)
    gone = outbox.follow(0, 100)
    outbox.settle(Settled(delivered=[e.seq for e in gone]))  # delivered meanwhile
    media_id = job(repo)
    shown = list(itertools.islice(lines, 2))
    assert [(line.event_type, line.media_id, line.status) for line in shown] == [
        ("media.processing", media_id, "PROCESSING"), ("media.ready", media_id, "READY")]
    assert shown[1].detail["thumbnails"] == [THUMB.to_wire()]


def test_the_table_is_followed_each_row_state_once(tmp_path: Path) -> None:
    repo = repository(tmp_path)
    polls = {"n": 0}

    def sleep(_seconds: float) -> None:
        polls["n"] += 1
        if polls["n"] == 1:
            media["id"] = job(repo)

    media: dict[str, str] = {}
    lines = follow_table(repo, interval=0.01, sleep=sleep)
    [line] = list(itertools.islice(lines, 1))
    assert (line.event_type, line.media_id, line.status) == ("media.ready", media["id"],
                                                             "READY")
    assert "media.ready" in line.text()
