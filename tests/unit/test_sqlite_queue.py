"""The embedded SQLite queue beyond the shared contract: redrive policy, concurrency across
threads and processes, persistence, and how it fails.

The behaviour both adapters share is in tests/contract/test_queue_contract.py.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pytest

from media_worker.errors import QueueUnavailableError
from media_worker.queue import sqlite as sqlite_module
from media_worker.queue.sqlite import SqliteQueue


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "var" / "queue.db"


def bounce(queue: SqliteQueue) -> int:
    """Receive the one message and hand it straight back; returns its receive count or 0."""
    messages = queue.receive(1, wait_seconds=0)
    for message in messages:
        queue.change_visibility(message, 0)
    return messages[0].receive_count if messages else 0


# --- redrive policy and dead letters -----------------------------------------------------------
def test_a_message_received_more_than_max_receive_count_times_goes_to_dead_letters(
    path: Path,
) -> None:
    queue = SqliteQueue(path, max_receive_count=2)
    message_id = queue.send("loops")

    counts = [bounce(queue) for _ in range(3)]

    assert counts == [1, 2, 0]
    [(dead_id, body, reason)] = queue.dead_letters(10)
    assert (dead_id, body) == (message_id, "loops")
    assert "max_receive_count 2" in reason
    assert queue.depth().dead_letter == 1


def test_messages_past_the_redrive_policy_do_not_shorten_a_batch(path: Path) -> None:
    queue = SqliteQueue(path, max_receive_count=1)
    queue.send("looped")
    bounce(queue)
    queue.send("fresh-1")
    queue.send("fresh-2")

    batch = queue.receive(2, wait_seconds=0)

    assert [m.body for m in batch] == ["fresh-1", "fresh-2"]
    assert [body for _, body, _ in queue.dead_letters(10)] == ["looped"]


def test_a_redriven_message_starts_counting_receives_again(path: Path) -> None:
    queue = SqliteQueue(path, max_receive_count=1)
    queue.send("second chance")
    bounce(queue)
    bounce(queue)  # moves it to the dead letters

    assert queue.redrive_dead_letters() == 1

    assert bounce(queue) == 1
    assert queue.dead_letters(10) == []


def test_dead_letters_are_listed_oldest_first_up_to_the_limit(path: Path) -> None:
    queue = SqliteQueue(path)
    for n in range(3):
        queue.send(f"m{n}")
        queue.dead_letter(queue.receive(1, 0)[0], f"reason {n}")

    listed = queue.dead_letters(2)

    assert [(body, reason) for _, body, reason in listed] == [("m0", "reason 0"),
                                                              ("m1", "reason 1")]
    assert queue.purge_dead_letters() == 3
    assert queue.purge_dead_letters() == 0


# --- receipt handles ----------------------------------------------------------------------------
def test_a_stale_receipt_handle_cannot_delete_the_current_delivery(path: Path) -> None:
    queue = SqliteQueue(path)
    queue.send("job")
    stale = queue.receive(1, 0)[0]
    queue.change_visibility(stale, 0)
    current = queue.receive(1, 0)[0]

    queue.delete(stale)
    queue.dead_letter(stale, "too late")

    assert queue.depth().in_flight == 1
    assert queue.dead_letters(10) == []
    queue.delete(current)
    assert queue.depth().in_flight == 0


def test_a_zero_visibility_timeout_still_delivers_each_message_once_per_receive(
    path: Path,
) -> None:
    queue = SqliteQueue(path, visibility_timeout=0)
    for n in range(3):
        queue.send(f"m{n}")

    batch = queue.receive(10, wait_seconds=0)

    assert [m.body for m in batch] == ["m0", "m1", "m2"]


# --- concurrency --------------------------------------------------------------------------------
def test_concurrent_receivers_in_threads_never_get_the_same_message(path: Path) -> None:
    queues = [SqliteQueue(path, visibility_timeout=60) for _ in range(2)]  # two connections
    sent = {queues[0].send(f"m{n}") for n in range(200)}
    received: list[str] = []
    lock = threading.Lock()

    def drain(queue: SqliteQueue) -> None:
        while batch := queue.receive(3, wait_seconds=0.2):
            with lock:
                received.extend(m.message_id for m in batch)

    threads = [threading.Thread(target=drain, args=(queues[n % 2],)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert Counter(received).most_common(1)[0][1] == 1
    assert set(received) == sent


def _drain_in_process(path: str, start_at: float) -> list[str]:
    """Run in a child process: wait for the common start, then receive and delete all.

    A couple of milliseconds of "work" per message, as a real job has: back-to-back writes
    with none would let one process win SQLite's (unfair) lock over and over.
    """
    queue = SqliteQueue(Path(path), visibility_timeout=60)
    time.sleep(max(0.0, start_at - time.time()))
    taken: list[str] = []
    while batch := queue.receive(5, wait_seconds=0.3):
        for message in batch:
            taken.append(message.message_id)
            time.sleep(0.002)
            queue.delete(message)
    queue.close()
    return taken


def test_several_processes_share_one_queue_file_and_each_message_goes_to_one(
    path: Path,
) -> None:
    queue = SqliteQueue(path)
    sent = {queue.send(f"m{n}") for n in range(150)}
    start_at = time.time() + 1.5  # after every child has imported and opened the queue

    with ProcessPoolExecutor(3, mp_context=get_context("spawn")) as pool:
        results = [pool.submit(_drain_in_process, str(path), start_at) for _ in range(3)]
        taken = [r.result(timeout=60) for r in results]

    everything = [message_id for part in taken for message_id in part]
    assert sorted(everything) == sorted(sent)
    assert sum(1 for part in taken if part) >= 2, "the processes did not overlap"
    assert queue.depth().visible == queue.depth().in_flight == 0


def test_a_long_poll_sees_a_message_sent_by_another_connection(path: Path) -> None:
    receiver, sender = SqliteQueue(path), SqliteQueue(path)
    threading.Timer(0.3, sender.send, args=("from elsewhere",)).start()
    started = time.monotonic()

    batch = receiver.receive(1, wait_seconds=5)

    assert [m.body for m in batch] == ["from elsewhere"]
    assert time.monotonic() - started < 2


# --- the file -----------------------------------------------------------------------------------
def test_opening_creates_missing_directories_and_a_wal_database(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "queue.db"

    SqliteQueue(path).close()

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_messages_and_their_hidden_state_survive_a_reopen(path: Path) -> None:
    first = SqliteQueue(path, visibility_timeout=60)
    first.send("hidden")
    first.send("waiting")
    first.receive(1, 0)
    first.close()

    reopened = SqliteQueue(path, visibility_timeout=60)

    assert [m.body for m in reopened.receive(10, 0)] == ["waiting"]
    assert reopened.depth().in_flight == 2


def test_a_queue_file_from_before_message_attributes_keeps_its_messages_and_gains_them(
    path: Path,
) -> None:
    path.parent.mkdir(parents=True)
    old_schema = sqlite_module.SCHEMA.replace(
        ",\n    attributes     TEXT  -- JSON object of string attributes, NULL when none were sent",
        "")
    assert "attributes" not in old_schema
    with sqlite3.connect(path) as conn:
        conn.executescript(old_schema)
        conn.execute("INSERT INTO messages (message_id, body, sent_at, visible_at)"
                     " VALUES ('old', 'from before', 0, 0)")

    queue = SqliteQueue(path)
    queue.send("new", attributes={"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"})

    received = {m.body: dict(m.attributes) for m in queue.receive(10, 0)}
    assert received == {"from before": {},
                        "new": {"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}}


def test_a_path_that_cannot_hold_a_database_raises_queue_unavailable(tmp_path: Path) -> None:
    (tmp_path / "queue.db").mkdir()

    with pytest.raises(QueueUnavailableError, match=r"queue\.db"):
        SqliteQueue(tmp_path / "queue.db")


def test_a_database_locked_past_the_busy_timeout_raises_queue_unavailable(
    path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sqlite_module, "BUSY_TIMEOUT_MS", 100)
    queue = SqliteQueue(path)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(QueueUnavailableError, match="locked"):
            queue.send("blocked")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    queue.send("unblocked")  # and it recovers once the lock is gone
    assert queue.depth().visible == 1


def test_a_closed_queue_raises_queue_unavailable(path: Path) -> None:
    queue = SqliteQueue(path)
    queue.close()

    with pytest.raises(QueueUnavailableError, match="closed"):
        queue.receive(1, 0)
