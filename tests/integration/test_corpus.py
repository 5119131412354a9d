"""The whole media corpus through the real worker on the embedded default: every photo and
video users upload ends READY, every hostile file ends in a terminal status, nothing hangs,
and memory stays bounded on decompression bombs.

One drain of the whole corpus serves a test per file, so a file that fails is named by the
test's id, and the files a later issue makes pass are expected failures (strict: the mark has
to go when the fix lands)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import pyvips

from media_worker.types import MediaRecord, MediaStatus
from tests.conftest import CORPUS
from tests.integration.conftest import COMMON
from tests.integration.deployments import Deployment

pytestmark = pytest.mark.services
MEMORY_LIMIT_BYTES = 300 * 1024 * 1024
BOMBS = ["png_decompression_dos.png", "decompression_bomb.gif", "decompression_bomb_extents.gif",
         "vp8l-16383x16383.webp", "65536-uint32-limit.png", "giant-image.jpg", "reallybig.bmp"]
EXPECTED_FAILURES: dict[str, str] = {}  # corpus file → the issue that will fix it (strict xfail)


def manifest(corpus: Path) -> list[Path]:
    rows = (corpus / "MANIFEST.tsv").read_text().splitlines()[1:]
    return [corpus / row.split("\t", 1)[0] for row in rows if row.strip()]


def corpus_cases() -> list[object]:
    """One case per corpus file, read when the tests are collected."""
    if not (CORPUS / "MANIFEST.tsv").is_file():
        return [pytest.param(None, id="corpus-missing")]
    cases = []
    for path in manifest(CORPUS):
        name = path.relative_to(CORPUS).as_posix()
        marks = ([pytest.mark.xfail(strict=True, reason=EXPECTED_FAILURES[name])]
                 if name in EXPECTED_FAILURES else [])
        cases.append(pytest.param(name, id=name, marks=marks))
    return cases


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory: pytest.TempPathFactory
               ) -> tuple[Deployment, dict[str, MediaRecord]]:
    """Every corpus file enqueued at once and drained by one worker (two jobs at a time)."""
    if not (CORPUS / "MANIFEST.tsv").is_file():
        pytest.skip(f"media corpus not found at {CORPUS} (set MEDIA_WORKER_CORPUS)")
    deployment = Deployment("embedded", dict(COMMON), tmp_path_factory.mktemp("corpus"))
    files = manifest(CORPUS)
    ids = deployment.enqueue(*files)
    started = time.monotonic()
    deployment.drain(concurrency=2)
    print(f"\nCORPUS {len(files)} files drained in {time.monotonic() - started:.1f}s")
    with deployment.components() as components:
        records = {path.relative_to(CORPUS).as_posix(): components.repository.get(media_id)
                   for path, media_id in zip(files, ids, strict=True)}
    return deployment, {name: record for name, record in records.items() if record}


@pytest.mark.parametrize("name", corpus_cases())
def test_corpus_file_ends_as_its_folder_expects(
    corpus_run: tuple[Deployment, dict[str, MediaRecord]], name: str | None,
) -> None:
    deployment, records = corpus_run
    assert name is not None
    record = records[name]
    check_terminal(category(Path(name)), Path(name), record)
    if record.status is MediaStatus.READY:
        with deployment.components() as components:
            check_thumbnails(components.storage, record, deployment)


def category(relative: Path) -> str:
    parts = relative.parts
    if "malformed" in parts:
        return "malformed"
    if "no-video-stream" in parts:
        return "no-video-stream"
    if parts[0] == "documents":
        return "documents"
    if parts[:2] == ("images", "raw"):
        return "raw"
    return parts[1] if parts[0] == "images" else "videos"


def check_terminal(kind: str, path: Path, record: MediaRecord) -> None:
    name = path.name
    if kind == "malformed":
        assert record.status in (MediaStatus.READY, MediaStatus.FAILED), name
        if record.status is MediaStatus.FAILED:
            assert record.error, name
            assert "/" not in record.error.split(":", 1)[-1][:40] or "MP4" in record.error, (
                name, record.error)
            assert "internal error" not in record.error, (name, record.error)
            assert record.attempts == 1, (name, record.error)  # a verdict, not a retry loop
    elif kind == "no-video-stream":
        assert record.status is MediaStatus.FAILED, name
        assert "no video stream" in (record.error or ""), (name, record.error)
    elif kind == "raw":
        # GOPR0024.GPR is VC-5 compressed: stock LibRaw refuses it (corpus README).
        assert record.status is MediaStatus.FAILED, (name, record.error)
        assert "unsupported" in (record.error or "").lower(), (name, record.error)
    else:
        assert record.status is MediaStatus.READY, (name, record.error)


def check_thumbnails(storage, record: MediaRecord, deployment: Deployment) -> None:
    """Every size decodes, fits its box, is never upscaled, keeps the upright aspect."""
    boxes = {size.name: size for size in deployment.settings().thumbnail_sizes}
    meta = record.metadata or {}
    width, height = meta["width"], meta["height"]
    for thumb in record.thumbnails or []:
        image = pyvips.Image.new_from_buffer(storage.read(thumb.bucket, thumb.key), "")
        box = boxes[thumb.size]
        assert (image.width, image.height) == (thumb.width, thumb.height)
        assert image.width <= min(box.width, width)
        assert image.height <= min(box.height, height)
        scale = min(box.width / width, box.height / height, 1.0)
        assert abs(image.width - width * scale) <= 1.5, (record.key, thumb.size)
        assert abs(image.height - height * scale) <= 1.5, (record.key, thumb.size)


def process_tree_pss(root: int) -> int:
    """Memory of a process and all its descendants, from /proc: their proportional set sizes
    (PSS), so the libraries every decoder maps (libvips, FFmpeg, numpy) count once, as the
    container's memory limit counts them, not once per process as summed RSS would. A child
    caught between its fork and its exec still maps its parent's pages, which are not memory
    of its own: it is counted once it has exec'd."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    commands: dict[int, bytes] = {}
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            status = (entry / "smaps_rollup").read_text()
            commands[int(entry.name)] = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat[1])
        children.setdefault(int(stat[1]), []).append(int(entry.name))
        for line in status.splitlines():
            if line.startswith("Pss:"):
                rss[int(entry.name)] = int(line.split()[1]) * 1024
    for pid, parent in parents.items():
        if pid != root and commands.get(pid) == commands.get(parent):
            rss.pop(pid, None)  # forked, not yet exec'd
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def test_decompression_bombs_keep_the_worker_under_300_mb(
    embedded_deployment: Deployment, corpus: Path, tmp_path: Path
) -> None:
    """Peak memory (summed PSS) of the worker and its decoder processes together, sampled from
    /proc every 20 ms while it drains the bombs (24 MP photos are measured in bench/)."""
    deployment = embedded_deployment
    malformed = corpus / "images" / "malformed"
    photo = corpus / "images" / "orientation" / "Landscape_5.jpg"
    ids = deployment.enqueue(*[malformed / name for name in BOMBS], photo)
    worker = deployment.start("run", "--drain", "--concurrency", "2", log=tmp_path / "w.log")
    peak, started = 0, time.monotonic()
    while worker.poll() is None:
        peak = max(peak, process_tree_pss(worker.pid))
        time.sleep(0.02)
        assert time.monotonic() - started < 180, "worker did not drain in time"
    assert worker.returncode == 0
    print(f"\nMEMORY peak PSS of worker + decoders: {peak / 2**20:.0f} MiB "
          f"(cpu count {os.cpu_count()})")
    assert peak < MEMORY_LIMIT_BYTES
    with deployment.components() as components:
        statuses = [components.repository.get(i).status for i in ids]  # type: ignore[union-attr]
    assert statuses[-1] is MediaStatus.READY
    assert MediaStatus.PROCESSING not in statuses
    assert MediaStatus.PENDING not in statuses


def test_hostile_inputs_fail_quickly_with_a_reason(
    embedded_deployment: Deployment, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    noise = tmp_path / "noise.png"
    noise.write_bytes(os.urandom(50_000))
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    ids = embedded_deployment.enqueue(empty, noise, truncated)
    started = time.monotonic()
    embedded_deployment.drain()
    assert time.monotonic() - started < 60
    with embedded_deployment.components() as components:
        records = [components.repository.get(i) for i in ids]
    for record in records:
        assert record is not None
        assert record.status is MediaStatus.FAILED
        assert record.error
