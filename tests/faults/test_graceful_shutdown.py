"""Scenario 4: SIGTERM while a job runs.

A job that cannot finish within SHUTDOWN_GRACE_SECONDS (its download is throttled) is handed
back (row PENDING, message visible at once), the worker exits 0 promptly, and another worker
finishes the job. A job that can finish within the grace period finishes before the exit.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from media_worker.types import MediaStatus
from tests.faults.harness import Lab, Worker, make_noisy_png, wait_until

pytestmark = pytest.mark.services

LONG_JOB_GRACE = 2.0
SHORT_JOB_GRACE = 8.0
PROMPT_EXIT = 6.0  # seconds beyond the grace period a worker may take to close down
HANDED_BACK = "job did not finish within the grace period; handing it back"


def start_a_slow_job(lab: Lab, corpus: Path, download_seconds: float) -> tuple[Worker, str]:
    """One worker, one real camera photo (2.2 MB) whose download is throttled to last about
    `download_seconds`, claimed and downloading when this returns."""
    services, fleet = lab.services, lab.fleet
    services.deployment.env["SHUTDOWN_GRACE_SECONDS"] = str(LONG_JOB_GRACE)
    photo = corpus / "images" / "camera" / "HMD_Nokia_8.3_5G.jpg"
    services.s3.throttle(photo.stat().st_size / download_seconds)
    worker = fleet.start("first")
    fleet.wait_started(worker)
    [media_id] = services.enqueue(photo)
    wait_until(lambda: services.row(media_id).status is MediaStatus.PROCESSING, timeout=30,
               what="the job claimed")
    return worker, media_id


def test_sigterm_during_a_job_longer_than_the_grace_period_exits_promptly(
    lab: Lab, corpus: Path
) -> None:
    worker, _ = start_a_slow_job(lab, corpus, download_seconds=22)
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=LONG_JOB_GRACE + PROMPT_EXIT) == 0, (
        f"still running {LONG_JOB_GRACE + PROMPT_EXIT:g} s after SIGTERM")


def test_a_handed_back_message_stays_visible_after_the_worker_exits(
    lab: Lab, corpus: Path
) -> None:
    services = lab.services
    worker, _ = start_a_slow_job(lab, corpus, download_seconds=8)
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    depth = services.depth()
    assert (depth.visible, depth.in_flight) == (1, 0), depth


def test_a_second_sigterm_exits_at_once(lab: Lab, corpus: Path) -> None:
    worker, media_id = start_a_slow_job(lab, corpus, download_seconds=22)
    worker.signal(signal.SIGTERM)
    wait_until(lambda: worker.logged("waiting for in-flight jobs"), timeout=10,
               what="the first signal handled")
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=5) == 128 + signal.SIGTERM
    # Written straight to stderr by the signal handler (no logger: its lock is not reentrant).
    assert "second SIGTERM; exiting immediately" in worker.log.read_text()
    # Nothing was handed back: the lease and the visibility timeout bring the job back.
    lab.services.s3.throttle(None)
    lab.fleet.start("second")
    lab.conclude("second-sigterm", [media_id])
    assert lab.services.row(media_id).attempts == 2


def test_a_job_longer_than_the_grace_period_is_handed_back_and_finished_by_another_worker(
    lab: Lab, corpus: Path
) -> None:
    services, fleet = lab.services, lab.fleet
    first, media_id = start_a_slow_job(lab, corpus, download_seconds=22)

    first.signal(signal.SIGTERM)
    handed_back = wait_until(
        lambda: (row := services.row(media_id)).status is MediaStatus.PENDING and row,
        timeout=LONG_JOB_GRACE + PROMPT_EXIT, what="the row handed back")
    # At once: the heartbeat kept the message hidden for at least 3 s more.
    wait_until(lambda: services.depth().visible == 1, timeout=1, interval=0.1,
               what="the message visible again")
    services.s3.throttle(None)  # (lets the abandoned download end, and the process with it)
    assert first.wait(timeout=30) == 0
    assert first.logged(HANDED_BACK)
    assert handed_back.error == "interrupted by worker shutdown"

    fleet.start("second")
    lab.conclude("sigterm-long-job", [media_id])
    assert services.row(media_id).attempts == 2
    assert not first.logged("ready")


def test_sigterm_during_a_job_shorter_than_the_grace_period_lets_it_finish(
    lab: Lab, tmp_path: Path
) -> None:
    services, fleet = lab.services, lab.fleet
    services.deployment.env["SHUTDOWN_GRACE_SECONDS"] = str(SHORT_JOB_GRACE)
    image = make_noisy_png(tmp_path / "short.png", 300)  # 270 kB
    services.s3.throttle(150_000)  # a download of about 2 s
    worker = fleet.start("only")
    fleet.wait_started(worker)
    [media_id] = services.enqueue(image)
    wait_until(lambda: services.row(media_id).status is MediaStatus.PROCESSING, timeout=30,
               what="the job claimed")

    signalled = time.monotonic()
    worker.signal(signal.SIGTERM)
    exit_code = worker.wait(timeout=SHORT_JOB_GRACE + 30)
    took = time.monotonic() - signalled

    assert exit_code == 0
    assert took < SHORT_JOB_GRACE + PROMPT_EXIT, f"exited {took:.1f} s after SIGTERM"
    assert worker.logged("ready", mediaId=media_id)
    assert not worker.logged(HANDED_BACK)
    lab.conclude("sigterm-short-job", [media_id])
    assert services.row(media_id).attempts == 1
