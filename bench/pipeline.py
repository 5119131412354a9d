"""5. End to end, 6. memory, and libvips threads against job-level parallelism.

The worker is the real `media-worker run --drain` command in a subprocess (the test harness's
`Deployment`), against a moto S3 + SQS server this benchmark starts on a free port and a fresh
PostgreSQL database it creates on 127.0.0.1:5432 and drops afterwards. Jobs are enqueued first
(`media-worker enqueue`, as the API would), then the worker drains the queue.

- Throughput is the steady rate: jobs per second from the `concurrency`-th `ready` event to the
  last (start-up of the process and its pool excluded; the wall-clock rate is printed too).
  The engine-only rate is the same measure on the same files with the same concurrency, through
  the worker's own IsolatedEngine, the files already on local disk.
- Latency is each `ready` log event's `seconds` (receive to done).
- CPU utilisation: the worker's and its children's user+sys (getrusage of the waited-for
  process tree) / wall / cores. moto's and PostgreSQL's CPU over the same window is printed
  too: on a 2-core machine they run on the same cores as the worker.
- Memory: /proc is sampled every 20 ms; the peak of the summed RSS of the worker and all its
  descendants is reported (and the PSS sum, which does not count shared pages twice).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import boto3
import psycopg
from psycopg import sql
from tests.conftest import _wait_for_http
from tests.integration.conftest import COMMON
from tests.integration.deployments import Deployment, log_events

from bench.common import (
    CORES,
    POSTGRES_ADMIN_URL,
    SIZES,
    WEBP_Q80,
    Inputs,
    Report,
    Row,
    Skip,
    Target,
    children_cpu,
    free_port,
    isolated_engine,
    median,
    pass_of,
    percentile,
    run_concurrently,
    steady_rate,
)
from media_worker.engines.port import SourceMedia

E2E_TARGET = Target(">=", 0.85)
MEMORY_LIMIT_MB = 300
MEMORY_TARGET = Target("<=", 1.0)
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


# --- services -----------------------------------------------------------------------------
@dataclass
class Services:
    endpoint: str
    moto: subprocess.Popen[bytes]


@contextmanager
def services(workdir: Path) -> Iterator[Services]:
    """A moto S3 + SQS server on a free port; PostgreSQL must answer at 127.0.0.1:5432."""
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise Skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL} ({first}); "
                   "scripts/ensure-postgres.sh starts the local cluster") from None
    port = free_port()
    with (workdir / "moto.log").open("wb") as log:
        moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                 "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_for_http(f"{endpoint}/moto-api/", moto)
        yield Services(endpoint, moto)
    finally:
        moto.terminate()
        moto.wait(timeout=10)


@contextmanager
def deployment(svc: Services, workdir: Path,
               worker_env: dict[str, str] | None = None) -> Iterator[Deployment]:
    """A fresh database, queue (+ dead-letter queue) and bucket; the database is dropped after."""
    name = f"mw_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        sqs = boto3.client("sqs", endpoint_url=svc.endpoint, region_name="us-east-1",
                           aws_access_key_id="test", aws_secret_access_key="test")
        queue = name.replace("_", "-")
        queue_url = sqs.create_queue(QueueName=queue)["QueueUrl"]
        dlq_url = sqs.create_queue(QueueName=f"{queue}-dlq")["QueueUrl"]
        env = COMMON | {
            "DATABASE_URL": POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}",
            "SQS_QUEUE_URL": queue_url, "SQS_ENDPOINT": svc.endpoint, "SQS_DLQ_URL": dlq_url,
            "MINIO_ENDPOINT": svc.endpoint, "MINIO_BUCKET": queue,
            "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
            "MINIO_ACCESS_KEY": "test", "MINIO_SECRET_KEY": "test",
            "RECONCILE_INTERVAL_SECONDS": "0",
        } | (worker_env or {})
        directory = workdir / name
        directory.mkdir()
        deployed = Deployment("bench", env, directory)
        result = deployed.command("migrate")
        if result.returncode != 0:
            raise RuntimeError(f"media-worker migrate failed: {result.stderr[-500:]}")
        yield deployed
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))


# --- /proc sampling -----------------------------------------------------------------------
def _read(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return ""


def _stat_fields(pid: int) -> list[str]:
    text = _read(f"/proc/{pid}/stat")
    return text[text.rfind(")") + 2:].split() if text else []


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a live process so far, its own threads only."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / TICKS if fields else 0.0


def postgres_cpu() -> float:
    """CPU seconds of every live PostgreSQL server process (the cluster is shared)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _read(f"/proc/{entry}/comm").strip() == "postgres":
            total += process_cpu(int(entry))
    return total


def machine_busy() -> float:
    """CPU seconds all cores of the machine have spent busy (not idle or waiting) so far."""
    values = [int(value) for value in _read("/proc/stat").splitlines()[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / TICKS


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


@dataclass
class TreeSampler:
    """Samples the summed RSS (and PSS) of a process and its descendants in a thread."""

    root: int
    interval: float = 0.02
    peak_rss: int = 0
    peak_pss: int = 0
    hwm: dict[int, int] = field(default_factory=dict)  # per-process VmHWM (kernel's own peak)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        pids, tick = [self.root], 0
        while not self._stop.is_set():
            if tick % 25 == 0:
                pids = descendants(self.root)
            rss = 0
            for pid in pids:
                statm = _read(f"/proc/{pid}/statm").split()
                rss += int(statm[1]) * PAGE if statm else 0
                for line in _read(f"/proc/{pid}/status").splitlines():
                    if line.startswith("VmHWM:"):
                        self.hwm[pid] = max(self.hwm.get(pid, 0), int(line.split()[1]) * 1024)
            self.peak_rss = max(self.peak_rss, rss)
            if tick % 5 == 0:
                pss = 0
                for pid in pids:
                    for line in _read(f"/proc/{pid}/smaps_rollup").splitlines():
                        if line.startswith("Pss:"):
                            pss += int(line.split()[1]) * 1024
                self.peak_pss = max(self.peak_pss, pss)
            tick += 1
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


# --- one worker run -----------------------------------------------------------------------
@dataclass
class WorkerRun:
    jobs: int
    concurrency: int
    wall: float
    cpu: float
    moto_cpu: float
    postgres_cpu: float
    machine_cpu: float
    ready_times: list[float]
    latencies: list[float]
    stages: dict[str, float]
    outcomes: Counter[str]
    sampler: TreeSampler
    started_at: float = 0.0  # time.time() when the worker process was started

    @property
    def steady_rate(self) -> float:
        return steady_rate(self.ready_times, self.concurrency)

    @property
    def utilisation(self) -> float:
        return self.cpu / self.wall / CORES


def run_worker(deployed: Deployment, svc: Services, files: list[Path], concurrency: int,
               log: Path, *, sample_interval: float) -> WorkerRun:
    """Enqueue `files`, then time `media-worker run --drain --concurrency N` over them."""
    media_ids = deployed.enqueue(*files)
    if len(media_ids) != len(files):
        raise RuntimeError(f"enqueued {len(media_ids)} of {len(files)} files")
    cpu, moto, pg = children_cpu(), process_cpu(svc.moto.pid), postgres_cpu()
    busy = machine_busy()
    started_at, start = time.time(), time.perf_counter()
    process = deployed.start("run", "--drain", "--concurrency", str(concurrency), log=log)
    sampler = TreeSampler(process.pid, interval=sample_interval)
    try:
        process.wait(timeout=1800)
    finally:
        sampler.stop()
    wall = time.perf_counter() - start
    cpu, moto = children_cpu() - cpu, process_cpu(svc.moto.pid) - moto
    pg, busy = postgres_cpu() - pg, machine_busy() - busy
    if process.returncode != 0:
        raise RuntimeError(f"worker exited {process.returncode}; see {log}")
    events = log_events(log.read_text())
    outcomes = Counter(str(event.get("event")) for event in events
                       if event.get("event") in ("ready", "failed permanently",
                                                 "transient failure, will retry"))
    ready = [event for event in events if event.get("event") == "ready"]
    return WorkerRun(
        jobs=len(files), concurrency=concurrency, wall=wall, cpu=cpu, moto_cpu=moto,
        postgres_cpu=pg, machine_cpu=busy,
        ready_times=[datetime.fromisoformat(event["timestamp"]).timestamp() for event in ready],
        latencies=[float(event["seconds"]) for event in ready],
        stages=_stage_totals(ready),
        outcomes=outcomes, sampler=sampler, started_at=started_at)


def _stage_totals(ready: list[dict]) -> dict[str, float]:
    """Seconds spent in each stage over all jobs, and in the rest (claim, finish, delete)."""
    totals: Counter[str] = Counter()
    for event in ready:
        for stage, value in (event.get("stages") or {}).items():
            totals[stage] += float(value)
        totals["total"] += float(event["seconds"])
    totals["other"] = totals["total"] - sum(v for k, v in totals.items() if k != "total")
    return dict(totals)


def engine_only_rate(files: list[Path], concurrency: int) -> float:
    """The steady rate of the worker's IsolatedEngine alone on `files`, `concurrency` at once."""
    engine = isolated_engine(concurrency)
    try:
        tasks = [lambda p=path: engine.render(SourceMedia(p, "bench", p.name), SIZES, WEBP_Q80)
                 for path in files]
        return steady_rate(run_concurrently(tasks, concurrency), concurrency)
    finally:
        engine.close()


# --- 5. end to end ------------------------------------------------------------------------
def e2e_bench(inputs: Inputs, report: Report, svc: Services, *, jobs: int,
              concurrencies: tuple[int, ...]) -> None:
    base = inputs.pipeline_files
    files = [base[i % len(base)] for i in range(jobs)]
    for concurrency in concurrencies:
        # The engine alone runs just before and just after the pipeline (quick: before only),
        # and the mean of the two is the reference: load from other processes on the machine
        # then hits both alike.
        before = engine_only_rate(files, concurrency)
        with deployment(svc, inputs.workdir, inputs.worker_env) as deployed:
            run = run_worker(deployed, svc, files, concurrency,
                             inputs.workdir / f"worker-e2e-c{concurrency}.log",
                             sample_interval=0.25)
        after = before if inputs.quick else engine_only_rate(files, concurrency)
        engine_rate = (before + after) / 2
        if run.outcomes["ready"] != jobs:
            report.note(f"5 e2e c={concurrency}: outcomes {dict(run.outcomes)} of {jobs} jobs")
        primary = concurrency == concurrencies[0]
        report.add(Row(f"5 end to end (jobs/s, concurrency {concurrency})",
                       f"{jobs} jobs, moto S3+SQS + PostgreSQL vs engine only",
                       f"{run.steady_rate:.2f}/s", f"{engine_rate:.2f}/s",
                       run.steady_rate / engine_rate, E2E_TARGET if primary else None))
        # moto (a Python server on the same two cores) is not part of the pipeline in
        # production; judged as is above, and here against the CPU it left to the engine.
        moto_share = run.moto_cpu / (run.wall * CORES)
        report.add(Row(f"5b end to end vs engine on the CPU moto left (c={concurrency}, info)",
                       f"engine alone x (1 - moto's {moto_share:.0%} of the cores)",
                       f"{run.steady_rate:.2f}/s", f"{engine_rate * (1 - moto_share):.2f}/s",
                       run.steady_rate / (engine_rate * (1 - moto_share))))
        report.add(Row(f"5 end to end (concurrency {concurrency})", "job latency p50 / p95",
                       f"{median(run.latencies):.2f} s / {percentile(run.latencies, 0.95):.2f} s",
                       ""))
        share = ", ".join(f"{stage} {value / run.stages['total']:.0%}"
                          for stage, value in run.stages.items() if stage != "total")
        report.note(f"5 e2e c={concurrency}: where a job's time goes (sum over jobs): {share}")
        report.note(
            f"5 e2e c={concurrency}: worker CPU utilisation {run.utilisation:.0%} of {CORES} "
            f"cores (user+sys {run.cpu:.1f} s over {run.wall:.1f} s wall, start-up included); "
            f"wall-clock rate incl. start-up {jobs / run.wall:.2f} jobs/s; over the same "
            f"window moto used {run.moto_cpu:.1f} s CPU and PostgreSQL {run.postgres_cpu:.1f} s "
            f"({(run.cpu + run.moto_cpu + run.postgres_cpu) / run.wall / CORES:.0%} of the "
            f"machine with the worker; other processes on the machine used "
            f"{max(0.0, run.machine_cpu - run.cpu - run.moto_cpu - run.postgres_cpu):.1f} s); "
            f"engine alone before/after {before:.2f}/{after:.2f} jobs/s; peak RSS of the "
            f"worker tree "
            f"{run.sampler.peak_rss / 2**20:.0f} MB")


# --- 6. memory ----------------------------------------------------------------------------
def memory_bench(inputs: Inputs, report: Report, svc: Services, *, runs: int) -> None:
    big = [inputs.corpus_file("images/formats/jpeg/craft-beer.jpg"),
           *(photo.path for photo in inputs.photos if photo.group == "JPEG 24 MP upscaled")]
    small = [inputs.corpus_file("images/camera/DSCN0010.jpg")] * 2
    cases = {
        "baseline: 2 small JPEGs (640x480)": small,
        f"24 MP JPEGs, progressive + baseline ({len(big) * 3} jobs)": big * 3,
        f"decompression bombs ({len(inputs.bombs)} jobs)": inputs.bombs,
    }
    if not inputs.quick:
        cases[f"the end-to-end mix, once each ({len(inputs.pipeline_files)} jobs)"] = (
            inputs.pipeline_files)
    for case, files in cases.items():
        peaks, pss, hwm, outcomes = [], [], [], Counter()
        for attempt in range(runs):
            with deployment(svc, inputs.workdir, inputs.worker_env) as deployed:
                run = run_worker(deployed, svc, files, 2,
                                 inputs.workdir / f"worker-memory-{attempt}-{len(files)}.log",
                                 sample_interval=0.02)
            peaks.append(run.sampler.peak_rss)
            pss.append(run.sampler.peak_pss)
            hwm.append(sorted(run.sampler.hwm.values(), reverse=True))
            outcomes += run.outcomes
        worst = max(peaks)
        report.add(Row("6 memory: peak RSS, worker + children (concurrency 2)", case,
                       f"{worst / 2**20:.0f} MB", f"limit {MEMORY_LIMIT_MB} MB",
                       worst / 2**20 / MEMORY_LIMIT_MB, MEMORY_TARGET))
        report.add(Row("6 memory: peak PSS, worker + children (concurrency 2)",
                       f"{case}: shared pages counted once (as a container limit is)",
                       f"{max(pss) / 2**20:.0f} MB", f"limit {MEMORY_LIMIT_MB} MB",
                       max(pss) / 2**20 / MEMORY_LIMIT_MB, MEMORY_TARGET))
        per_process = ", ".join(f"{value / 2**20:.0f}" for value in hwm[peaks.index(worst)])
        report.note(f"6 memory, {case}: worst of {runs} run(s); PSS peak {max(pss) / 2**20:.0f} "
                    f"MB; per-process peak RSS (VmHWM) {per_process} MB; outcomes "
                    f"{dict(outcomes)}")


# --- libvips threads against jobs in parallel -----------------------------------------------
def concurrency_bench(inputs: Inputs, reps: int, report: Report) -> None:
    """Engine-only photos per second through IsolatedEngine for (VIPS_CONCURRENCY, jobs).

    Every pool is started first (each with its VIPS_CONCURRENCY in the environment its
    children are spawned with), then passes alternate between the pools, so load from other
    processes on the machine falls on every combination alike."""
    combos = [("1", 1), ("1", 2), ("1", 3), ("2", 1), ("2", 2), (None, 2)]
    if inputs.quick:
        combos = [("1", 2), (None, 2)]
    files = pass_of([photo.path for photo in inputs.photos], 4 if inputs.quick else 12)
    pools = []
    try:
        for threads, jobs in combos:
            pools.append(_Pool.start(threads, jobs, files[0]))
        for _ in range(reps):
            for pool in pools:
                pool.run_pass(files)
    finally:
        for pool in pools:
            pool.engine.close()
    lines = ["| VIPS_CONCURRENCY | jobs at once | photos/s (median) | CPU utilisation |",
             "|---|---:|---:|---:|"]
    for pool in pools:
        label = pool.threads or f"unset (libvips: {CORES} threads)"
        lines.append(f"| {label} | {pool.jobs} | {median(pool.rates):.2f} | "
                     f"{pool.cpu / pool.wall / CORES:.0%} |")
    report.section(f"libvips threads vs jobs in parallel ({len(files)} photos a pass, "
                   f"{reps} passes, IsolatedEngine; CPU utilisation: the pool's children)",
                   "\n".join(lines))


@dataclass
class _Pool:
    threads: str | None
    jobs: int
    engine: object
    pids: set[int]
    rates: list[float] = field(default_factory=list)
    cpu: float = 0.0
    wall: float = 0.0

    @classmethod
    def start(cls, threads: str | None, jobs: int, warm_file: Path) -> _Pool:
        saved = os.environ.get("VIPS_CONCURRENCY")
        if threads is None:
            os.environ.pop("VIPS_CONCURRENCY", None)
        else:
            os.environ["VIPS_CONCURRENCY"] = threads
        before = set(descendants(os.getpid()))
        try:
            engine = isolated_engine(jobs)
            warm = [lambda: engine.render(SourceMedia(warm_file, "b", "k"), SIZES, WEBP_Q80)]
            run_concurrently(warm * (2 * jobs), jobs)  # children spawned with this environment
        finally:
            if saved is None:
                os.environ.pop("VIPS_CONCURRENCY", None)
            else:
                os.environ["VIPS_CONCURRENCY"] = saved
        return cls(threads, jobs, engine, set(descendants(os.getpid())) - before)

    def run_pass(self, files: list[Path]) -> None:
        tasks = [lambda p=path: self.engine.render(SourceMedia(p, "b", "k"), SIZES, WEBP_Q80)
                 for path in files]
        cpu = sum(process_cpu(pid) for pid in self.pids)
        start = time.perf_counter()
        finished = run_concurrently(tasks, self.jobs)
        self.wall += max(finished) - start
        self.cpu += sum(process_cpu(pid) for pid in self.pids) - cpu
        self.rates.append(len(tasks) / (max(finished) - start))
