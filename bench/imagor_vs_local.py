"""Per-image time of the imagorvideo engine (through a real Thumbor) next to the local engine.

Both engines render the same files, with the same three sizes (small 150, medium 480, large
1280, WebP q80), in one run, interleaved per file (local, remote, local, remote, …) so drifts
of the machine hit both alike. The time is the wall time of one `render` call as the worker
makes it: for the remote engine that is the local probe plus three signed HTTP requests, each
one a full Thumbor load (HTTP loader, from a file server on localhost standing in for the
presigned S3 URL) and render, as Thumbor runs with no storage and no result storage. One
request at a time, one Thumbor process: latency, not throughput.

Wall time suffers when other work shares the machine, so CPU time is reported too: the
worker process's own (libvips threads included) and, for the remote engine, Thumbor's on top
(read from /proc, 10 ms ticks: coarse for the smallest files).

    .venv/bin/python bench/imagor_vs_local.py [--reps 5] [--json]

Needs `.venv-thumbor` (`make thumbor`) and the corpus (../shared/corpus or MEDIA_WORKER_CORPUS).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

from media_worker.config import ThumbnailFormat
from media_worker.engines.imagor import ImagorEngine
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, SourceMedia, ThumbnailEngine
from media_worker.types import ThumbnailSize

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("MEDIA_WORKER_CORPUS", ROOT.parent / "shared" / "corpus"))
THUMBOR = ROOT / ".venv-thumbor" / "bin" / "thumbor"
SECRET = "bench-secret"
SIZES = ThumbnailSize.parse_list("small:150x150,medium:480x480,large:1280x1280")
OUTPUT = OutputSpec(ThumbnailFormat.WEBP, 80)
THUMBOR_CONF = """
SECURITY_KEY = {secret!r}
ALLOW_UNSAFE_URL = False
LOADER = 'thumbor.loaders.http_loader'
ALLOWED_SOURCES = ['127.0.0.1']
AUTO_WEBP = False
RESPECT_ORIENTATION = True
ALLOW_ANIMATED_GIFS = False
USE_GIFSICLE_ENGINE = None
STORAGE = 'thumbor.storages.no_storage'
RESULT_STORAGE = None
MAX_AGE = 0
"""


def bench_files() -> list[Path]:
    """Still images both engines handle: orientation and camera JPEGs, PNG, GIF, WebP."""
    images = CORPUS / "images"
    return [
        *sorted((images / "orientation").glob("*.jpg")),
        *sorted((images / "camera").glob("*.jpg")),
        images / "formats" / "png" / "pil123rgba.png",
        images / "formats" / "png" / "hopper.png",
        images / "formats" / "gif" / "iss634.gif",
        images / "formats" / "webp" / "flower.webp",
        images / "formats" / "webp" / "hopper_orientation_6.webp",
    ]


# --- the peers ------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def file_server(root: Path) -> Iterator[str]:
    """Serves the corpus over HTTP, as S3 serves a presigned GET."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class ThumborProcess:
    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """User + system CPU of the Thumbor process so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def thumbor_server() -> Iterator[ThumborProcess]:
    """One Thumbor process on a free port, configured as the README says."""
    if not THUMBOR.is_file():
        sys.exit(f"Thumbor not found at {THUMBOR}: run `make thumbor`")
    with tempfile.TemporaryDirectory(prefix="bench-thumbor-") as workdir:
        conf = Path(workdir) / "thumbor.conf"
        conf.write_text(THUMBOR_CONF.format(secret=SECRET))
        port = _free_port()
        process = subprocess.Popen(
            [str(THUMBOR), "-p", str(port), "-i", "127.0.0.1", "-c", str(conf), "-l", "error"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir)
        try:
            _wait_healthy(f"http://127.0.0.1:{port}/healthcheck")
            yield ThumborProcess(f"http://127.0.0.1:{port}", process.pid)
        finally:
            process.terminate()
            process.wait(timeout=10)


def _wait_healthy(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1):
            return
        time.sleep(0.1)
    sys.exit(f"Thumbor did not answer {url}")


# --- measuring ------------------------------------------------------------------------------
@dataclass
class Timing:
    """Wall and CPU times (seconds) of one file under both engines."""

    path: Path
    local: list[float] = field(default_factory=list)
    remote: list[float] = field(default_factory=list)
    local_cpu: list[float] = field(default_factory=list)
    remote_cpu: list[float] = field(default_factory=list)

    def row(self) -> dict[str, object]:
        local, remote = statistics.median(self.local), statistics.median(self.remote)
        return {"file": str(self.path.relative_to(CORPUS)), "local_ms": _ms(local),
                "imagor_ms": _ms(remote), "ratio": round(remote / local, 2),
                "local_cpu_ms": _ms(statistics.median(self.local_cpu)),
                "imagor_cpu_ms": _ms(statistics.median(self.remote_cpu))}


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def timed(engine: ThumbnailEngine, source: SourceMedia,
          thumbor: ThumborProcess | None = None) -> tuple[float, float]:
    """Wall time and CPU time (ours, plus Thumbor's when it rendered) of one render."""
    cpu = time.process_time() + (thumbor.cpu_seconds() if thumbor else 0.0)
    started = time.perf_counter()
    result = engine.render(source, SIZES, OUTPUT)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() + (thumbor.cpu_seconds() if thumbor else 0.0) - cpu
    assert len(result.thumbnails) == len(SIZES)
    return elapsed, cpu


def measure(files: list[Path], reps: int, local: ThumbnailEngine, remote: ThumbnailEngine,
            thumbor: ThumborProcess) -> list[Timing]:
    timings = []
    for path in files:
        key = str(path.relative_to(CORPUS))
        source = SourceMedia(path, "corpus", key)
        timed(local, source), timed(remote, source)  # warm caches and connections
        timing = Timing(path)
        for _ in range(reps):
            wall, cpu = timed(local, source)
            timing.local.append(wall)
            timing.local_cpu.append(cpu)
            wall, cpu = timed(remote, source, thumbor)
            timing.remote.append(wall)
            timing.remote_cpu.append(cpu)
        timings.append(timing)
    return timings


def summary(timings: list[Timing]) -> dict[str, float]:
    def medians(attribute: str) -> list[float]:
        return [statistics.median(getattr(t, attribute)) for t in timings]

    local, remote = medians("local"), medians("remote")
    return {"files": len(timings),
            "median_local_ms": _ms(statistics.median(local)),
            "median_imagor_ms": _ms(statistics.median(remote)),
            "median_ratio": round(statistics.median(
                r / lo for r, lo in zip(remote, local, strict=True)), 2),
            "median_local_cpu_ms": _ms(statistics.median(medians("local_cpu"))),
            "median_imagor_cpu_ms": _ms(statistics.median(medians("remote_cpu"))),
            "total_local_s": round(sum(local), 2), "total_imagor_s": round(sum(remote), 2),
            "load_average_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count() or 0}


def print_table(timings: list[Timing], totals: dict[str, float]) -> None:
    print(f"{'file':50} {'local ms':>9} {'imagor ms':>10} {'ratio':>6} {'local cpu':>10} "
          f"{'imagor cpu':>11}")
    for timing in timings:
        row = timing.row()
        print(f"{row['file']:50} {row['local_ms']:>9} {row['imagor_ms']:>10} {row['ratio']:>6} "
              f"{row['local_cpu_ms']:>10} {row['imagor_cpu_ms']:>11}")
    print(f"\nmedian per image over {totals['files']} files: local {totals['median_local_ms']} ms,"
          f" imagorvideo engine via Thumbor {totals['median_imagor_ms']} ms "
          f"(median ratio {totals['median_ratio']}x); CPU {totals['median_local_cpu_ms']} ms vs "
          f"{totals['median_imagor_cpu_ms']} ms (worker + Thumbor); sums "
          f"{totals['total_local_s']} s vs {totals['total_imagor_s']} s; load average "
          f"{totals['load_average_1m']} on {totals['cpus']} CPUs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="timed renders per file and engine")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    files = [path for path in bench_files() if path.is_file()]
    if not files:
        sys.exit(f"no corpus at {CORPUS}")
    with file_server(CORPUS) as files_url, thumbor_server() as thumbor:
        remote = ImagorEngine(base_url=thumbor.url, secret=SECRET, source="presigned",
                              presign=lambda _bucket, key, _s: f"{files_url}/{quote(key)}")
        local = LocalEngine(max_pixels=100_000_000, max_video_seconds=14_400)
        try:
            timings = measure(files, args.reps, local, remote, thumbor)
        finally:
            remote.close()
    totals = summary(timings)
    if args.json:
        print(json.dumps({"rows": [t.row() for t in timings], "summary": totals}, indent=2))
    else:
        print_table(timings, totals)


if __name__ == "__main__":
    main()
