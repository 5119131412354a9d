"""End to end: big videos read in place (issue 15) through `media-worker run --drain`, with
the session's videos (tests/big_videos.py, made once per run): the 335 MB MP4s with the
`moov` at the end and at the start on moto, SeaweedFS and the embedded default; the 30-minute
WebM on moto, the fragmented MP4 on SeaweedFS, both on the embedded default (uploading them
is most of what the test costs on moto and SeaweedFS; docs/performance.md, "Originals read in
place").

Each video's thumbnails match a render of the same file from a local copy — what the worker
made of a full download — with SSIM ≥ 0.99; the job fetches at most 2% of it or 16 MB, and
the disk it uses is watched while it runs (the worker's temporary directory, TMPDIR, and the
files its processes hold open there), not inferred from its stages: a few MB whatever the size
of the video, where a still, which is downloaded, is seen whole."""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import pyvips

from media_worker.app.worker import processor_settings
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import SourceMedia
from media_worker.types import MediaRecord, MediaStatus
from tests.big_videos import BigVideos
from tests.integration.deployments import Deployment, log_events
from tests.unit.test_fidelity import ssim

SIZES = "small:160x160,large:640x640"
MIB = 1024 * 1024
# "Disk use of a video job stays below a few MB whatever its size" (issue 15).
FEW_MB = 4 * MIB
BIG_ON = {
    "services": ("moov-at-end.mp4", "faststart.mp4", "long.webm"),
    "real": ("moov-at-end.mp4", "faststart.mp4", "fragmented.mp4"),
    "embedded": ("moov-at-end.mp4", "faststart.mp4", "long.webm", "fragmented.mp4"),
}


@pytest.fixture(params=[pytest.param("services", marks=pytest.mark.services),
                        pytest.param("real", marks=pytest.mark.services), "embedded"])
def big_deployment(request: pytest.FixtureRequest) -> Deployment:
    return request.getfixturevalue(f"{request.param}_deployment")


@pytest.fixture(params=[pytest.param("services", marks=pytest.mark.services), "embedded"])
def small_deployment(request: pytest.FixtureRequest) -> Deployment:
    return request.getfixturevalue(f"{request.param}_deployment")


@dataclass
class Drained:
    records: list[MediaRecord]
    ready: list[dict]  # the worker's `ready` log lines
    peak_disk: int  # the most bytes the worker's temporary directory held


def drained(deployment: Deployment, files: list[Path]) -> Drained:
    """The rows of `files` after a drain with a temporary directory of its own, watched."""
    deployment.env |= {"THUMBNAIL_SIZES": SIZES}
    ids = deployment.enqueue(*files)
    scratch = Path(tempfile.mkdtemp(prefix="tmp-", dir=deployment.workdir))
    deployment.env["TMPDIR"] = str(scratch)  # the worker's scratch dirs and its decoders'
    log = scratch.with_suffix(".log")
    try:
        worker = deployment.start("run", "--drain", "--concurrency", "2", log=log)
        with watching(scratch, worker.pid) as watch:
            try:
                returncode = worker.wait(timeout=600)
            except subprocess.TimeoutExpired:
                worker.kill()
                raise
    finally:
        del deployment.env["TMPDIR"]
    output = log.read_text()
    assert returncode == 0, output[-3000:]
    with deployment.components() as components:
        records = [components.repository.get(media_id) for media_id in ids]
    assert all(records)
    ready = [event for event in log_events(output) if event.get("event") == "ready"]
    return Drained(records, ready, watch.peak)  # type: ignore[arg-type]


class DiskWatch:
    """The most disk `directory` used while the process `pid` and its descendants ran: the
    blocks of the files under it, and of the files there that those processes hold open after
    unlinking them (a TemporaryFile), sampled every 20 ms from a thread."""

    INTERVAL = 0.02

    def __init__(self, directory: Path, pid: int) -> None:
        self._directory = str(directory)
        self._pid = pid
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> DiskWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self.peak = max(self.peak, self.used())
            self.samples += 1
            if self._stop.wait(self.INTERVAL):
                return

    def used(self) -> int:
        blocks: dict[tuple[int, int], int] = {}
        for folder, _, names in os.walk(self._directory):
            for name in names:
                self._count(os.path.join(folder, name), blocks, follow=False)
        for pid in self._tree():
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
            except OSError:  # ended, or not ours to look at
                continue
            for fd in fds:
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if target.startswith(self._directory + os.sep):
                    self._count(f"/proc/{pid}/fd/{fd}", blocks, follow=True)
        return sum(blocks.values())

    @staticmethod
    def _count(path: str, blocks: dict[tuple[int, int], int], *, follow: bool) -> None:
        try:
            stat = os.stat(path) if follow else os.lstat(path)
        except OSError:  # gone between listing and looking
            return
        blocks[stat.st_dev, stat.st_ino] = stat.st_blocks * 512

    def _tree(self) -> set[int]:
        """`pid` and its descendants now (the decoder processes among them)."""
        parents: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
        tree, grown = {self._pid}, True
        while grown:
            children = {pid for pid, parent in parents.items() if parent in tree} - tree
            tree |= children
            grown = bool(children)
        return tree


@contextmanager
def watching(directory: Path, pid: int) -> Iterator[DiskWatch]:
    with DiskWatch(directory, pid) as watch:
        yield watch
    assert watch.samples > 10, "the disk watch hardly ran"


def assert_read_in_place(deployment: Deployment, record: MediaRecord, video: Path,
                         ready: list[dict]) -> None:
    assert record.status is MediaStatus.READY, record.error
    size = video.stat().st_size
    metadata = record.metadata or {}
    assert metadata["bytes"] == size
    assert metadata["bytesRead"] <= max(0.02 * size, 16 * MIB), (video.name, size)
    (line,) = [event for event in ready if event.get("mediaId") == record.id]
    assert "download" not in line["stages"]
    assert_same_thumbnails(deployment, record, video)


def assert_same_thumbnails(deployment: Deployment, record: MediaRecord, video: Path) -> None:
    """SSIM ≥ 0.99 against the same sizes rendered from a local copy of the file."""
    settings = deployment.settings()
    engine = LocalEngine(max_pixels=settings.max_pixels,
                         max_video_seconds=settings.max_video_seconds)
    local = engine.render(SourceMedia(video, "local", video.name), settings.thumbnail_sizes,
                          processor_settings(settings).output)
    expected = {thumb.size.name: thumb.data for thumb in local.thumbnails}
    assert {thumb.size for thumb in record.thumbnails or []} == set(expected)
    with deployment.components() as components:
        for thumb in record.thumbnails or []:
            ours = pyvips.Image.new_from_buffer(components.storage.read(thumb.bucket,
                                                                        thumb.key), "")
            theirs = pyvips.Image.new_from_buffer(expected[thumb.size], "")
            assert (ours.width, ours.height) == (theirs.width, theirs.height)
            assert ssim(ours, theirs) >= 0.99, (video.name, thumb.size)


def test_big_videos_are_read_in_place_with_the_thumbnails_of_a_full_download(
        big_deployment: Deployment, big_videos: BigVideos) -> None:
    files = [big_videos[name] for name in BIG_ON[big_deployment.name]]
    result = drained(big_deployment, files)
    for record, video in zip(result.records, files, strict=True):
        assert_read_in_place(big_deployment, record, video, result.ready)
    assert result.peak_disk < FEW_MB


def test_the_disk_a_job_uses_is_watched_a_video_few_mb_a_downloaded_still_all_of_it(
        embedded_deployment: Deployment, big_videos: BigVideos, tmp_path: Path) -> None:
    """The watch of the test above can fail: a still is downloaded to the scratch directory
    (a JPEG's decoder needs every byte), and the watch sees all of it."""
    video = big_videos["moov-at-end.mp4"]
    still = tmp_path / "noise.jpg"
    noise = np.random.default_rng(15).integers(0, 256, (3000, 4000, 3), dtype=np.uint8)
    pyvips.Image.new_from_array(noise).jpegsave(str(still), Q=90)  # 22 MB
    (record,) = (for_video := drained(embedded_deployment, [video])).records
    assert record.status is MediaStatus.READY, record.error
    (record,) = (for_still := drained(embedded_deployment, [still])).records
    assert record.status is MediaStatus.READY, record.error
    assert for_video.peak_disk < FEW_MB < video.stat().st_size
    assert for_still.peak_disk >= still.stat().st_size > FEW_MB


def test_a_video_that_makes_the_worker_read_too_much_fails_naming_max_read_bytes(
        small_deployment: Deployment, big_videos: BigVideos) -> None:
    small_deployment.env |= {"MAX_READ_BYTES": str(2 * MIB), "VIDEO_STORYBOARD": "64x64:1"}
    (record,) = drained(small_deployment, [big_videos["segment.mp4"]]).records
    assert record.status is MediaStatus.FAILED
    assert "MAX_READ_BYTES" in (record.error or "")
    assert record.attempts == 1  # permanent: not retried
