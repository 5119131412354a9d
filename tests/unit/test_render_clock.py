"""A render says where its time went: the decode, then one encode per rendition, in order,
measured where the render ran (a decoder process) and carried back with its result."""

from __future__ import annotations

import time
from functools import partial
from itertools import pairwise
from pathlib import Path

import pytest

from media_worker.engines.factories import local_engine
from media_worker.engines.isolation import IsolatedEngine
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, RenderResult, SourceMedia
from media_worker.engines.render_clock import DECODE, ENCODE, encoding, measured
from media_worker.renditions import parse_preview, parse_storyboard
from media_worker.samples import make_samples
from media_worker.types import ThumbnailSize

SIZES = ThumbnailSize.parse_list("small:64x64,medium:160x160,large:320x320")


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {path.suffix.lstrip("."): path
            for path in make_samples(tmp_path_factory.mktemp("samples"))}


def render(engine: object, path: Path, output: OutputSpec | None = None) -> RenderResult:
    return engine.render(SourceMedia(path, "b", "k"), SIZES,  # type: ignore[attr-defined]
                         output or OutputSpec())


def stages(result: RenderResult) -> list[tuple[str, str | None]]:
    return [(timing.stage, timing.size) for timing in result.timings]


def assert_back_to_back(result: RenderResult) -> None:
    """Each stage ends before the next begins, and the decode ends where the first encode
    begins."""
    timings = result.timings
    assert all(t.start_ns <= t.end_ns for t in timings)
    assert timings[0].end_ns == timings[1].start_ns
    assert all(a.end_ns <= b.start_ns for a, b in pairwise(timings))


def test_a_still_is_timed_as_its_decode_then_one_encode_per_size_in_order(
    samples: dict[str, Path],
) -> None:
    result = render(LocalEngine(max_pixels=10**8, max_video_seconds=60), samples["jpg"])

    assert stages(result) == [(DECODE, None), (ENCODE, "small"), (ENCODE, "medium"),
                              (ENCODE, "large")]
    assert_back_to_back(result)


def test_an_animation_is_timed_per_animated_size(samples: dict[str, Path]) -> None:
    animated = ThumbnailSize.parse_list("spin:96x96:animated,still:64x64")
    result = LocalEngine(max_pixels=10**8, max_video_seconds=60).render(
        SourceMedia(samples["gif"], "b", "k"), animated, OutputSpec())

    assert sorted(size for stage, size in stages(result) if stage == ENCODE) == [
        "spin", "still"]


def test_a_video_clip_and_storyboard_are_timed_as_renditions_of_their_own(
    samples: dict[str, Path],
) -> None:
    output = OutputSpec(preview=parse_preview("96x96:1:4:webp"),
                        storyboard=parse_storyboard("64x36:auto"))

    result = render(LocalEngine(max_pixels=10**8, max_video_seconds=60), samples["mp4"],
                    output)

    assert stages(result) == [(DECODE, None), (ENCODE, "small"), (ENCODE, "medium"),
                              (ENCODE, "large"), (ENCODE, "preview"), (ENCODE, "storyboard")]
    assert_back_to_back(result)


def test_timings_measured_in_a_decoder_process_come_back_on_the_wall_clock(
    samples: dict[str, Path],
) -> None:
    engine = IsolatedEngine(partial(local_engine, max_pixels=10**8, max_video_seconds=60),
                            workers=1, timeout_seconds=60)
    try:
        before = time.time_ns()
        result = render(engine, samples["png"])
        after = time.time_ns()
    finally:
        engine.close()

    assert [stage for stage, _ in stages(result)] == [DECODE, ENCODE, ENCODE, ENCODE]
    assert before <= result.timings[0].start_ns <= result.timings[-1].end_ns <= after


def test_an_encode_outside_a_measured_render_is_not_recorded() -> None:
    with encoding("small"):
        pass
    with measured() as timings:
        pass

    assert [(t.stage, t.size) for t in timings] == [(DECODE, None)]
