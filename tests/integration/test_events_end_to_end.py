"""Status events end to end: real `media-worker` processes, a webhook receiver the test runs on
127.0.0.1 (every request checked with `standardwebhooks`' verify), a LISTEN connection, an
SQS FIFO queue on moto, and `media-worker events tail`.

Short intervals keep these quick: the dispatchers look every 50 ms and a webhook attempt gives
up after a second (a lease then lasts 8 s), so a killed worker's events move on soon.
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest

from media_worker.types import MediaStatus
from tests.faults.harness import make_corrupt_jpeg, make_images, wait_until
from tests.integration.deployments import Deployment, log_events
from tests.webhook_receiver import Receiver, webhook_receiver

FAST_EVENTS = {
    "EVENTS_POLL_INTERVAL_MS": "50",
    "EVENTS_WEBHOOK_TIMEOUT_SECONDS": "1",
    "THUMBNAIL_SIZES": "small:96x96",
    "WORKER_CONCURRENCY": "2",
    "RECONCILE_INTERVAL_SECONDS": "0",
}


def with_env(deployment: Deployment, **env: str) -> Deployment:
    return replace(deployment, env=deployment.env | FAST_EVENTS | env)


def with_webhook(deployment: Deployment, receiver: Receiver, **env: str) -> Deployment:
    return with_env(deployment, EVENTS_WEBHOOK_URL=receiver.url,
                    EVENTS_WEBHOOK_SECRET=receiver.secret, **env)


def start_worker(deployment: Deployment, name: str) -> subprocess.Popen[bytes]:
    worker = deployment.start("run", log=deployment.workdir / f"{name}.log")
    wait_until(lambda: "worker started" in _log(deployment, name) or worker.poll() is not None,
               timeout=60, what=f"{name} to start")
    assert worker.poll() is None, _log(deployment, name)
    return worker


def stop_worker(worker: subprocess.Popen[bytes]) -> int:
    worker.send_signal(signal.SIGTERM)
    return worker.wait(timeout=60)


def _log(deployment: Deployment, name: str) -> str:
    path = deployment.workdir / f"{name}.log"
    return path.read_text(errors="replace") if path.exists() else ""


def status_of(deployment: Deployment, media_id: str) -> MediaStatus | None:
    with deployment.components() as components:
        record = components.repository.get(media_id)
    return record.status if record else None


def outbox_rows(deployment: Deployment) -> list[Any]:
    with deployment.components() as components:
        return components.repository.outbox().follow(0, 10_000)


# --- Done when: a worker killed between the status update and the delivery -----------------
@pytest.mark.services
def test_events_of_a_worker_killed_before_delivering_them_arrive_once_after_a_restart(
    services_deployment: Deployment, tmp_path: Path,
) -> None:
    with webhook_receiver("hang") as receiver:
        deployment = with_webhook(services_deployment, receiver)
        [media_id] = deployment.enqueue(*make_images(tmp_path / "media", 1))
        first = start_worker(deployment, "first")
        wait_until(lambda: status_of(deployment, media_id) is MediaStatus.READY, timeout=60,
                   what="the row READY")
        receiver.wait_for(1, timeout=30, accepted=False)  # its event is stuck on the way
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        before_restart = receiver.received()
        assert [e.event_type for e in outbox_rows(deployment)] == ["media.processing",
                                                                  "media.ready"]
        receiver.set_mode("ok")
        second = start_worker(deployment, "second")
        receiver.wait_for(2, timeout=60)
        wait_until(lambda: not outbox_rows(deployment), timeout=30, what="an empty outbox")
        assert stop_worker(second) == 0
        requests = receiver.received()

    accepted = [d for d in requests if d.answer is not None]
    assert [(d.event["type"], d.event["mediaId"]) for d in accepted] == [
        ("media.processing", media_id), ("media.ready", media_id)]
    assert all(d.verified for d in requests)  # standardwebhooks' verify, on every attempt
    per_event = Counter(d.event_id for d in accepted)
    assert per_event == dict.fromkeys(per_event, 1)  # each event accepted exactly once
    ready_id = accepted[1].event_id
    # The ready event waited behind the processing one (same media): it was never attempted
    # before the restart, and once after it. Every earlier attempt was the processing event,
    # with the same id (the receiver's deduplication key), and none came after the acceptance.
    assert [d.event_id for d in requests].count(ready_id) == 1
    assert {d.event_id for d in before_restart} == {accepted[0].event_id}
    assert requests.index(accepted[1]) == len(requests) - 1
    ready = accepted[1].event
    assert ready["status"] == "READY"
    assert [thumb["size"] for thumb in ready["thumbnails"]] == ["small"]


# --- Done when: a LISTEN connection sees every transition --------------------------------------
class Listener:
    """A LISTEN connection collecting every notification in a thread."""

    def __init__(self, url: str, channel: str = "media_status") -> None:
        self.seen: list[dict[str, str]] = []
        self._conn = psycopg.connect(url, autocommit=True)
        self._conn.execute(f"LISTEN {channel}")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for note in self._conn.notifies(timeout=0.2):
                self.seen.append(json.loads(note.payload))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._conn.close()

    def by_media(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = defaultdict(list)
        for note in list(self.seen):
            found[note["id"]].append(note["status"])
        return found


@pytest.fixture
def listener(services_deployment: Deployment) -> Iterator[Listener]:
    listening = Listener(services_deployment.env["DATABASE_URL"])
    yield listening
    listening.close()


def fifo_messages(endpoint: str, queue_url: str, count: int) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    bodies: list[dict[str, Any]] = []

    def more() -> bool:
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                     WaitTimeSeconds=1)
        for message in answer.get("Messages", []):
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(bodies) >= count

    wait_until(more, timeout=60, what=f"{count} messages in the events queue", interval=0)
    return bodies


@pytest.mark.services
def test_a_listener_sees_every_transition_of_fifty_jobs_in_order_per_media(
    services_deployment: Deployment, listener: Listener, tmp_path: Path, moto_endpoint: str,
) -> None:
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    events_queue = sqs.create_queue(QueueName=f"{services_deployment.env['MINIO_BUCKET']}.fifo",
                                    Attributes={"FifoQueue": "true"})["QueueUrl"]
    deployment = with_env(services_deployment, EVENTS_SQS_URL=events_queue)
    files = [*make_images(tmp_path / "media", 48),
             make_corrupt_jpeg(tmp_path / "corrupt-1.jpg"),
             make_corrupt_jpeg(tmp_path / "corrupt-2.jpg")]
    ids = deployment.enqueue(*files)
    deployment.drain()
    expected = {media_id: ["PROCESSING", "READY"] for media_id in ids[:48]} | {
        media_id: ["PROCESSING", "FAILED"] for media_id in ids[48:]}
    wait_until(lambda: sum(map(len, listener.by_media().values())) >= 100, timeout=30,
               what="100 notifications")
    assert listener.by_media() == expected
    # The same transitions reached the FIFO queue, each media's in order (its group).
    received: dict[str, list[str]] = defaultdict(list)
    for event in fifo_messages(moto_endpoint, events_queue, 100):
        received[event["mediaId"]].append(event["status"])
    assert received == expected
    assert outbox_rows(deployment) == []


# --- no job waits for a target -------------------------------------------------------------------
def test_jobs_finish_while_the_webhook_holds_every_delivery(
    embedded_deployment: Deployment, tmp_path: Path,
) -> None:
    with webhook_receiver("hang") as receiver:
        # Each delivery is held far longer than the wait for the jobs below: had a job waited
        # for one, it could not finish in time.
        deployment = with_webhook(embedded_deployment, receiver,
                                  EVENTS_WEBHOOK_TIMEOUT_SECONDS="60")
        images = make_images(tmp_path / "media", 5)
        worker = start_worker(deployment, "worker")
        [first] = deployment.enqueue(images[0])
        receiver.wait_for(1, timeout=30, accepted=False)  # the dispatcher is stuck in it
        others = deployment.enqueue(*images[1:])
        wait_until(lambda: all(status_of(deployment, m) is MediaStatus.READY
                               for m in [first, *others]), timeout=40, what="every row READY")
        held = receiver.received()
        assert stop_worker(worker) == 0
    assert [d.event["type"] for d in held] == ["media.processing"]
    assert len(outbox_rows(deployment)) == 10  # every event still waits for the webhook


# --- retries with backoff, and `events tail` -----------------------------------------------------
def test_a_failing_webhook_is_retried_with_growing_pauses_until_it_takes_the_events(
    embedded_deployment: Deployment, tmp_path: Path,
) -> None:
    with webhook_receiver("fail") as receiver:
        deployment = with_webhook(embedded_deployment, receiver)
        worker = start_worker(deployment, "worker")
        tail = start_tail(deployment, "--count", "2", "--json")
        [media_id] = deployment.enqueue(*make_images(tmp_path / "media", 1))
        receiver.wait_for(3, timeout=60, accepted=False)
        receiver.set_mode("ok")
        receiver.wait_for(2, timeout=60)
        assert stop_worker(worker) == 0
        requests = receiver.received()
        assert tail.wait(timeout=30) == 0
    tailed = printed_lines(deployment)
    failed = [d for d in requests if d.answer == 503]
    accepted = [d for d in requests if d.answer == 204]
    assert len(failed) >= 3
    assert {d.event_id for d in failed} == {accepted[0].event_id}  # the same event, retried
    assert [d.event["type"] for d in accepted] == ["media.processing", "media.ready"]
    pauses = [e for e in log_events(_log(deployment, "worker"))
              if e.get("event") == "status event target failing; pausing it"]
    assert [e["failedWaves"] for e in pauses] == list(range(1, len(pauses) + 1))
    assert all(later["pauseSeconds"] > earlier["pauseSeconds"] - 1  # jitter is below 1 s
               for earlier, later in itertools.pairwise(pauses))
    assert pauses[-1]["pauseSeconds"] >= 2
    assert [json.loads(line)["type"] for line in tailed] == ["media.processing", "media.ready"]
    assert json.loads(tailed[1])["mediaId"] == media_id


@pytest.mark.services
def test_events_tail_prints_each_notified_change(services_deployment: Deployment,
                                                 tmp_path: Path) -> None:
    deployment = with_env(services_deployment)
    tail = start_tail(deployment, "--count", "2", "--seconds", "120")
    assert "(notify)" in _log(deployment, "tail")
    [media_id] = deployment.enqueue(*make_images(tmp_path / "media", 1))
    deployment.drain()
    assert tail.wait(timeout=60) == 0
    assert [line.split()[1:4] for line in printed_lines(deployment)] == [
        ["media.processing", media_id, "PROCESSING"], ["media.ready", media_id, "READY"]]


def start_tail(deployment: Deployment, *args: str) -> subprocess.Popen[bytes]:
    """`media-worker events tail ARGS` in the background, once it follows the events."""
    tail = deployment.start("events", "tail", *args, log=deployment.workdir / "tail.log")
    wait_until(lambda: "following status events" in _log(deployment, "tail")
               or tail.poll() is not None, timeout=30, what="events tail to start")
    assert tail.poll() is None, _log(deployment, "tail")
    return tail


def printed_lines(deployment: Deployment) -> list[str]:
    """What `events tail` printed (its log without its own stderr line)."""
    return [line for line in _log(deployment, "tail").splitlines()
            if line and not line.startswith("media-worker:")]
