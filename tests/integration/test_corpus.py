"""The whole media corpus through the real worker on the embedded default, and the files issue
16 added (documents, HDR stills, RAW, the motion photo) on moto S3 + SQS and PostgreSQL too:
every photo and video users upload ends READY, every hostile file ends in a terminal status,
nothing hangs, and memory stays bounded on decompression bombs.

One drain per deployment (a module fixture each) serves a test per file, its id naming the
deployment and the file, with the same expectations on both; the files a later issue makes
pass are expected failures (strict: the mark has to go when the fix lands). The rest of the
corpus is not drained a second time: that would add minutes to the suite, and what differs
between deployments (originals read from S3, SQS messages, PostgreSQL rows) is the same for
every format and is covered by the end-to-end tests."""

from __future__ import annotations

import csv
import os
import re
import time
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
import pyvips

from media_worker.types import MediaRecord, MediaStatus
from tests.conftest import CORPUS, database
from tests.integration.conftest import COMMON, _server_deployment
from tests.integration.deployments import Deployment
from tests.servers import S3Server

pytestmark = pytest.mark.services
MEMORY_LIMIT_BYTES = 300 * 1024 * 1024
BOMBS = ["png_decompression_dos.png", "decompression_bomb.gif", "decompression_bomb_extents.gif",
         "vp8l-16383x16383.webp", "65536-uint32-limit.png", "giant-image.jpg", "reallybig.bmp"]
EXPECTED_FAILURES: dict[str, str] = {}  # corpus file → the issue that will fix it (strict xfail)
# Where each set of files runs (`<name>_corpus_run`): the embedded default drains the whole
# corpus, moto S3 + SQS and PostgreSQL ("services") the files of issue 16 (`issue_16_files`).
DEPLOYMENTS = ("embedded", "services")
RAW_SUFFIXES = frozenset({".dng", ".gpr", ".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf",
                          ".rw2", ".pef"})
# What the corpus README says of single files, beyond their folder's rule.
UPRIGHT_SIZES = {"images/hdr/200MP.heic": (12240, 16320),
                 "images/camera/samsung-one-ui-6.heic": (3000, 4000)}
MOTION_PHOTOS = frozenset({"images/camera/samsung-one-ui-6.heic"})
PASSWORD_PROTECTED = frozenset({"documents/malformed/libreoffice-writer-password.pdf"})
NEVER_BLACK = frozenset({"images/malformed/IMG_1361.dng"})  # LibRaw decodes it to black
BLACK_MAXIMUM = 3  # the brightest 8-bit sample of a thumbnail taken to be all black
_PDF_NOTES = re.compile(r"PDFium: (\d+) page\(s\), page 1 (\d+)x(\d+) pt")


@cache
def manifest_rows(corpus: Path) -> dict[str, dict[str, str]]:
    with (corpus / "MANIFEST.tsv").open(newline="") as handle:
        return {row["path"]: row for row in csv.DictReader(handle, delimiter="\t")}


def manifest(corpus: Path) -> list[Path]:
    return [corpus / name for name in manifest_rows(corpus)]


def issue_16_files(corpus: Path) -> list[Path]:
    """The files issue 16 brought (MANIFEST.tsv): documents, HDR stills, RAW files (camera
    RAWs under malformed/ too) and motion photos."""
    return [corpus / name for name, row in manifest_rows(corpus).items()
            if name.startswith("documents/") or row["category"] in ("hdr", "raw")
            or Path(name).suffix.lower() in RAW_SUFFIXES
            or "motion photo" in row["notes"].lower()]


def corpus_cases() -> list[object]:
    """One case per corpus file and deployment, read when the tests are collected."""
    if not (CORPUS / "MANIFEST.tsv").is_file():
        return [pytest.param("embedded", None, id="corpus-missing")]
    cases = []
    for deployment in DEPLOYMENTS:
        files = manifest(CORPUS) if deployment == "embedded" else issue_16_files(CORPUS)
        for path in files:
            name = path.relative_to(CORPUS).as_posix()
            marks = ([pytest.mark.xfail(strict=True, reason=EXPECTED_FAILURES[name])]
                     if name in EXPECTED_FAILURES else [])
            cases.append(pytest.param(deployment, name, id=f"{deployment}:{name}",
                                      marks=marks))
    return cases


CorpusRun = tuple[Deployment, dict[str, MediaRecord]]


@pytest.fixture(scope="module")
def embedded_corpus_run(tmp_path_factory: pytest.TempPathFactory) -> CorpusRun:
    """Every corpus file enqueued at once and drained by one worker (two jobs at a time)."""
    return drained(Deployment("embedded", dict(COMMON), tmp_path_factory.mktemp("corpus")),
                   manifest(CORPUS))


@pytest.fixture(scope="module")
def services_corpus_run(moto_endpoint: str, postgres_server: str, migrated_template: str,
                        tmp_path_factory: pytest.TempPathFactory) -> Iterator[CorpusRun]:
    """Issue 16's files the same way on moto S3 + SQS and a PostgreSQL database of their
    own."""
    with database(postgres_server, template=migrated_template) as url:
        deployment = _server_deployment(
            "services", s3=S3Server(moto_endpoint, "test", "test"),
            sqs_endpoint=moto_endpoint, postgres_url=url,
            queue_name=f"t-{uuid.uuid4().hex[:10]}",
            workdir=tmp_path_factory.mktemp("corpus-services"))
        yield drained(deployment, issue_16_files(CORPUS))


def drained(deployment: Deployment, files: list[Path]) -> CorpusRun:
    ids = deployment.enqueue(*files)
    started = time.monotonic()
    deployment.drain(concurrency=2)
    print(f"\nCORPUS {len(files)} files drained on {deployment.name} in "
          f"{time.monotonic() - started:.1f}s")
    with deployment.components() as components:
        records = {path.relative_to(CORPUS).as_posix(): components.repository.get(media_id)
                   for path, media_id in zip(files, ids, strict=True)}
    return deployment, {name: record for name, record in records.items() if record}


@pytest.mark.parametrize(("where", "name"), corpus_cases())
def test_corpus_file_ends_as_its_folder_expects(request: pytest.FixtureRequest, where: str,
                                                name: str | None) -> None:
    if not (CORPUS / "MANIFEST.tsv").is_file():
        pytest.skip(f"media corpus not found at {CORPUS} (set MEDIA_WORKER_CORPUS)")
    assert name is not None
    deployment, records = request.getfixturevalue(f"{where}_corpus_run")
    record = records[name]
    check_terminal(category(Path(name)), Path(name), record)
    check_readme_notes(name, record)
    if record.status is MediaStatus.READY:
        with deployment.components() as components:
            check_thumbnails(components.storage, record, deployment)
            if name in NEVER_BLACK:
                check_not_black(components.storage, record)


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


def check_readme_notes(name: str, record: MediaRecord) -> None:
    """What the README and MANIFEST.tsv say of single files: a PDF's page count and displayed
    orientation (page 1's size in points, /Rotate applied), the upright size of the phone
    photos it names, the motion photo's embedded video, the password-protected PDF's error."""
    meta = record.metadata or {}
    pdf = _PDF_NOTES.search(manifest_rows(CORPUS)[name]["notes"])
    if name.startswith("documents/pdf/") and pdf:
        pages, width_pt, height_pt = map(int, pdf.groups())
        assert meta["pages"] == pages, (name, meta)
        assert abs(meta["width"] / meta["height"] - width_pt / height_pt) < 0.01, (name, meta)
    if name in UPRIGHT_SIZES:
        assert (meta["width"], meta["height"]) == UPRIGHT_SIZES[name], (name, meta)
    if name in MOTION_PHOTOS:
        motion = meta["motionPhoto"]
        assert min(motion["offset"], motion["length"], motion["durationMs"]) > 0, (name, motion)
    if name in PASSWORD_PROTECTED:
        assert record.status is MediaStatus.FAILED, name
        assert "password-protected" in (record.error or ""), (name, record.error)


def check_not_black(storage, record: MediaRecord) -> None:
    for thumb in record.thumbnails or []:
        image = pyvips.Image.new_from_buffer(storage.read(thumb.bucket, thumb.key), "")
        assert image.max() > BLACK_MAXIMUM, (record.key, thumb.size)


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
