"""IsolatedEngine: a crash or a hang in a decoder costs one job, never the worker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from media_worker.engines.isolation import IsolatedEngine
from media_worker.engines.port import OutputSpec, SourceMedia
from media_worker.errors import CorruptMediaError, LimitExceededError, UnsupportedMediaError
from media_worker.types import ThumbnailSize
from tests.unit.isolation_engines import BehaviourEngine

SIZES = [ThumbnailSize(name="s", width=10, height=10)]


@pytest.fixture(scope="module")
def engine() -> Iterator[IsolatedEngine]:
    isolated = IsolatedEngine(BehaviourEngine, workers=1, timeout_seconds=2)
    yield isolated
    isolated.close()


def source(tmp_path: Path, behaviour: str) -> SourceMedia:
    path = tmp_path / behaviour
    path.write_text(behaviour)
    return SourceMedia(path=path, bucket="b", key="k")


def test_renders_in_a_child_process(engine: IsolatedEngine, tmp_path: Path) -> None:
    result = engine.render(source(tmp_path, "ok"), SIZES, OutputSpec())
    assert result.metadata["pid"] != os.getpid()


def test_a_crashing_decoder_fails_the_job_with_a_readable_error(
    engine: IsolatedEngine, tmp_path: Path
) -> None:
    with pytest.raises(CorruptMediaError, match=r"decoder crashed .*SIGSEGV"):
        engine.render(source(tmp_path, "crash"), SIZES, OutputSpec())


def test_a_hanging_decoder_is_killed_at_the_timeout(
    engine: IsolatedEngine, tmp_path: Path
) -> None:
    with pytest.raises(LimitExceededError, match="longer than 2 s"):
        engine.render(source(tmp_path, "hang"), SIZES, OutputSpec())


def test_the_engine_keeps_working_after_a_crash_and_a_hang(
    engine: IsolatedEngine, tmp_path: Path
) -> None:
    for behaviour in ("crash", "hang"):
        with pytest.raises((CorruptMediaError, LimitExceededError)):
            engine.render(source(tmp_path, behaviour), SIZES, OutputSpec())
    assert engine.render(source(tmp_path, "ok"), SIZES, OutputSpec()).thumbnails


def test_media_errors_raised_in_the_child_reach_the_caller_unchanged(
    engine: IsolatedEngine, tmp_path: Path
) -> None:
    with pytest.raises(UnsupportedMediaError, match="unsupported media type: test"):
        engine.render(source(tmp_path, "unsupported"), SIZES, OutputSpec())
