"""The `media-worker` command line: run, enqueue, status, migrate, samples.

Exit codes: 0 success, 1 a command that failed at its work, 2 usage or configuration errors
(as Unix tools do), 128+N after a second signal N.
"""

from __future__ import annotations

import json
import mimetypes
import sys
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.progress import track
from rich.table import Table

from media_worker import __version__
from media_worker.app import Components, open_components, run_worker
from media_worker.config import Settings, SettingsError, load_settings
from media_worker.errors import MediaWorkerError, SchemaMissingError
from media_worker.observability.logging import configure_logging, short_error
from media_worker.operations import (
    Stats,
    backfill,
    gather_stats,
    parse_age,
    parse_since,
    retry_failed,
)
from media_worker.repository.port import NewMedia
from media_worker.types import MediaRecord, MediaStatus, WorkerQueueMessage

app = typer.Typer(
    help="Turn uploaded images and videos into thumbnails: a queue-driven background worker.\n\n"
    "Configuration comes from environment variables (and ./.env); with none set, everything "
    "runs embedded under ./var/. See README.md for every variable.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
T = TypeVar("T")
EXIT_FAILURE = 1
EXIT_USAGE = 2


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        typer.echo(f"media-worker: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"media-worker {__version__}")
        raise typer.Exit


@app.callback()
def main_options(
    _version_flag: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print version.")
    ] = False,
) -> None:
    """Global options."""


@app.command()
def run(
    drain: Annotated[bool, typer.Option(
        "--drain", help="Exit 0 once the queue has no visible messages and no job is in flight."
    )] = False,
    concurrency: Annotated[int | None, typer.Option(
        "--concurrency", "-c", min=1,
        help="Jobs in flight at once (overrides WORKER_CONCURRENCY); decoder processes follow "
             "it up to the CPU count unless RENDER_PROCESSES is set.",
    )] = None,
) -> None:
    """Consume the queue and render thumbnails until stopped (SIGTERM/SIGINT) or drained."""
    settings = _settings()
    if concurrency is not None:
        settings = settings.model_copy(update={"worker_concurrency": concurrency})
    logger = configure_logging(settings.log_format, settings.log_level)
    try:
        with open_components(settings, logger=logger) as components:
            run_worker(settings, components, logger, drain=drain)
    except SettingsError as exc:
        typer.echo(f"media-worker: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    except SchemaMissingError as exc:
        typer.echo(f"media-worker: {exc}", err=True)
        raise typer.Exit(EXIT_FAILURE) from None
    except MediaWorkerError as exc:
        logger.error("worker could not start", error=short_error(exc))
        raise typer.Exit(EXIT_FAILURE) from None


@app.command()
def enqueue(
    files: Annotated[list[Path], typer.Argument(
        exists=True, dir_okay=False, readable=True, help="Media files to submit."
    )],
) -> None:
    """Do what the API does: store each file, insert a PENDING row, send a job message.

    Prints one media id per file."""
    settings = _settings()
    configure_logging(settings.log_format, "warning")
    try:
        with open_components(settings, engine=False) as components:
            components.storage.ensure_bucket(settings.minio_bucket)
            for path in files:
                media_id = _enqueue_one(path, settings, components)
                typer.echo(f"{media_id}\t{path}")
    except MediaWorkerError as exc:
        typer.echo(f"media-worker: enqueue failed: {short_error(exc)}", err=True)
        raise typer.Exit(EXIT_FAILURE) from None


def _enqueue_one(path: Path, settings: Settings, components: Components) -> str:
    media_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    key = f"uploads/{now:%Y/%m}/{media_id}/{path.name}"
    mime_type = mimetypes.guess_type(path.name)[0]  # the API's guess; the worker sniffs bytes
    storage, repository, queue = components.storage, components.repository, components.queue
    storage.upload_file(settings.minio_bucket, key, path, mime_type or "application/octet-stream")
    repository.insert(NewMedia(id=media_id, bucket=settings.minio_bucket, key=key,
                               mime_type=mime_type, size=path.stat().st_size))
    message = WorkerQueueMessage(job_id=str(uuid.uuid4()), media_id=media_id,
                                 bucket=settings.minio_bucket, key=key, mime_type=mime_type)
    queue.send(json.dumps(message.to_wire()))
    return media_id


@app.command()
def status(
    media_id: Annotated[str | None, typer.Argument(help="Show one media row.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    where: Annotated[bool, typer.Option(
        "--where", help="With an ID: one line per thumbnail saying where it is stored."
    )] = False,
) -> None:
    """Show one media row, or counts by status with the queue's depth."""
    settings = _settings()
    configure_logging(settings.log_format, "warning")
    console = Console()
    try:
        with open_components(settings, engine=False) as components:
            if media_id:
                record = components.repository.get(media_id)
                if record is None:
                    typer.echo(f"media-worker: no media with id {media_id}", err=True)
                    raise typer.Exit(EXIT_FAILURE)
                if where:
                    _print_locations(record, settings)
                else:
                    typer.echo(json.dumps(record.to_wire(), indent=2, ensure_ascii=False))
                return
            counts = components.repository.count_by_status()
            depth = components.queue.depth()
    except MediaWorkerError as exc:
        typer.echo(f"media-worker: status failed: {short_error(exc)}", err=True)
        raise typer.Exit(EXIT_FAILURE) from None
    if as_json:
        payload = {"media": {s.value: n for s, n in counts.items()},
                   "queue": {"visible": depth.visible, "inFlight": depth.in_flight,
                             "delayed": depth.delayed, "deadLetter": depth.dead_letter}}
        typer.echo(json.dumps(payload))
        return
    table = Table(title="media")
    table.add_column("status")
    table.add_column("rows", justify="right")
    for state in MediaStatus:
        table.add_row(state.value, str(counts.get(state, 0)))
    console.print(table)
    dead = "-" if depth.dead_letter is None else depth.dead_letter
    console.print(f"queue: {depth.visible} visible, {depth.in_flight} in flight, "
                  f"{depth.delayed} delayed, dead-letter {dead}")


def _print_locations(record: MediaRecord, settings: Settings) -> None:
    """`ID STATUS size WxH location` per thumbnail, or the error of a failed row."""
    if record.status is not MediaStatus.READY:
        typer.echo(f"{record.id} {record.status.value} {record.error or ''}".rstrip())
        return
    for thumb in record.thumbnails or []:
        if settings.uses_embedded_storage:
            location = str(settings.embedded_storage_path / thumb.bucket / thumb.key)
        else:
            location = f"s3://{thumb.bucket}/{thumb.key}"
        typer.echo(f"{record.id} READY {thumb.size:<8} {thumb.width}x{thumb.height:<6} "
                   f"{thumb.bytes:>8} B  {location}")


@app.command()
def stats(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Counts by status, queue depth, age of the oldest waiting row, recent failures."""
    settings = _settings()
    configure_logging(settings.log_format, "warning")
    try:
        with open_components(settings, engine=False) as components:
            snapshot = gather_stats(components.repository, components.queue)
    except MediaWorkerError as exc:
        _fail(f"stats failed: {short_error(exc)}")
    if as_json:
        typer.echo(json.dumps(_stats_json(snapshot)))
        return
    _print_stats(snapshot)


def _stats_json(snapshot: Stats) -> dict[str, object]:
    depth = snapshot.depth
    return {
        "media": {state.value: n for state, n in snapshot.counts.items()},
        "queue": {"visible": depth.visible, "inFlight": depth.in_flight,
                  "delayed": depth.delayed, "deadLetter": depth.dead_letter},
        "oldestPendingSeconds": snapshot.oldest_pending_seconds,
        "recentFailures": [{"id": r.id, "error": r.error,
                            "updatedAt": r.updated_at.isoformat() if r.updated_at else None}
                           for r in snapshot.recent_failures],
    }


def _print_stats(snapshot: Stats) -> None:
    console = Console()
    table = Table(title="media by status")
    table.add_column("status")
    table.add_column("rows", justify="right")
    for state in MediaStatus:
        table.add_row(state.value, str(snapshot.counts.get(state, 0)))
    console.print(table)
    depth = snapshot.depth
    dead = "-" if depth.dead_letter is None else depth.dead_letter
    console.print(f"queue: {depth.visible} visible, {depth.in_flight} in flight, "
                  f"{depth.delayed} delayed, dead-letter {dead}")
    age = snapshot.oldest_pending_seconds
    console.print(f"oldest PENDING row: {'-' if age is None else f'{age:.0f} s old'}")
    if snapshot.recent_failures:
        failures = Table(title="recent failures")
        failures.add_column("media id")
        failures.add_column("when (UTC)")
        failures.add_column("error")
        for record in snapshot.recent_failures:
            when = f"{record.updated_at:%Y-%m-%d %H:%M:%S}" if record.updated_at else ""
            failures.add_row(record.id, when, record.error or "")
        console.print(failures)


dlq_app = typer.Typer(help="Inspect and empty the dead-letter queue (poison messages).",
                      no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")


@dlq_app.command("list")
def dlq_list(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 20,
) -> None:
    """Show dead letters: message id, why it was dead-lettered, and the start of its body."""
    settings = _settings()
    configure_logging(settings.log_format, "warning")
    try:
        with open_components(settings, engine=False) as components:
            letters = components.queue.dead_letters(limit)
    except MediaWorkerError as exc:
        _fail(f"dlq list failed: {short_error(exc)}")
    table = Table(title=f"dead letters ({len(letters)} shown)")
    for column in ("message id", "reason", "body"):
        table.add_column(column)
    for message_id, body, reason in letters:
        table.add_row(message_id, reason, body[:80])
    Console().print(table)


@dlq_app.command("redrive")
def dlq_redrive(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Move every dead letter back to the main queue (after fixing what poisoned them)."""
    _dlq_bulk("redrive", "Move every dead letter back to the main queue?", yes)


@dlq_app.command("purge")
def dlq_purge(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete every dead letter for good."""
    _dlq_bulk("purge", "Delete every dead letter for good?", yes)


def _dlq_bulk(action: str, question: str, yes: bool) -> None:
    settings = _settings()
    configure_logging(settings.log_format, "warning")
    if not yes and not typer.confirm(question):
        typer.echo("nothing done")
        raise typer.Exit(EXIT_FAILURE)
    try:
        with open_components(settings, engine=False) as components:
            queue = components.queue
            count = (queue.redrive_dead_letters() if action == "redrive"
                     else queue.purge_dead_letters())
    except MediaWorkerError as exc:
        _fail(f"dlq {action} failed: {short_error(exc)}")
    typer.echo(f"{action}: {count} message{'s' if count != 1 else ''}")


@app.command()
def retry(
    failed: Annotated[bool, typer.Option("--failed", help="Re-queue FAILED media.")] = False,
    since: Annotated[str | None, typer.Option(
        help="Only rows that failed since then: a duration (2h, 7d) or an ISO time.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Give failed media a fresh start: status PENDING, attempts 0, a new job message."""
    if not failed:
        typer.echo("media-worker: say what to retry: --failed", err=True)
        raise typer.Exit(EXIT_USAGE)
    cutoff = _parse_option("--since", parse_since, since) if since else None
    settings = _settings()
    configure_logging(settings.log_format, "warning")
    if not yes and not typer.confirm("Re-queue every matching FAILED row?"):
        raise typer.Exit(EXIT_FAILURE)
    try:
        with open_components(settings, engine=False) as components:
            summary = retry_failed(components.repository, components.queue, since=cutoff,
                                   progress=_progress("re-queueing"))
    except MediaWorkerError as exc:
        _fail(f"retry failed: {short_error(exc)}")
    typer.echo(f"re-queued {summary.done} failed media ({summary.skipped} changed meanwhile)")


@app.command("backfill")
def backfill_command(
    older_than: Annotated[str, typer.Option(
        help="Only PENDING rows untouched for this long (90s, 15m, 2h).")] = "10m",
) -> None:
    """Send a job message for every PENDING row whose message was lost.

    For example after an outage of the API's sender. Duplicates are harmless: only one claim
    wins."""
    age = _parse_option("--older-than", parse_age, older_than)
    settings = _settings()
    configure_logging(settings.log_format, "warning")
    try:
        with open_components(settings, engine=False) as components:
            summary = backfill(components.repository, components.queue, older_than=age,
                               progress=_progress("enqueueing"))
    except MediaWorkerError as exc:
        _fail(f"backfill failed: {short_error(exc)}")
    typer.echo(f"enqueued {summary.done} pending media")


def _progress(label: str) -> Callable[[Iterable[MediaRecord]], Iterable[MediaRecord]]:
    def wrap(items: Iterable[MediaRecord]) -> Iterable[MediaRecord]:
        rows = list(items)
        return track(rows, description=label, total=len(rows), console=Console(stderr=True),
                     transient=True)

    return wrap


def _parse_option(name: str, parse: Callable[[str], T], text: str) -> T:
    try:
        return parse(text)
    except ValueError as exc:
        typer.echo(f"media-worker: invalid {name}: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None


def _fail(message: str) -> NoReturn:
    typer.echo(f"media-worker: {message}", err=True)
    raise typer.Exit(EXIT_FAILURE)


@app.command()
def migrate() -> None:
    """Create the media table (and its enum type) if missing. Safe to run again."""
    settings = _settings()
    configure_logging(settings.log_format, "warning")
    try:
        with open_components(settings, engine=False) as components:
            components.repository.migrate()
    except MediaWorkerError as exc:
        typer.echo(f"media-worker: migrate failed: {short_error(exc)}", err=True)
        raise typer.Exit(EXIT_FAILURE) from None
    typer.echo(f"schema ready: table \"{settings.media_table}\" on "
               f"{settings.redacted_database_url()}")


@app.command()
def samples(
    directory: Annotated[Path, typer.Argument(file_okay=False, help="Where to write them.")],
) -> None:
    """Write sample media made by the project, for trying the worker out.

    A JPEG stored rotated with EXIF orientation 6, a transparent PNG, an animated GIF and a
    two-second H.264 MP4."""
    from media_worker.samples import make_samples

    for path in make_samples(directory):
        typer.echo(str(path))


def main() -> None:
    """Entry point of the `media-worker` console script."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
