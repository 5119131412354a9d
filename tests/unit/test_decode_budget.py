"""The decode memory budget shared by decoder processes: waits, admits, survives dead holders."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

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


def _wait_for(budget: DecodeBudget, megabytes: int) -> None:
    with budget.admit(megabytes):
        pass


def test_a_decoder_killed_while_waiting_blocks_nobody() -> None:
    budget = DecodeBudget(100, SPAWN)
    ready = SPAWN.Event()
    holder = SPAWN.Process(target=_hold_forever, args=(budget, ready))
    waiter = SPAWN.Process(target=_wait_for, args=(budget, 80))
    holder.start()
    try:
        assert ready.wait(30)
        waiter.start()
        time.sleep(1.0)  # the waiter is polling for its turn
        os.kill(waiter.pid, signal.SIGKILL)
        waiter.join(5)
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(5)
        admit_and_release = threading.Thread(target=_wait_for, args=(budget, 80), daemon=True)
        admit_and_release.start()
        admit_and_release.join(3.0)
        assert not admit_and_release.is_alive(), "admitting or releasing hung"
    finally:
        for process in (holder, waiter):
            process.kill()
            process.join()


def test_a_decode_waits_at_most_max_wait_then_runs_anyway() -> None:
    budget = DecodeBudget(100, SPAWN, max_wait_seconds=0.3)
    thread, release = holding(budget, 90)
    try:
        assert admitted_within(budget, 50, 2.0)
    finally:
        release.set()
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
