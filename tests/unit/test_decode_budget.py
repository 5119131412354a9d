"""The decode memory budget shared by decoder processes: waits, admits, survives dead holders."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from media_worker.engines import decode_budget
from media_worker.engines.decode_budget import DecodeBudget
from media_worker.engines.isolation import SPAWN
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, SourceMedia
from media_worker.types import ThumbnailSize

PROGRESSIVE_24MP = Path("images/formats/jpeg/craft-beer.jpg")


def _hold(budget: DecodeBudget, megabytes: int, started: threading.Event,
          release: threading.Event) -> None:
    with budget.admit(megabytes):
        started.set()
        release.wait(10)


def holding(budget: DecodeBudget, megabytes: int) -> tuple[threading.Thread, threading.Event]:
    """A thread that holds `megabytes` of the budget until the returned event is set."""
    started, release = threading.Event(), threading.Event()
    thread = threading.Thread(target=_hold, args=(budget, megabytes, started, release))
    thread.start()
    assert started.wait(5)
    return thread, release


def admitted_within(budget: DecodeBudget, megabytes: int, seconds: float) -> bool:
    done = threading.Event()

    def admit() -> None:
        with budget.admit(megabytes):
            done.set()

    threading.Thread(target=admit, daemon=True).start()
    return done.wait(seconds)


def test_a_decode_that_fits_beside_the_running_ones_is_admitted_at_once() -> None:
    budget = DecodeBudget(100, SPAWN)
    thread, release = holding(budget, 60)
    assert admitted_within(budget, 40, 1.0)
    release.set()
    thread.join()


def test_a_decode_that_does_not_fit_waits_until_the_budget_is_released() -> None:
    budget = DecodeBudget(100, SPAWN)
    thread, release = holding(budget, 60)
    assert not admitted_within(budget, 50, 0.3)
    release.set()
    thread.join()
    assert budget.in_use() == 0


def test_a_decode_bigger_than_the_whole_budget_runs_alone_rather_than_never() -> None:
    budget = DecodeBudget(10, SPAWN)
    assert admitted_within(budget, 500, 1.0)


def _hold_forever(budget: DecodeBudget, ready: object) -> None:
    with budget.admit(80):
        ready.set()  # type: ignore[attr-defined]
        time.sleep(60)


def test_the_reservation_of_a_killed_decoder_is_given_back() -> None:
    budget = DecodeBudget(100, SPAWN)
    ready = SPAWN.Event()
    child = SPAWN.Process(target=_hold_forever, args=(budget, ready))
    child.start()
    try:
        assert ready.wait(30)
        assert budget.in_use() == 80
        os.kill(child.pid, signal.SIGKILL)
        child.join(5)
        assert admitted_within(budget, 80, 3.0)
    finally:
        child.kill()
        child.join()


def test_a_lock_left_taken_by_a_killed_decoder_fails_open_instead_of_hanging(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode_budget, "_LOCK_TIMEOUT_SECONDS", 0.2)
    budget = DecodeBudget(100, SPAWN)
    taken, done = threading.Event(), threading.Event()

    def take_the_lock_and_vanish() -> None:
        budget._condition.acquire()  # as a decoder killed mid-update would leave it
        taken.set()
        done.wait(10)
        budget._condition.release()

    thread = threading.Thread(target=take_the_lock_and_vanish)
    thread.start()
    assert taken.wait(5)
    try:
        assert admitted_within(budget, 50, 2.0)
    finally:
        done.set()
        thread.join()


def test_engine_waits_for_the_budget_before_decoding_a_progressive_jpeg(corpus: Path) -> None:
    budget = DecodeBudget(64, SPAWN)
    engine = LocalEngine(max_pixels=10**8, max_video_seconds=60, budget=budget)
    path = corpus / PROGRESSIVE_24MP
    thread, release = holding(budget, 64)
    finished = threading.Event()

    def render() -> None:
        engine.render(SourceMedia(path, "b", "k"), ThumbnailSize.parse_list("l:1280x1280"),
                      OutputSpec())
        finished.set()

    worker = threading.Thread(target=render)
    worker.start()
    assert not finished.wait(1.0), "the 24 MP progressive decode did not wait for the budget"
    release.set()
    thread.join()
    worker.join(30)
    assert finished.is_set()


def test_streaming_decodes_never_wait_for_the_budget(corpus: Path) -> None:
    """A baseline JPEG decodes at reduced scale a few lines at a time: not budgeted."""
    budget = DecodeBudget(1, SPAWN)
    engine = LocalEngine(max_pixels=10**8, max_video_seconds=60, budget=budget)
    thread, release = holding(budget, 1)
    try:
        path = corpus / "images" / "camera" / "42_IndexError.jpg"
        result = engine.render(SourceMedia(path, "b", "k"),
                               ThumbnailSize.parse_list("l:1280x1280"), OutputSpec())
        assert result.thumbnails[0].width == 1280
    finally:
        release.set()
        thread.join()


@pytest.fixture
def corpus(corpus: Path) -> Path:
    if not (corpus / PROGRESSIVE_24MP).is_file():
        pytest.skip(f"{PROGRESSIVE_24MP} is not in the corpus")
    return corpus
