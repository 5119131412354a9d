"""The status machine of MediaProcessor, one branch per test (ports replaced by fakes)."""

from __future__ import annotations

import json
import time

import pytest
import structlog

from media_worker.config import ThumbnailFormat
from media_worker.engines.port import OutputSpec
from media_worker.errors import (
    CorruptMediaError,
    RepositoryUnavailableError,
    StorageUnavailableError,
)
from media_worker.jobs import InFlightJob
from media_worker.outcomes import Outcome, missing_row_delay, retry_delay
from media_worker.processor import MediaProcessor, ProcessorSettings
from media_worker.queue.port import ReceivedMessage
from media_worker.renditions import Focus
from media_worker.repository.port import Claim, NewMedia
from media_worker.types import MediaStatus, ThumbnailSize
from tests.fakes import (
    FakeEngine,
    FakeQueue,
    FakeRepository,
    FakeStorage,
    new_row,
)

SIZES = ThumbnailSize.parse_list("small:150x150,large:1280x1280")


class World:
    """A processor wired to fakes, plus helpers to deliver messages to it."""

    def __init__(self, **settings: object) -> None:
        self.queue = FakeQueue()
        self.storage = FakeStorage()
        self.repository = FakeRepository()
        self.engine = FakeEngine()
        options = {"sizes": SIZES, "output": OutputSpec(ThumbnailFormat.WEBP, 80),
                   "thumbnail_bucket": "media", "max_attempts": 3} | settings
        self.processor = MediaProcessor(
            repository=self.repository, storage=self.storage, engine=self.engine,
            queue=self.queue, settings=ProcessorSettings(**options),  # type: ignore[arg-type]
            logger=structlog.get_logger("test"),
        )

    def deliver(self, body: str | dict, receive_count: int = 1,
                sent_seconds_ago: float | None = None) -> Outcome:
        text = body if isinstance(body, str) else json.dumps(body)
        sent_at = None if sent_seconds_ago is None else time.time() - sent_seconds_ago
        self.last = ReceivedMessage("msg-1", "receipt-1", text, receive_count, sent_at)
        self.job = InFlightJob(self.last)
        return self.processor.handle(self.job)

    def pending(self) -> str:
        return new_row(self.repository, self.storage)


@pytest.fixture
def world() -> World:
    return World()


def test_pending_row_becomes_ready_with_thumbnails_and_message_deleted(world: World) -> None:
    media_id = world.pending()
    assert world.deliver({"mediaId": media_id, "jobId": "j1"}) is Outcome.READY
    row = world.repository.rows[media_id]
    assert row.status is MediaStatus.READY
    assert [t.size for t in row.thumbnails or []] == ["small", "large"]
    assert row.metadata == {"kind": "image", "width": 4000, "height": 2000, "bytes": 100}
    assert world.queue.deleted == ["msg-1"]


def test_thumbnail_keys_are_deterministic_per_media_and_size(world: World) -> None:
    media_id = world.pending()
    world.deliver({"mediaId": media_id})
    assert world.storage.exists("media", f"thumbnails/{media_id}/small.webp")
    assert world.storage.exists("media", f"thumbnails/{media_id}/large.webp")


def test_recorded_bytes_match_stored_objects(world: World) -> None:
    media_id = world.pending()
    world.deliver({"mediaId": media_id})
    for thumb in world.repository.rows[media_id].thumbnails or []:
        assert thumb.bytes == len(world.storage.read(thumb.bucket, thumb.key))


def test_message_that_is_not_json_is_dead_lettered(world: World) -> None:
    assert world.deliver("{not json") is Outcome.POISON
    assert world.queue.dead_lettered[0][0] == "msg-1"
    assert "not JSON" in world.queue.dead_lettered[0][1]


def test_message_without_media_id_is_dead_lettered(world: World) -> None:
    assert world.deliver({"jobId": "j1"}) is Outcome.POISON
    assert "mediaId" in world.queue.dead_lettered[0][1]


def test_message_that_is_a_json_array_is_dead_lettered(world: World) -> None:
    assert world.deliver("[1, 2]") is Outcome.POISON
    assert world.queue.dead_lettered == [("msg-1", "body is JSON list, not an object")]


def test_unknown_fields_in_a_message_are_ignored(world: World) -> None:
    media_id = world.pending()
    assert world.deliver({"mediaId": media_id, "priority": 9, "extra": {}}) is Outcome.READY


def test_missing_row_past_its_grace_drops_the_message(world: World) -> None:
    assert world.deliver({"mediaId": "nope"}, sent_seconds_ago=121) is Outcome.SKIPPED
    assert world.queue.deleted == ["msg-1"]


def test_missing_row_of_a_message_with_no_sent_time_drops_the_message(world: World) -> None:
    assert world.deliver({"mediaId": "nope"}) is Outcome.SKIPPED
    assert world.queue.deleted == ["msg-1"]


def test_missing_row_within_its_grace_keeps_the_message_for_a_short_look_again(
    world: World,
) -> None:
    assert world.deliver({"mediaId": "nope"}, sent_seconds_ago=1) is Outcome.AWAITING_ROW
    assert world.queue.deleted == []
    assert world.queue.visibility == {"msg-1": 2}
    assert world.job.returns_in == 2


def test_row_committed_after_its_message_is_processed_on_the_next_delivery(
    world: World,
) -> None:
    media_id = "late-row"
    assert world.deliver({"mediaId": media_id}, sent_seconds_ago=1) is Outcome.AWAITING_ROW
    world.storage.objects[("media", "uploads/late")] = b"x" * 100
    world.repository.insert(NewMedia(id=media_id, bucket="media", key="uploads/late"))
    assert world.deliver({"mediaId": media_id}, receive_count=2,
                         sent_seconds_ago=3) is Outcome.READY


def test_missing_row_looks_again_sooner_than_a_redrive_policy_gives_up() -> None:
    delays = [missing_row_delay(count) for count in range(1, 9)]
    assert delays[:5] == [2, 4, 8, 16, 30]
    assert sum(delays[:7]) >= 120  # the default grace is spent within eight receives


def test_ready_row_drops_a_duplicate_message_without_rendering(world: World) -> None:
    media_id = world.pending()
    world.deliver({"mediaId": media_id})
    assert world.deliver({"mediaId": media_id}) is Outcome.SKIPPED
    assert world.engine.calls == 1


def test_row_under_a_live_lease_keeps_the_message_hidden_until_the_lease_can_end(
    world: World,
) -> None:
    media_id = world.pending()
    world.repository.claim(media_id, lease_seconds=20)
    assert world.deliver({"mediaId": media_id}) is Outcome.HELD
    assert world.queue.deleted == []
    assert 20 <= world.queue.visibility["msg-1"] <= 21
    assert world.job.returns_in == world.queue.visibility["msg-1"]


def test_a_duplicate_is_never_hidden_longer_than_a_lease(world: World) -> None:
    media_id = world.pending()
    world.repository.claim(media_id, lease_seconds=3600)
    assert world.deliver({"mediaId": media_id}) is Outcome.HELD
    assert world.queue.visibility["msg-1"] == 300  # the processor's own lease


def test_an_unexpected_error_outside_every_branch_retries_only_that_job(world: World) -> None:
    def broken_claim(*_args: object) -> None:
        raise KeyError("a bug in an adapter")

    world.repository.claim = broken_claim  # type: ignore[method-assign]
    assert world.deliver({"mediaId": world.pending()}) is Outcome.RETRY
    assert "msg-1" in world.queue.visibility
    assert world.queue.deleted == []


def test_an_unexpected_error_after_the_claim_releases_the_row(world: World) -> None:
    media_id = world.pending()

    def broken_complete(*_args: object) -> None:
        raise RuntimeError("unmapped driver error")

    world.repository.complete = broken_complete  # type: ignore[method-assign]
    assert world.deliver({"mediaId": media_id}) is Outcome.RETRY
    row = world.repository.rows[media_id]
    assert row.status is MediaStatus.PENDING
    assert "internal error" in (row.error or "")


def test_corrupt_media_fails_permanently_and_deletes_the_message(world: World) -> None:
    media_id = world.pending()
    world.engine.fail_with = CorruptMediaError("not a JPEG: truncated")
    assert world.deliver({"mediaId": media_id}) is Outcome.FAILED
    row = world.repository.rows[media_id]
    assert (row.status, row.error) == (MediaStatus.FAILED, "not a JPEG: truncated")
    assert world.queue.deleted == ["msg-1"]


def test_missing_original_fails_permanently(world: World) -> None:
    media_id = world.pending()
    world.storage.objects.clear()
    assert world.deliver({"mediaId": media_id}) is Outcome.FAILED
    assert "not found" in (world.repository.rows[media_id].error or "")


def test_original_over_the_byte_limit_fails_before_download() -> None:
    world = World(max_input_bytes=10)
    media_id = world.pending()
    assert world.deliver({"mediaId": media_id}) is Outcome.FAILED
    assert "over the limit" in (world.repository.rows[media_id].error or "")
    assert world.engine.calls == 0


def test_transient_failure_returns_row_to_pending_and_keeps_the_message(world: World) -> None:
    media_id = world.pending()
    world.storage.fail_with = StorageUnavailableError("storage unreachable")
    assert world.deliver({"mediaId": media_id}) is Outcome.RETRY
    row = world.repository.rows[media_id]
    assert (row.status, row.error, row.attempts) == (
        MediaStatus.PENDING, "storage unreachable", 1)
    assert world.queue.deleted == []
    assert world.queue.visibility["msg-1"] >= 1


def test_transient_failure_after_the_last_attempt_fails_for_good(world: World) -> None:
    media_id = world.pending()
    world.storage.fail_with = StorageUnavailableError("storage unreachable")
    outcomes = [world.deliver({"mediaId": media_id}, receive_count=n) for n in (1, 2, 3)]
    assert outcomes == [Outcome.RETRY, Outcome.RETRY, Outcome.GAVE_UP]
    row = world.repository.rows[media_id]
    assert row.status is MediaStatus.FAILED
    assert row.error == "gave up after 3 attempts: storage unreachable"
    assert world.queue.deleted == ["msg-1"]


def test_unexpected_exception_is_retried_as_internal_error(world: World) -> None:
    media_id = world.pending()
    world.engine.fail_with = ZeroDivisionError("boom")
    assert world.deliver({"mediaId": media_id}) is Outcome.RETRY
    assert world.repository.rows[media_id].error == "internal error: boom"


def test_database_down_at_claim_hides_the_message_for_a_backoff(world: World) -> None:
    media_id = world.pending()
    world.repository.fail_with = RepositoryUnavailableError("database unreachable")
    assert world.deliver({"mediaId": media_id}) is Outcome.DEFERRED
    assert world.queue.deleted == []
    assert world.queue.visibility["msg-1"] >= 1


def test_failed_delete_after_ready_keeps_the_row_ready(world: World) -> None:
    from media_worker.errors import QueueUnavailableError

    media_id = world.pending()
    world.queue.fail_with = QueueUnavailableError("sqs down")
    assert world.deliver({"mediaId": media_id}) is Outcome.READY
    assert world.repository.rows[media_id].status is MediaStatus.READY


def test_claim_taken_over_mid_job_writes_nothing_and_keeps_the_message(world: World) -> None:
    media_id = world.pending()
    original_complete = world.repository.complete

    def steal_then_complete(claim: Claim, *args: object) -> bool:
        world.repository.rows[media_id] = world.repository.rows[media_id].model_copy(
            update={"attempts": claim.attempt + 1})
        return original_complete(claim, *args)  # type: ignore[arg-type]

    world.repository.complete = steal_then_complete  # type: ignore[method-assign]
    assert world.deliver({"mediaId": media_id}) is Outcome.LOST
    assert world.repository.rows[media_id].status is MediaStatus.PROCESSING
    assert world.queue.deleted == []


def test_retry_delay_grows_with_receive_count_and_is_capped() -> None:
    assert 5 <= retry_delay(1, base=10, cap=900) <= 10
    assert 20 <= retry_delay(3, base=10, cap=900) <= 40
    assert 450 <= retry_delay(30, base=10, cap=900) <= 900


def test_redelivered_message_counts_toward_backoff(world: World) -> None:
    media_id = world.pending()
    world.storage.fail_with = StorageUnavailableError("down")
    world.deliver({"mediaId": media_id}, receive_count=4)
    assert world.queue.visibility["msg-1"] >= 40  # a first receive would wait 5-10 s


def test_claim_taken_over_during_render_uploads_nothing(world: World) -> None:
    media_id = world.pending()
    original_render = world.engine.render

    def render_then_lose_the_claim(*args: object) -> object:
        row = world.repository.rows[media_id]
        world.repository.rows[media_id] = row.model_copy(update={"attempts": row.attempts + 1})
        return original_render(*args)  # type: ignore[arg-type]

    world.engine.render = render_then_lose_the_claim  # type: ignore[method-assign]
    assert world.deliver({"mediaId": media_id}) is Outcome.LOST
    assert world.storage.list_keys("media", "thumbnails/") == []
    assert world.queue.deleted == []


def test_a_job_picks_its_profiles_sizes() -> None:
    world = World(profiles={"avatar": ThumbnailSize.parse_list("a64:64x64:cover")})
    media_id = world.pending()
    assert world.deliver({"mediaId": media_id, "profile": "avatar"}) is Outcome.READY
    assert [t.size for t in world.repository.rows[media_id].thumbnails or []] == ["a64"]


def test_a_finished_row_records_the_profile_and_focus_it_was_rendered_with() -> None:
    world = World(profiles={"avatar": ThumbnailSize.parse_list("a64:64x64:cover")})
    media_id = world.pending()
    world.deliver({"mediaId": media_id, "profile": "avatar", "focus": {"x": 0.25, "y": 1}})
    metadata = world.repository.rows[media_id].metadata or {}
    assert (metadata["profile"], metadata["focus"]) == ("avatar", {"x": 0.25, "y": 1.0})


def test_a_job_resent_without_its_profile_renders_the_one_its_row_records() -> None:
    world = World(profiles={"avatar": ThumbnailSize.parse_list("a64:64x64:cover")})
    media_id = world.pending()
    row = world.repository.rows[media_id]
    world.repository.rows[media_id] = row.model_copy(
        update={"metadata": {"profile": "avatar", "focus": {"x": 0.1, "y": 0.9}}})
    assert world.deliver({"mediaId": media_id}) is Outcome.READY
    assert [t.size for t in world.repository.rows[media_id].thumbnails or []] == ["a64"]
    assert world.engine.sources[-1].focus == Focus(0.1, 0.9)


def test_an_unknown_profile_fails_the_row_before_downloading(world: World) -> None:
    media_id = world.pending()
    assert world.deliver({"mediaId": media_id, "profile": "x"}) is Outcome.FAILED
    assert world.repository.rows[media_id].error == "unknown thumbnail profile 'x'"
    assert world.engine.calls == 0


def test_an_invalid_focus_fails_the_row_naming_focus(world: World) -> None:
    media_id = world.pending()
    assert world.deliver({"mediaId": media_id, "focus": {"x": 2, "y": 0}}) is Outcome.FAILED
    assert "focus" in (world.repository.rows[media_id].error or "")


def test_the_focus_reaches_the_engine(world: World) -> None:
    media_id = world.pending()
    world.deliver({"mediaId": media_id, "focus": {"x": 0.2, "y": 0.8}})
    assert world.engine.sources[-1].focus == Focus(0.2, 0.8)


def test_an_unexpected_error_on_the_last_attempt_fails_the_row_for_good() -> None:
    world = World(max_attempts=1)
    media_id = world.pending()

    def broken_complete(*_args: object) -> None:
        raise RuntimeError("unmapped driver error")

    world.repository.complete = broken_complete  # type: ignore[method-assign]
    assert world.deliver({"mediaId": media_id}) is Outcome.GAVE_UP
    row = world.repository.rows[media_id]
    assert row.status is MediaStatus.FAILED
    assert "gave up after 1 attempts: internal error" in (row.error or "")
