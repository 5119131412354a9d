"""The soak: many mixed corpus jobs through a fleet of real workers, one SIGKILLed every 30 s.

    .venv/bin/python -m bench.soak                # 5,000 jobs (about 13 minutes here)
    .venv/bin/python -m bench.soak --jobs 300     # a 2-3 minute check
    .venv/bin/python -m bench.run --only soak [--soak-jobs N]

A benchmark, not a test: it asserts nothing and prints what it measured. Set-up as bench 5:
a moto S3 + SQS server on a free port (`python -m moto.server`) and a fresh PostgreSQL database
on 127.0.0.1:5432 (dropped at the end), `media-worker migrate`. Then:

- **Producer** (this process, through the worker's own adapters, as `media-worker enqueue`
  does): each distinct corpus file is stored once; every job is a new `Media` row (its own
  id, PENDING) pointing at one of them, and a job message. Jobs are sent as the fleet
  finishes them, keeping at most `--backlog` unfinished, until `--jobs` have been sent: a
  steady arrival, not one deep queue. The mix: every photo and top-level video of the corpus
  that is expected READY (images/orientation, camera, formats, hdr; videos/), drawn uniformly
  with a fixed seed, and `--malformed-share` of malformed files that fail fast.
- **Fleet**: `--workers` `media-worker run` processes (`LOG_FORMAT=json`, each incarnation
  logging to its own file), `SQS_VISIBILITY_TIMEOUT=30` (also the rows' lease) so that a
  killed worker's jobs come back within 30 s, other settings the defaults (the reconciliation
  sweep included). Every `--kill-every` seconds the worker of slot 0 is SIGKILLed (the process
  only: its decoder children are left to notice) and started again at once; the other slots
  live the whole run, so their memory over time means something.
- **Stop conditions**, bounded in count and time: kills stop when every job is READY or FAILED
  or at `--time-limit`; then the fleet drains for at most `--drain-timeout`, is stopped with
  SIGTERM (SIGKILL after the shutdown grace) and the rows, queues and logs are read.

Metrics (defined the same way in docs/performance.md):

- **lost**: a submitted job whose row is not READY or FAILED at the end *and* for which no
  message is left in the queue or the dead-letter queue: nothing would ever finish it (short
  of the reconciliation sweep re-sending it).
- **stuck**: a row still PENDING or PROCESSING after the drain (lost or not).
- **processed twice**: a row with two or more `ready` events (completions: `PROCESSING →
  READY` committed and logged) across every worker's log. A job interrupted by a SIGKILL and
  claimed again (`attempts` ≥ 2) is a legitimate retry and is counted separately, as is a row
  READY with no `ready` event (its worker was killed between the commit and the log line).
- **throughput**: READY + FAILED rows per minute, from the fleet's start to the moment the
  last job became final; also per whole minute (median, min, max).
- **RSS**: every second, each slot's worker process and its descendants (decoders, the
  multiprocessing helper) from /proc. "RSS at job k" is the median of the samples taken
  while the count of final rows was in (k - w, k], w = k_early / 5, for k_early (500, or a
  fifth of the jobs in a small run) and k = all jobs; growth = late / early - 1, target
  ≤ 10%, judged on the slots that are never killed.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import mimetypes
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from bench.common import CORPUS, Report, Row, Skip, Target, load_average, median, percentile
from bench.pipeline import PAGE, Services, deployment, descendants, services
from media_worker.repository.port import NewMedia
from media_worker.types import WorkerQueueMessage

READY_FOLDERS = ("images/orientation/", "images/camera/", "images/formats/", "images/hdr/")
# Malformed files that end quickly (a permanent failure from the header or the first bytes, or
# a partial picture): what real uploads also contain now and then.
FAST_MALFORMED = ("images/malformed/truncated.jpg", "images/malformed/corrupt-header.jpg",
                  "images/malformed/broken.png", "images/malformed/truncated.png",
                  "images/malformed/empty.heic", "images/malformed/shortfile.bmp",
                  "videos/malformed/init_truncated.mp4")
RSS_GROWTH_TARGET = Target("<=", 0.10)
FINAL = ("READY", "FAILED")
MAX_CRASHES = 10
ORPHAN_LIMIT = 120.0  # seconds a killed worker's decoder may go on before the soak ends it
SNAPSHOT_VARIABLE = "MEDIA_WORKER_SOAK_SNAPSHOT"  # "<commit> <directory>" once re-executed


# --- the mix --------------------------------------------------------------------------------
def corpus_mix() -> tuple[list[Path], list[Path]]:
    """(READY-expected photos and videos, fast-failing malformed files) of the corpus."""
    manifest = CORPUS / "MANIFEST.tsv"
    if not manifest.is_file():
        raise Skip(f"media corpus not found at {CORPUS} (set MEDIA_WORKER_CORPUS)")
    with manifest.open(newline="") as handle:
        paths = [row["path"] for row in csv.DictReader(handle, delimiter="\t")]
    good = [CORPUS / p for p in paths
            if p.startswith(READY_FOLDERS) or (p.startswith("videos/") and p.count("/") == 1)]
    bad = [CORPUS / p for p in FAST_MALFORMED if p in paths]
    return [p for p in good if p.is_file()], [p for p in bad if p.is_file()]


def job_files(good: list[Path], bad: list[Path], jobs: int, malformed_share: float,
              seed: int) -> list[Path]:
    chooser = random.Random(seed)
    return [chooser.choice(bad) if bad and chooser.random() < malformed_share
            else chooser.choice(good) for _ in range(jobs)]


# --- the fleet ------------------------------------------------------------------------------
@dataclass
class Slot:
    """One worker position of the fleet; `process` is its current incarnation."""

    index: int
    process: subprocess.Popen[bytes] | None = None
    incarnation: int = 0
    logs: list[Path] = field(default_factory=list)
    started_at: float = 0.0


@dataclass
class Sample:
    at: float
    counts: dict[str, int]
    rss: dict[int, dict[str, int]]  # slot -> {"worker": own RSS, "tree": with descendants}


@dataclass
class Kill:
    at: float
    pid: int
    processing: int  # rows PROCESSING fleet-wide at the last sample before the kill
    children: list[int]
    orphans_after_5s: int = -1  # its decoder processes still running 5 s after the kill
    last_orphan_exit: float = 0.0  # seconds after the kill when the last of them ended
    orphans_ended_by_soak: int = 0  # still running ORPHAN_LIMIT s after the kill: ended here
    watching: list[int] = field(default_factory=list)


def rss_of(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as handle:
            return int(handle.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def alive(pid: int) -> bool:
    """A live process (not a zombie waiting to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            text = handle.read()
    except OSError:
        return False
    return text[text.rfind(")") + 2:].split()[0] != "Z"


def tree_rss(pid: int) -> dict[str, int]:
    pids = descendants(pid)
    return {"worker": rss_of(pid), "tree": sum(rss_of(p) for p in pids),
            "processes": len(pids)}


# --- options --------------------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=5000, help="jobs to send (default 5000)")
    p.add_argument("--workers", type=int, default=3, help="worker processes (default 3)")
    p.add_argument("--concurrency", type=int, default=None,
                   help="WORKER_CONCURRENCY of each worker (default: the worker's, = cores)")
    p.add_argument("--kill-every", type=float, default=30.0,
                   help="seconds between SIGKILLs of slot 0's worker (0: never; default 30)")
    p.add_argument("--visibility-timeout", type=int, default=30,
                   help="SQS_VISIBILITY_TIMEOUT of the workers, also the rows' lease (30)")
    p.add_argument("--backlog", type=int, default=100,
                   help="unfinished jobs kept in the system while sending (default 100)")
    p.add_argument("--malformed-share", type=float, default=0.02,
                   help="share of fast-failing malformed files in the mix (default 0.02)")
    p.add_argument("--seed", type=int, default=5, help="seed of the mix (default 5)")
    p.add_argument("--rss-early", type=int, default=None,
                   help="job count of the first RSS point (default: 500, or jobs/5 if less)")
    p.add_argument("--time-limit", type=float, default=None,
                   help="seconds of sending and killing at most (default: 300 + 0.5 per job)")
    p.add_argument("--drain-timeout", type=float, default=None,
                   help="seconds to wait for the last jobs after that (default: 4 x the "
                        "visibility timeout + 60)")
    p.add_argument("--keep", type=Path, default=None,
                   help="copy the worker logs and a summary here (default: discarded)")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra setting for every worker, e.g. DECODE_MEMORY_MB=96")
    p.add_argument("--snapshot", action="store_true",
                   help="measure the committed src/ of HEAD (a `git archive` copy on "
                        "PYTHONPATH, for this process and every worker), not a working tree "
                        "that others may be editing during a long run")
    return p


# --- the run --------------------------------------------------------------------------------
class Soak:
    def __init__(self, options: argparse.Namespace, workdir: Path) -> None:
        self.o = options
        self.workdir = workdir
        self.logdir = workdir / "logs"
        self.logdir.mkdir(parents=True, exist_ok=True)
        good, bad = corpus_mix()
        self.good, self.bad = set(good), set(bad)
        self.files = job_files(good, bad, options.jobs, options.malformed_share, options.seed)
        self.sent: list[tuple[str, Path]] = []  # (media id, corpus file), in sending order
        self.samples: list[Sample] = []
        self.kills: list[Kill] = []
        self.slots: list[Slot] = []
        self.phases: dict[str, float] = {}
        self.crashes = 0
        self.worker_env = {
            "LOG_FORMAT": "json", "LOG_LEVEL": "info",
            "SQS_VISIBILITY_TIMEOUT": str(options.visibility_timeout),
            "SQS_WAIT_TIME_SECONDS": "2", "SQS_POLL_INTERVAL_MS": "500",
            "RECONCILE_INTERVAL_SECONDS": "300",  # the default: the bench harness turns it off
        } | dict(item.partition("=")[::2] for item in options.env)
        if options.concurrency:
            self.worker_env["WORKER_CONCURRENCY"] = str(options.concurrency)

    # --- driving ------------------------------------------------------------------------
    def run(self, svc: Services) -> dict:
        with deployment(svc, self.workdir, self.worker_env) as deployed:
            self.deployed = deployed
            self.database_url = deployed.env["DATABASE_URL"]
            with deployed.components() as components, psycopg.connect(
                    self.database_url, autocommit=True) as db:
                self.components, self.db = components, db
                self._store_originals()
                try:
                    self._drive()
                finally:
                    self._stop_fleet()
                return self._results(svc)

    def _store_originals(self) -> None:
        bucket = self.deployed.env["MINIO_BUCKET"]
        self.components.storage.ensure_bucket(bucket)
        self.keys: dict[Path, str] = {}
        for index, path in enumerate(sorted(set(self.files))):
            key = f"uploads/soak/{index:03d}/{path.name}"
            mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            self.components.storage.upload_file(bucket, key, path, mime)
            self.keys[path] = key

    def _send(self, count: int) -> None:
        """Insert `count` PENDING rows and send their jobs, as the API does."""
        bucket = self.deployed.env["MINIO_BUCKET"]
        repository, queue = self.components.repository, self.components.queue
        for path in self.files[len(self.sent):len(self.sent) + count]:
            media_id, key = str(uuid.uuid4()), self.keys[path]
            mime = mimetypes.guess_type(path.name)[0]
            repository.insert(NewMedia(id=media_id, bucket=bucket, key=key, mime_type=mime,
                                       size=path.stat().st_size))
            message = WorkerQueueMessage(job_id=str(uuid.uuid4()), media_id=media_id,
                                         bucket=bucket, key=key, mime_type=mime)
            queue.send(json.dumps(message.to_wire()))
            self.sent.append((media_id, path))

    def _start(self, slot: Slot) -> None:
        slot.incarnation += 1
        log = self.logdir / f"worker{slot.index}-{slot.incarnation:03d}.log"
        slot.logs.append(log)
        slot.process = self.deployed.start("run", log=log)
        slot.started_at = time.monotonic()

    def _counts(self) -> dict[str, int]:
        rows = self.db.execute('SELECT "status"::text, count(*) FROM "Media" GROUP BY 1')
        return dict.fromkeys(("PENDING", "PROCESSING", "READY", "FAILED"), 0) | dict(rows)

    def _sample(self) -> Sample:
        rss = {slot.index: tree_rss(slot.process.pid) for slot in self.slots
               if slot.process is not None and slot.process.poll() is None}
        sample = Sample(time.monotonic(), self._counts(), rss)
        self.samples.append(sample)
        return sample

    def _drive(self) -> None:
        o = self.o
        time_limit = o.time_limit if o.time_limit is not None else 300 + 0.5 * o.jobs
        drain = (o.drain_timeout if o.drain_timeout is not None
                 else 4 * o.visibility_timeout + 60)
        self._send(min(o.backlog, o.jobs))
        self.slots = [Slot(index) for index in range(o.workers)]
        self.t0 = time.monotonic()
        for slot in self.slots:
            self._start(slot)
        next_kill = self.t0 + o.kill_every if o.kill_every > 0 else float("inf")
        deadline, last_report = self.t0 + time_limit, self.t0
        done_at = None
        while True:
            sample = self._sample()
            finished = sample.counts["READY"] + sample.counts["FAILED"]
            if finished >= o.jobs:
                done_at = sample.at
                break
            now = time.monotonic()
            if now >= deadline:
                print(f"  time limit ({time_limit:.0f} s) reached with {finished} of {o.jobs} "
                      "final; draining", flush=True)
                break
            if len(self.sent) < o.jobs:
                self._send(max(0, min(o.backlog - (len(self.sent) - finished),
                                      o.jobs - len(self.sent))))
            if now >= next_kill:
                self._kill(self.slots[0], sample)
                next_kill += o.kill_every
            self._check_orphans()
            self._restart_exited()
            if now - last_report >= 30:
                last_report = now
                print(f"  {now - self.t0:5.0f} s: sent {len(self.sent)}, {sample.counts}, "
                      f"kills {len(self.kills)}, load {load_average()}", flush=True)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - now)))
        self.phases["kills stopped"] = time.monotonic() - self.t0
        drain_end = time.monotonic() + drain
        while done_at is None and time.monotonic() < drain_end:
            self._restart_exited()
            self._check_orphans()
            sample = self._sample()
            if sample.counts["READY"] + sample.counts["FAILED"] >= len(self.sent):
                done_at = sample.at
            else:
                time.sleep(1.0)
        self.done_at = done_at
        self.phases["drained"] = time.monotonic() - self.t0
        self._check_orphans(final=True)
        self.idle_rss = {slot.index: tree_rss(slot.process.pid) for slot in self.slots
                         if slot.process is not None and slot.process.poll() is None}

    def _kill(self, slot: Slot, sample: Sample) -> None:
        process = slot.process
        if process is None or process.poll() is not None:
            return
        children = [pid for pid in descendants(process.pid) if pid != process.pid]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        self.kills.append(Kill(time.monotonic(), process.pid, sample.counts["PROCESSING"],
                               children, watching=list(children)))
        self._start(slot)

    def _check_orphans(self, *, final: bool = False) -> None:
        """The processes a killed worker left (decoders, the multiprocessing helper): how
        many still run 5 s after the kill, when the last one ends; one still running
        ORPHAN_LIMIT s after the kill (or at the end of the run) is ended here by its pid."""
        for kill in self.kills:
            if not kill.watching:
                continue
            age = time.monotonic() - kill.at
            kill.watching = [pid for pid in kill.watching if alive(pid)]
            if kill.orphans_after_5s < 0 and (age >= 5 or final):
                kill.orphans_after_5s = len(kill.watching)
            if not kill.watching:
                kill.last_orphan_exit = age
            elif age >= ORPHAN_LIMIT or final:
                for pid in kill.watching:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                kill.orphans_ended_by_soak = len(kill.watching)
                kill.last_orphan_exit, kill.watching = age, []

    def _restart_exited(self) -> None:
        """A worker that exited by itself (a crash) is noted and started again; a fleet
        that keeps crashing (code that cannot start) ends the run."""
        for slot in self.slots:
            if slot.process is not None and slot.process.poll() is not None:
                self.crashes += 1
                print(f"  worker {slot.index} exited by itself with {slot.process.returncode}; "
                      f"see {slot.logs[-1]}", flush=True)
                self.phases[f"worker {slot.index} exited {slot.process.returncode} at"] = (
                    time.monotonic() - self.t0)
                if self.crashes > MAX_CRASHES:
                    tail = slot.logs[-1].read_text(errors="replace")[-1500:]
                    raise RuntimeError(f"workers exited by themselves {self.crashes} times; "
                                       f"the last log ends:\n{tail}")
                self._start(slot)

    def _stop_fleet(self) -> None:
        for slot in self.slots:
            if slot.process is not None and slot.process.poll() is None:
                slot.process.send_signal(signal.SIGTERM)
        for slot in self.slots:
            if slot.process is None:
                continue
            try:
                slot.process.wait(timeout=45)
            except subprocess.TimeoutExpired:
                slot.process.kill()
                slot.process.wait(timeout=10)
        self.phases["stopped"] = time.monotonic() - self.t0

    # --- results ------------------------------------------------------------------------
    def _results(self, svc: Services) -> dict:
        rows = {row[0]: row for row in self.db.execute(
            'SELECT "id", "status"::text, "attempts", "error", '
            'coalesce(jsonb_array_length("thumbnails"), 0) FROM "Media"')}
        leftover = self._messages_left()
        events = self._events()
        ready_events = Counter(e.get("mediaId") for e in events if e.get("event") == "ready")
        sent_ids = [media_id for media_id, _ in self.sent]
        final = {m for m in sent_ids if m in rows and rows[m][1] in FINAL}
        not_final = [m for m in sent_ids if m not in final]
        lost = [m for m in not_final if m not in leftover]
        twice = [m for m, n in ready_events.items() if n >= 2]
        retried = [m for m in sent_ids if m in rows and rows[m][2] >= 2]
        ready_no_event = [m for m in sent_ids if m in rows and rows[m][1] == "READY"
                          and not ready_events.get(m)]
        by_file = dict(self.sent)
        unexpected = Counter()
        for media_id in sent_ids:
            row = rows.get(media_id)
            if row and row[1] == "FAILED" and by_file[media_id] in self.good:
                unexpected[(by_file[media_id].name, (row[3] or "")[:120])] += 1
        thumbs_short = sum(1 for m in sent_ids if m in rows and rows[m][1] == "READY"
                           and rows[m][4] != 3)
        return {
            "sent": len(self.sent), "statuses": Counter(rows[m][1] for m in sent_ids if m in rows),
            "missing rows": sum(1 for m in sent_ids if m not in rows),
            "lost": lost, "stuck": not_final, "twice": twice, "retried": retried,
            "attempts": Counter(rows[m][2] for m in sent_ids if m in rows),
            "ready without event": ready_no_event, "unexpected failures": unexpected,
            "ready with other than 3 thumbnails": thumbs_short,
            "malformed": Counter(rows[m][1] for m in sent_ids
                                 if m in rows and by_file[m] in self.bad),
            "messages left": leftover, "events": events,
            "moto rss": rss_of(svc.moto.pid),
        }

    def _messages_left(self) -> dict[str, str]:
        """mediaId -> queue of every message still in the queue or the dead-letter queue
        (the fleet is stopped: hidden ones are waited for up to a visibility timeout)."""
        import boto3

        env = self.deployed.env
        sqs = boto3.client("sqs", endpoint_url=env["SQS_ENDPOINT"], region_name="us-east-1",
                           aws_access_key_id="test", aws_secret_access_key="test")
        found: dict[str, str] = {}
        for name, url in (("queue", env["SQS_QUEUE_URL"]), ("dlq", env["SQS_DLQ_URL"])):
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
            counts = attributes["Attributes"]
            total = sum(int(counts.get(k, 0)) for k in (
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed"))
            deadline = time.monotonic() + self.o.visibility_timeout + 10
            seen: set[str] = set()
            while total and len(seen) < total and time.monotonic() < deadline:
                answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                             WaitTimeSeconds=1, VisibilityTimeout=3600)
                for message in answer.get("Messages", []):
                    seen.add(message["MessageId"])
                    with contextlib.suppress(ValueError, AttributeError):
                        found[json.loads(message["Body"]).get("mediaId")] = name
        return found

    def _events(self) -> list[dict]:
        """Every JSON log line of every incarnation; a line cut by a SIGKILL is skipped."""
        events = []
        for slot in self.slots:
            for log in slot.logs:
                for line in log.read_text(errors="replace").splitlines():
                    if line.startswith("{"):
                        with contextlib.suppress(ValueError):
                            event = json.loads(line)
                            event["_slot"] = slot.index
                            events.append(event)
        return events


# --- reporting ------------------------------------------------------------------------------
def rss_at(samples: list[Sample], slot: int, k: int, window: int) -> dict[str, float] | None:
    """Median RSS of `slot` over the samples whose final-row count was in (k - window, k]."""
    chosen = [s.rss[slot] for s in samples if slot in s.rss
              and k - window < s.counts["READY"] + s.counts["FAILED"] <= k]
    if not chosen:
        return None
    return {key: median(v[key] for v in chosen) for key in ("worker", "tree")} | {
        "samples": len(chosen)}


def throughput(samples: list[Sample], t0: float, done_at: float | None) -> dict[str, float]:
    final = [(s.at - t0, s.counts["READY"] + s.counts["FAILED"]) for s in samples]
    end_at, end_count = (done_at - t0, final[-1][1]) if done_at else final[-1]
    per_minute = []
    minute = 1
    for at, count in final:
        if at >= minute * 60 and at <= end_at:
            per_minute.append(count)
            minute += 1
    deltas = [b - a for a, b in zip([0, *per_minute], per_minute, strict=False)]
    return {"overall": end_count / end_at * 60 if end_at > 0 else float("nan"),
            "minutes": deltas, "seconds": end_at, "final": end_count}


def summarise(soak: Soak, result: dict, report: Report) -> list[str]:
    o = soak.o
    lines: list[str] = []
    events = result["events"]
    ready = [e for e in events if e.get("event") == "ready"]
    tp = throughput(soak.samples, soak.t0, soak.done_at)
    minutes = tp["minutes"]
    orphans = [max(0, k.orphans_after_5s) for k in soak.kills]
    lingering = [k.last_orphan_exit for k in soak.kills if k.orphans_after_5s > 0]
    lines.append(f"jobs sent {result['sent']} ({len(soak.good)} READY-expected files, "
                 f"{len(soak.bad)} malformed at {o.malformed_share:.0%}); final statuses "
                 f"{dict(result['statuses'])}; rows missing {result['missing rows']}")
    lines.append(f"jobs lost: {len(result['lost'])} (not READY/FAILED at the end and no message "
                 f"left for them); stuck: {len(result['stuck'])} (PENDING/PROCESSING after the "
                 f"drain); messages left: {Counter(result['messages left'].values()) or 0}")
    lines.append(f"processed twice: {len(result['twice'])} rows with 2+ `ready` completions; "
                 f"claimed more than once (attempts >= 2, a retry after a kill): "
                 f"{len(result['retried'])}; attempts {dict(sorted(result['attempts'].items()))}; "
                 f"READY without a `ready` line (killed between commit and log): "
                 f"{len(result['ready without event'])}")
    lines.append(f"throughput: {tp['overall']:.0f} jobs/min ({tp['final']} final in "
                 f"{tp['seconds']:.0f} s from the fleet's start); per whole minute median "
                 f"{median(minutes) if minutes else float('nan'):.0f}, min "
                 f"{min(minutes, default=0)}, max {max(minutes, default=0)}")
    if ready:
        latencies = [float(e["seconds"]) for e in ready]
        lines.append(f"job latency (receive → READY): p50 {median(latencies):.2f} s, p95 "
                     f"{percentile(latencies, 0.95):.2f} s, max {max(latencies):.1f} s")
    lines.append(f"SIGKILLs: {len(soak.kills)} (every {o.kill_every:g} s, slot 0); rows "
                 f"PROCESSING fleet-wide at the kills: median "
                 f"{median(k.processing for k in soak.kills) if soak.kills else 0:.0f}; "
                 f"processes a killed worker left still running 5 s after the kill: "
                 f"{sum(orphans)} after {sum(1 for x in orphans if x)} of {len(orphans)} kills"
                 + (f" (the last of them ended {', '.join(f'{x:.0f}' for x in lingering)} s "
                    f"after the kill; ended by the soak at {ORPHAN_LIMIT:.0f} s: "
                    f"{sum(k.orphans_ended_by_soak for k in soak.kills)})" if lingering else ""))
    unexpected = result["unexpected failures"]
    lines.append(f"READY-expected files that ended FAILED: {sum(unexpected.values())}"
                 + "".join(f"\n    {n}× {name}: {error}"
                           for (name, error), n in unexpected.most_common(10)))
    lines.append(f"malformed jobs: {dict(result['malformed'])}; READY rows with other than 3 "
                 f"thumbnails: {result['ready with other than 3 thumbnails']}")
    outcomes = Counter(str(e.get("event")) for e in events
                       if e.get("level") in ("warning", "error"))
    lines.append("warnings/errors logged: " + ", ".join(
        f"{n}× {name}" for name, n in outcomes.most_common(12)))

    early = o.rss_early or min(500, max(1, o.jobs // 5))
    window = max(10, early // 5)
    late = len(soak.sent)
    lines.append(f"RSS (MB, median of 1 s samples while the final-row count was in (k-{window}, "
                 f"k]): worker process / worker + decoders; growth from job {early} to {late}")
    growths = []
    for slot in soak.slots:
        a, b = rss_at(soak.samples, slot.index, early, window), rss_at(
            soak.samples, slot.index, late, window)
        idle = soak.idle_rss.get(slot.index)
        killed = slot.index == 0 and soak.kills
        label = f"worker {slot.index}" + (f" (SIGKILLed, {slot.incarnation} incarnations)"
                                          if killed else " (never killed)")
        if a and b:
            growth = b["tree"] / a["tree"] - 1
            own = b["worker"] / a["worker"] - 1
            if not killed:
                growths.append(growth)
            lines.append(f"  {label}: at {early}: {a['worker'] / 2**20:.0f} / "
                         f"{a['tree'] / 2**20:.0f}; at {late}: {b['worker'] / 2**20:.0f} / "
                         f"{b['tree'] / 2**20:.0f}; growth {own:+.1%} / {growth:+.1%}"
                         + (f"; idle after the drain {idle['worker'] / 2**20:.0f} / "
                            f"{idle['tree'] / 2**20:.0f} ({idle['processes']} processes)"
                            if idle else ""))
        else:
            lines.append(f"  {label}: not enough samples at {early} or {late}")
    lines.append(f"moto's RSS at the end {result['moto rss'] / 2**20:.0f} MB; phases (s from "
                 f"the fleet's start): "
                 + ", ".join(f"{k} {v:.0f}" for k, v in soak.phases.items()))

    case = f"{result['sent']} jobs, {o.workers} workers, SIGKILL every {o.kill_every:g} s"
    report.add(Row("soak: jobs lost / stuck / processed twice", case,
                   f"{len(result['lost'])} / {len(result['stuck'])} / {len(result['twice'])}",
                   "0 / 0 / 0"))
    report.add(Row("soak: throughput", case, f"{tp['overall']:.0f} jobs/min", ""))
    for slot, growth in zip([s for s in soak.slots if not (s.index == 0 and soak.kills)],
                            growths, strict=False):
        report.add(Row("soak: RSS growth, worker + decoders", f"worker {slot.index}, job "
                       f"{early} → {late}", f"{growth:+.1%}", "+10%", growth,
                       RSS_GROWTH_TARGET))
    return lines


def run_soak(options: argparse.Namespace, report: Report) -> list[str]:
    """Run the soak and add its rows to `report`; returns the summary lines."""
    workdir = Path(tempfile.mkdtemp(prefix="mw-soak-"))
    started = time.monotonic()
    try:
        soak = Soak(options, workdir)
        print(f"soak: {options.jobs} jobs, {options.workers} workers, SIGKILL every "
              f"{options.kill_every:g} s; workdir {workdir}; load {load_average()}", flush=True)
        with services(workdir) as svc:
            result = soak.run(svc)
        lines = summarise(soak, result, report)
        lines.append(f"soak wall time {time.monotonic() - started:.0f} s; load average at the "
                     f"end {load_average()}")
        if options.keep:
            options.keep.mkdir(parents=True, exist_ok=True)
            for slot in soak.slots:
                for log in slot.logs:
                    (options.keep / log.name).write_bytes(log.read_bytes())
            (options.keep / "summary.txt").write_text("\n".join(lines) + "\n")
        return lines
    finally:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)


def snapshot_and_reexec(argv: list[str]) -> None:
    """Copy HEAD's src/ out of git and run this command again with it first on PYTHONPATH
    (the workers inherit it). Never returns."""
    root = Path(__file__).resolve().parent.parent
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, check=True,
                            capture_output=True, text=True).stdout.strip()
    directory = Path(tempfile.mkdtemp(prefix="mw-soak-code-"))
    archive = subprocess.run(["git", "archive", "HEAD", "src"], cwd=root, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive, check=True)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(directory / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])
    os.environ[SNAPSHOT_VARIABLE] = f"{commit} {directory}"
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-m", "bench.soak", *argv])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    options = parser().parse_args(argv)
    snapshot = os.environ.get(SNAPSHOT_VARIABLE)
    if options.snapshot and not snapshot:
        snapshot_and_reexec(argv)
    from bench.run import machine_header

    print(machine_header(False, 1), flush=True)
    if snapshot:
        import media_worker

        commit, directory = snapshot.split(" ", 1)
        print(f"code measured: HEAD {commit}, src/ as committed (git archive in {directory}; "
              f"media_worker from {Path(media_worker.__file__).parent})", flush=True)
    report = Report()
    try:
        lines = run_soak(options, report)
    except Skip as exc:
        print(f"soak skipped: {exc}")
        return 1
    finally:
        if snapshot:
            import shutil

            shutil.rmtree(snapshot.split(" ", 1)[1], ignore_errors=True)
    print(f"\n{report.table()}\n")
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
