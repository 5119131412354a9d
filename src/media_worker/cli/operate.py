"""Commands that change what is queued: enqueue (what the API does), dlq, retry, backfill."""

from __future__ import annotations

import json
import mimetypes
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from media_worker.app import Components
from media_worker.cli.common import (
    EXIT_FAILURE,
    EXIT_USAGE,
    operator_session,
    parse_option,
    progress,
    settings_or_exit,
)
from media_worker.cli.root import app, dlq_app
from media_worker.config import Settings
from media_worker.operations import backfill, parse_age, parse_since, retry_failed
from media_worker.repository.port import NewMedia
from media_worker.types import WorkerQueueMessage

PANEL = "Operate"


@app.command(rich_help_panel=PANEL)
def enqueue(
    files: Annotated[list[Path], typer.Argument(
        exists=True, dir_okay=False, readable=True, help="Media files to submit."
    )],
) -> None:
    """Do what the API does: store each file, insert a PENDING row, send a job message.

    Prints one media id per file."""
    with operator_session("enqueue") as (settings, components):
        components.storage.ensure_bucket(settings.minio_bucket)
        for path in files:
            media_id = _enqueue_one(path, settings, components)
            typer.echo(f"{media_id}\t{path}")


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


@dlq_app.command("list")
def dlq_list(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 20,
) -> None:
    """Show dead letters: message id, why it was dead-lettered, and the start of its body."""
    with operator_session("dlq list") as (_settings, components):
        letters = components.queue.dead_letters(limit)
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
    settings = settings_or_exit()
    if not yes and not typer.confirm(question):
        typer.echo("nothing done")
        raise typer.Exit(EXIT_FAILURE)
    with operator_session(f"dlq {action}", settings) as (_settings, components):
        queue = components.queue
        count = (queue.redrive_dead_letters() if action == "redrive"
                 else queue.purge_dead_letters())
    typer.echo(f"{action}: {count} message{'s' if count != 1 else ''}")


@app.command(rich_help_panel=PANEL)
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
    cutoff = parse_option("--since", parse_since, since) if since else None
    settings = settings_or_exit()
    if not yes and not typer.confirm("Re-queue every matching FAILED row?"):
        raise typer.Exit(EXIT_FAILURE)
    with operator_session("retry", settings) as (_settings, components):
        summary = retry_failed(components.repository, components.queue, since=cutoff,
                               progress=progress("re-queueing"))
    typer.echo(f"re-queued {summary.done} failed media ({summary.skipped} changed meanwhile)")


@app.command("backfill", rich_help_panel=PANEL)
def backfill_command(
    older_than: Annotated[str, typer.Option(
        help="Only PENDING rows untouched for this long (90s, 15m, 2h).")] = "10m",
) -> None:
    """Send a job message for every PENDING row whose message was lost.

    For example after an outage of the API's sender. Duplicates are harmless: only one claim
    wins."""
    age = parse_option("--older-than", parse_age, older_than)
    with operator_session("backfill") as (_settings, components):
        summary = backfill(components.repository, components.queue, older_than=age,
                           progress=progress("enqueueing"))
    typer.echo(f"enqueued {summary.done} pending media")
