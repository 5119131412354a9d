"""IsolatedEngine: a crash or a hang in a decoder costs one job, never the worker."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from media_worker.engines.isolation import IsolatedEngine
from media_worker.engines.port import OutputSpec, SourceMedia
from media_worker.errors import (
    CorruptMediaError,
    LimitExceededError,
    PermanentError,
    UnsupportedMediaError,
)
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


def test_an_unexpected_exception_in_the_decoder_is_a_permanent_decode_error(
    engine: IsolatedEngine, tmp_path: Path
) -> None:
    """Not an internal error retried MAX_ATTEMPTS times: the same bytes would raise it again.
    The row says which exception, where, in one line."""
    with pytest.raises(CorruptMediaError) as caught:
        engine.render(source(tmp_path, "bug"), SIZES, OutputSpec())
    assert re.fullmatch(r"cannot decode this file: AttributeError at isolation_engines\.py:\d+: "
                        r"'NoneType' object has no attribute 'width'", str(caught.value))
    assert isinstance(caught.value, PermanentError)


def _child_rss_mb(parent: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{parent}/task").iterdir():
        children += (task / "children").read_text().split()
    sizes = []
    for pid in children:
        status = Path(f"/proc/{pid}/status").read_text()
        sizes.append(int(status.split("VmRSS:")[1].split()[0]) // 1024)
    return sizes


def test_a_decoder_gives_back_what_its_jobs_freed(corpus: Path) -> None:
    """HEIC (libheif threads), video (FFmpeg threads) and a progressive 24 MP JPEG, three times
    over: without arena limits and a trim after each job the decoder kept ~35 MB more every
    round; its memory must follow the current job, not the history of jobs."""
    from functools import partial

    from media_worker.engines.factories import local_engine

    files = [corpus / "images/formats/heic/IMG_5195.HEIC",
             corpus / "images/formats/jpeg/craft-beer.jpg",
             corpus / "videos/sample.mp4", corpus / "videos/video-1080p-60fps-2s.mp4"]
    sizes = ThumbnailSize.parse_list("s:150x150,m:480x480,l:1280x1280")
    engine = IsolatedEngine(partial(local_engine, max_pixels=10**8, max_video_seconds=60),
                            workers=1, timeout_seconds=60)
    try:
        after_round = []
        for _ in range(3):
            for path in files:
                engine.render(SourceMedia(path, "b", path.name), sizes, OutputSpec())
            after_round.append(max(_child_rss_mb(os.getpid())))
    finally:
        engine.close()
    assert after_round[2] - after_round[0] < 30, f"decoder RSS after each round: {after_round} MB"
