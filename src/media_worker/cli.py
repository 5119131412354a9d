"""The `media-worker` command line: run, enqueue, status, migrate, samples.

Exit codes: 0 success, 1 a command that failed at its work, 2 usage or configuration errors
(as Unix tools do), 128+N after a second signal N.
"""

from __future__ import annotations

import json
import mimetypes
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from media_worker import __version__
from media_worker.app import Components, build_poller, install_signal_handlers, open_components
from media_worker.config import Settings, SettingsError, load_settings
from media_worker.errors import MediaWorkerError
from media_worker.observability.logging import configure_logging, short_error
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
        "--concurrency", "-c", min=1, help="Jobs in flight at once (overrides WORKER_CONCURRENCY)."
    )] = None,
) -> None:
    """Consume the queue and render thumbnails until stopped (SIGTERM/SIGINT) or drained."""
    settings = _settings()
    if concurrency is not None:
        settings = settings.model_copy(update={"worker_concurrency": concurrency})
    logger = configure_logging(settings.log_format, settings.log_level)
    try:
        with open_components(settings) as components:
            poller = build_poller(settings, components, logger, drain=drain)
            install_signal_handlers(poller, logger)
            poller.run()
    except SettingsError as exc:
        typer.echo(f"media-worker: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
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
    """Write a few sample media files made by the project (rotated JPEG, transparent PNG, GIF,
    short MP4), for trying the worker out."""
    from media_worker.samples import make_samples

    for path in make_samples(directory):
        typer.echo(str(path))


def main() -> None:
    """Entry point of the `media-worker` console script."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
