"""`media-worker events …`: watching the status events (docs/events.md)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from enum import StrEnum
from itertools import islice
from typing import Annotated

import typer

from media_worker.cli.common import EXIT_USAGE, operator_session, settings_or_exit
from media_worker.cli.root import app
from media_worker.config import Settings
from media_worker.events.tail import (
    TailLine,
    follow_outbox,
    follow_table,
    from_notifications,
)

events_app = typer.Typer(help="Watch the status events the worker publishes (docs/events.md).",
                         no_args_is_help=True)
app.add_typer(events_app, name="events", rich_help_panel="Inspect")


class Source(StrEnum):
    """Where `events tail` reads status changes from."""

    AUTO = "auto"
    NOTIFY = "notify"
    OUTBOX = "outbox"
    TABLE = "table"


@events_app.command("tail")
def tail(
    source: Annotated[Source, typer.Option(
        help="notify: PostgreSQL's NOTIFY on EVENTS_PG_CHANNEL, as each change commits. "
             "outbox: new rows of the outbox (whole events; only while a target is "
             "configured). table: recently updated rows of the media table. auto: notify "
             "on PostgreSQL with a channel, else outbox with a target, else table.")
    ] = Source.AUTO,
    as_json: Annotated[bool, typer.Option(
        "--json", help="One JSON object per line (outbox: the event as delivered).")] = False,
    count: Annotated[int | None, typer.Option(
        min=1, help="Exit 0 after this many events.")] = None,
    seconds: Annotated[float | None, typer.Option(
        min=0, help="Exit 0 after this long (default: until Ctrl-C).")] = None,
    interval: Annotated[float, typer.Option(
        min=0.01, help="Seconds between two polls of the outbox or the table.")] = 0.1,
) -> None:
    """Print status changes as they happen: time, event type, media id, status.

    Reads only: nothing is taken from the outbox, so delivery to the targets is unaffected.
    Stop with Ctrl-C (exit 130), or use --count / --seconds."""
    settings = settings_or_exit()
    chosen = _resolve(source, settings)
    until = None if seconds is None else time.monotonic() + seconds
    with operator_session("events tail", settings) as (_settings, components):
        typer.echo(f"media-worker: following status events ({chosen.value})", err=True)
        if chosen is Source.NOTIFY:
            lines = _notified(settings, seconds)
        elif chosen is Source.OUTBOX:
            lines = follow_outbox(components.repository.outbox(), interval=interval,
                                  until=until)
        else:
            lines = follow_table(components.repository, interval=interval, until=until)
        for line in islice(_until(lines, until), count):
            typer.echo(line.json() if as_json else line.text())


def _resolve(source: Source, settings: Settings) -> Source:
    notify = settings.events_notify_channel
    if source is Source.NOTIFY and notify is None:
        typer.echo("media-worker: --source notify needs PostgreSQL and EVENTS_PG_CHANNEL",
                   err=True)
        raise typer.Exit(EXIT_USAGE)
    if source is not Source.AUTO:
        return source
    if notify is not None:
        return Source.NOTIFY
    return Source.OUTBOX if settings.event_targets else Source.TABLE


def _notified(settings: Settings, seconds: float | None) -> Iterator[TailLine]:
    from media_worker.repository.listener import status_notifications

    channel = settings.events_notify_channel
    assert channel is not None
    return from_notifications(status_notifications(settings.database_url.get_secret_value(),
                                                   channel, timeout=seconds))


def _until(lines: Iterator[TailLine], until: float | None) -> Iterator[TailLine]:
    """`lines` until the monotonic clock passes `until` (checked as each line comes)."""
    for line in lines:
        if until is not None and time.monotonic() > until:
            return
        yield line
        sys.stdout.flush()
