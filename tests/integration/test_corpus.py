"""The whole media corpus through the real worker on the embedded default: every photo and
video users upload ends READY, every hostile file ends in a terminal status, nothing hangs,
and memory stays bounded on decompression bombs."""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import pytest
import pyvips

from media_worker.types import MediaRecord, MediaStatus
from tests.integration.deployments import Deployment

pytestmark = pytest.mark.services
MEMORY_LIMIT_BYTES = 300 * 1024 * 1024
BOMBS = ["png_decompression_dos.png", "decompression_bomb.gif", "decompression_bomb_extents.gif",
         "vp8l-16383x16383.webp", "65536-uint32-limit.png", "giant-image.jpg", "reallybig.bmp"]


def manifest(corpus: Path) -> list[Path]:
    rows = (corpus / "MANIFEST.tsv").read_text().splitlines()[1:]
    return [corpus / row.split("\t", 1)[0] for row in rows if row.strip()]


def category(path: Path, corpus: Path) -> str:
    parts = path.relative_to(corpus).parts
    if "malformed" in parts:
        return "malformed"
    if "no-video-stream" in parts:
        return "no-video-stream"
    return parts[1] if parts[0] == "images" else "videos"


def test_every_corpus_file_ends_in_the_expected_status(
    embedded_deployment: Deployment, corpus: Path
) -> None:
    deployment = embedded_deployment
    files = manifest(corpus)
    ids = deployment.enqueue(*files)
    started = time.monotonic()
    deployment.drain(concurrency=2)
    elapsed = time.monotonic() - started
    with deployment.components() as components:
        records = [components.repository.get(media_id) for media_id in ids]
        passed: Counter[str] = Counter()
        for path, record in zip(files, records, strict=True):
            assert record is not None
            kind = category(path, corpus)
            check_terminal(kind, path, record)
            if record.status is MediaStatus.READY:
                check_thumbnails(components.storage, record, deployment)
            passed[kind] += 1
    totals = Counter(category(path, corpus) for path in files)
    print(f"\nCORPUS {dict(passed)} of {dict(totals)} in {elapsed:.1f}s")
    assert passed == totals


def check_terminal(kind: str, path: Path, record: MediaRecord) -> None:
    name = path.name
    if kind == "malformed":
        assert record.status in (MediaStatus.READY, MediaStatus.FAILED), name
        if record.status is MediaStatus.FAILED:
            assert record.error, name
            assert "/" not in record.error.split(":", 1)[-1][:40] or "MP4" in record.error, (
                name, record.error)
    elif kind == "no-video-stream":
        assert record.status is MediaStatus.FAILED, name
        assert "no video stream" in (record.error or ""), (name, record.error)
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


def process_tree_rss(root: int) -> int:
    """Resident memory of a process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            status = (entry / "status").read_text()
        except OSError:
            continue
        children.setdefault(int(stat[1]), []).append(int(entry.name))
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss[int(entry.name)] = int(line.split()[1]) * 1024
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def test_decompression_bombs_keep_the_worker_under_300_mb(
    embedded_deployment: Deployment, corpus: Path, tmp_path: Path
) -> None:
    """Peak resident memory of the worker and its decoder processes together, sampled from
    /proc every 20 ms while it drains the bombs (24 MP photos are measured in bench/)."""
    deployment = embedded_deployment
    malformed = corpus / "images" / "malformed"
    photo = corpus / "images" / "orientation" / "Landscape_5.jpg"
    ids = deployment.enqueue(*[malformed / name for name in BOMBS], photo)
    worker = deployment.start("run", "--drain", "--concurrency", "2", log=tmp_path / "w.log")
    peak, started = 0, time.monotonic()
    while worker.poll() is None:
        peak = max(peak, process_tree_rss(worker.pid))
        time.sleep(0.02)
        assert time.monotonic() - started < 180, "worker did not drain in time"
    assert worker.returncode == 0
    print(f"\nMEMORY peak RSS of worker + decoders: {peak / 2**20:.0f} MiB "
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
