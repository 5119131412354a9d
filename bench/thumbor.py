"""3. Throughput against a real Thumbor server on localhost.

Thumbor (PyPI `thumbor`, its own venv `.venv-thumbor`) runs as two servers of one process each,
one per core, as behind a load balancer, with the file loader, no storage and no result
storage, so every request loads and renders. (One server with `--processes 2` is not used:
its forked processes share one listening socket, and both keep-alive clients could land on the
same process, leaving a core idle; measured runs swung between 4.9 and 9.1 photos/s.)
One HTTP request per size: `/unsafe/fit-in/WxH/filters:format(webp):quality(80)/F`.
Two client threads send requests (keep-alive), each to its own server, each taking the next
photo when done.

Ours: the worker's IsolatedEngine (its process pool, 2 children) fed by two threads, each
calling `render` with all three sizes, as the worker's poller does with WORKER_CONCURRENCY=2.
Both sides get the same photos in the same order; a pass renders every photo once, passes
alternate (ours, Thumbor, ours, …) and the median of the passes' photos per second is reported.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

from bench.common import (
    SIZES,
    THUMBOR_VENV,
    WEBP_Q80,
    Inputs,
    Report,
    Row,
    Skip,
    Target,
    free_port,
    isolated_engine,
    median,
    pass_of,
    run_concurrently,
)

TARGET = Target(">=", 3.0)
CLIENTS = 2

CONFIG = """\
LOADER = 'thumbor.loaders.file_loader'
FILE_LOADER_ROOT_PATH = {root!r}
STORAGE = 'thumbor.storages.no_storage'
RESULT_STORAGE = None
ALLOW_UNSAFE_URL = True
RESPECT_ORIENTATION = True
QUALITY = 80
WEBP_QUALITY = 80
AUTO_WEBP = False
MAX_PIXELS = 100000000
MAX_AGE = 0
"""


def thumbor_bench(inputs: Inputs, reps: int, report: Report) -> None:
    executable = THUMBOR_VENV / "bin" / "thumbor"
    if not executable.exists():
        raise Skip(f"Thumbor is not installed in {THUMBOR_VENV} "
                   "(python3 -m venv .venv-thumbor && .venv-thumbor/bin/pip install thumbor)")
    # Thumbor's Pillow engine has no HEIC opener; both sides get the same (JPEG) photos.
    photos = [photo for photo in inputs.photos if photo.path.suffix.lower() == ".jpg"]
    root = inputs.workdir / "thumbor-root"
    root.mkdir(exist_ok=True)
    names = []
    for index, photo in enumerate(photos):
        name = f"{index:02d}-{photo.name}"
        shutil.copyfile(photo.path, root / name)
        names.append(name)
    distinct = len(photos)
    per_pass = 6 if inputs.quick else 12
    photos, names = pass_of(photos, per_pass), pass_of(names, per_pass)
    with contextlib.ExitStack() as servers:
        ports = [servers.enter_context(_thumbor_server(executable, root, inputs.workdir, index))
                 for index in range(CLIENTS)]
        engine = isolated_engine(CLIENTS)
        try:
            ours_rates, thumbor_rates = [], []
            _ours_pass(engine, photos)  # warm-up: both pools spawn and import
            _thumbor_pass(ports, names)
            for _ in range(reps):
                ours_rates.append(_ours_pass(engine, photos))
                thumbor_rates.append(_thumbor_pass(ports, names))
        finally:
            engine.close()
    mine, theirs = median(ours_rates), median(thumbor_rates)
    report.add(Row("3 vs Thumbor (photos/s, 2 cores, 2 clients)",
                   f"JPEG photos (n={distinct}, {len(photos)} a pass; ours: "
                   "IsolatedEngine, 2 workers)",
                   f"{mine:.2f}/s", f"{theirs:.2f}/s", mine / theirs, TARGET))


def _ours_pass(engine: object, photos: list) -> float:
    tasks = [lambda p=photo: engine.render(p.source(), SIZES, WEBP_Q80) for photo in photos]
    start = time.perf_counter()
    finished = run_concurrently(tasks, CLIENTS)
    return len(tasks) / (max(finished) - start)


def _thumbor_pass(ports: list[int], names: list[str]) -> float:
    local = threading.local()
    unassigned = list(ports)
    lock = threading.Lock()

    def fetch(name: str) -> None:
        if not hasattr(local, "conn"):  # each client thread keeps to one server
            with lock:
                port = unassigned.pop()
            local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for size in SIZES:
            local.conn.request("GET", f"/unsafe/fit-in/{size.width}x{size.height}/"
                                      f"filters:format(webp):quality(80)/{name}")
            response = local.conn.getresponse()
            body = response.read()
            if response.status != 200 or not body.startswith(b"RIFF"):
                raise RuntimeError(f"Thumbor answered {response.status} for {name}")

    tasks = [lambda n=name: fetch(n) for name in names]
    start = time.perf_counter()
    finished = run_concurrently(tasks, CLIENTS)
    return len(tasks) / (max(finished) - start)


class _thumbor_server:  # noqa: N801 - used as a context manager, reads like a function
    def __init__(self, executable: Path, root: Path, workdir: Path, index: int) -> None:
        self.executable, self.root, self.workdir = executable, root, workdir
        self.index = index

    def __enter__(self) -> int:
        config = self.workdir / "thumbor.conf"
        config.write_text(CONFIG.format(root=str(self.root)))
        self.port = free_port()
        self.log = (self.workdir / f"thumbor-{self.index}.log").open("wb")
        self.process = subprocess.Popen(
            [str(self.executable), "-i", "127.0.0.1", "-p", str(self.port), "-c", str(config),
             "--processes", "1", "-l", "error"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"thumbor exited ({self.process.returncode}); see "
                                   f"{self.log.name}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthcheck",
                                            timeout=1):
                    return self.port
            except OSError:
                time.sleep(0.2)
        self.__exit__()
        raise RuntimeError("thumbor did not answer /healthcheck within 60 s")

    def __exit__(self, *_exc: object) -> None:
        # --processes forks: stop the whole group this benchmark started
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.log.close()
