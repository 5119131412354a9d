"""Commands that look without changing anything: status, stats."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from media_worker.cli.common import EXIT_FAILURE, operator_session
from media_worker.cli.root import app
from media_worker.config import Settings
from media_worker.operations import Stats, gather_stats
from media_worker.queue.port import QueueDepth
from media_worker.types import MediaRecord, MediaStatus

PANEL = "Inspect"


@app.command(rich_help_panel=PANEL)
def status(
    media_id: Annotated[str | None, typer.Argument(help="Show one media row.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    where: Annotated[bool, typer.Option(
        "--where", help="With an ID: one line per thumbnail saying where it is stored."
    )] = False,
) -> None:
    """Show one media row, or counts by status with the queue's depth."""
    with operator_session("status") as (settings, components):
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
    if as_json:
        typer.echo(json.dumps({"media": {s.value: n for s, n in counts.items()},
                               "queue": _depth_json(depth)}))
        return
    console = Console()
    console.print(_counts_table("media", counts))
    console.print(_depth_line(depth))


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


@app.command(rich_help_panel=PANEL)
def stats(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Counts by status, queue depth, age of the oldest waiting row, recent failures."""
    with operator_session("stats") as (_settings, components):
        snapshot = gather_stats(components.repository, components.queue)
    if as_json:
        typer.echo(json.dumps(_stats_json(snapshot)))
        return
    _print_stats(snapshot)


def _stats_json(snapshot: Stats) -> dict[str, object]:
    return {
        "media": {state.value: n for state, n in snapshot.counts.items()},
        "queue": _depth_json(snapshot.depth),
        "oldestPendingSeconds": snapshot.oldest_pending_seconds,
        "recentFailures": [{"id": r.id, "error": r.error,
                            "updatedAt": r.updated_at.isoformat() if r.updated_at else None}
                           for r in snapshot.recent_failures],
    }


def _print_stats(snapshot: Stats) -> None:
    console = Console()
    console.print(_counts_table("media by status", snapshot.counts))
    console.print(_depth_line(snapshot.depth))
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


def _counts_table(title: str, counts: dict[MediaStatus, int]) -> Table:
    table = Table(title=title)
    table.add_column("status")
    table.add_column("rows", justify="right")
    for state in MediaStatus:
        table.add_row(state.value, str(counts.get(state, 0)))
    return table


def _depth_json(depth: QueueDepth) -> dict[str, int | None]:
    return {"visible": depth.visible, "inFlight": depth.in_flight, "delayed": depth.delayed,
            "deadLetter": depth.dead_letter}


def _depth_line(depth: QueueDepth) -> str:
    dead = "-" if depth.dead_letter is None else depth.dead_letter
    return (f"queue: {depth.visible} visible, {depth.in_flight} in flight, "
            f"{depth.delayed} delayed, dead-letter {dead}")
