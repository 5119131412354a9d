"""IsolatedEngine: a crash or a hang in a decoder costs one job, never the worker."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from media_worker.engines import isolation
from media_worker.engines.allocator import ARENAS, GLIBC
from media_worker.engines.isolation import IsolatedEngine
from media_worker.engines.port import OutputSpec, SourceMedia
from media_worker.errors import (
    CorruptMediaError,
    LimitExceededError,
    PermanentError,
    UnsupportedMediaError,
)
from media_worker.types import ThumbnailSize
from tests.unit.isolation_engines import BehaviourEngine, arenas_while_threads_allocate

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


@pytest.mark.skipif(not GLIBC.is_glibc, reason="malloc arenas are glibc's")
def test_a_decoder_process_keeps_to_two_malloc_arenas(engine: IsolatedEngine,
                                                       tmp_path: Path) -> None:
    """Each decoder thread would otherwise get an arena of its own that keeps what it freed
    (the memory this costs over many jobs: bench/decoder_memory.py)."""
    assert arenas_while_threads_allocate() > ARENAS  # here, in the unlimited test process
    result = engine.render(source(tmp_path, "arenas"), SIZES, OutputSpec())
    assert result.metadata["arenas"] <= ARENAS


def test_free_memory_goes_back_to_the_system_after_every_job(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Run in this process: the child's task wrapper trims after success and failure alike."""
    trims: list[str] = []
    monkeypatch.setattr(isolation.GLIBC, "give_back_free_memory", lambda: trims.append("trim"))
    monkeypatch.setattr(isolation, "_child_worker", BehaviourEngine())
    for behaviour in ("ok", "unsupported", "bug"):
        with contextlib.suppress(UnsupportedMediaError, CorruptMediaError):
            isolation._call_in_child("render", source(tmp_path, behaviour).path,
                                     source(tmp_path, behaviour), SIZES, OutputSpec())
    assert trims == ["trim"] * 3


DECODER_OWNER = """
import sys, threading
from pathlib import Path
from media_worker.engines.isolation import IsolatedEngine
from media_worker.engines.port import OutputSpec, SourceMedia
from media_worker.types import ThumbnailSize
from tests.unit.isolation_engines import BehaviourEngine

folder = Path(sys.argv[1])
sizes = [ThumbnailSize(name="s", width=10, height=10)]
engine = IsolatedEngine(BehaviourEngine, workers=1, timeout_seconds=600)
(folder / "render").write_text("render")
(folder / "hang").write_text("hang")
pid = engine.render(SourceMedia(folder / "render", "b", "k"), sizes, OutputSpec()).metadata["pid"]
threading.Thread(target=engine.render, daemon=True,
                 args=(SourceMedia(folder / "hang", "b", "k"), sizes, OutputSpec())).start()
print(pid, flush=True)
threading.Event().wait()
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs Linux's /proc")
def test_a_hanging_decoder_dies_with_a_worker_killed_outright(tmp_path: Path) -> None:
    """The worker enforces the decoder's time limit; killed with SIGKILL it cannot, so the
    kernel must end the decoder (parent-death signal) instead of letting it hang on."""
    owner = subprocess.Popen([sys.executable, "-c", DECODER_OWNER, str(tmp_path)],
                             cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert owner.stdout is not None
        decoder = int(owner.stdout.readline())
        time.sleep(0.5)  # the hang is under way
        assert _alive(decoder)
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _alive(decoder) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(decoder), "the decoder outlived its worker"
    finally:
        owner.kill()
        with contextlib.suppress(ProcessLookupError):
            os.kill(decoder, signal.SIGKILL)
