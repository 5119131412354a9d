"""Commands that run the worker or prepare for it: run, migrate, samples."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from media_worker.app import open_components, run_worker
from media_worker.cli.common import EXIT_FAILURE, EXIT_USAGE, operator_session, settings_or_exit
from media_worker.cli.root import app
from media_worker.config import SettingsError
from media_worker.errors import MediaWorkerError, SchemaMissingError
from media_worker.observability.logging import configure_logging, short_error

PANEL = "Run the worker"


@app.command(rich_help_panel=PANEL)
def run(
    drain: Annotated[bool, typer.Option(
        "--drain", help="Exit 0 once the queue has no visible messages, no job is in flight "
                        "and nothing it hid (a retry's backoff, a row not committed yet) is due "
                        "back."
    )] = False,
    concurrency: Annotated[int | None, typer.Option(
        "--concurrency", "-c", min=1,
        help="Jobs in flight at once (overrides WORKER_CONCURRENCY); decoder processes follow "
             "it up to the CPU count unless RENDER_PROCESSES is set.",
    )] = None,
) -> None:
    """Consume the queue and render thumbnails until stopped (SIGTERM/SIGINT) or drained.

    Exits 1 at once, with one line, when the media table does not exist."""
    settings = settings_or_exit()
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


@app.command(rich_help_panel=PANEL)
def migrate() -> None:
    """Create the media table (and its enum type) and the status events' outbox if missing,
    exactly as the Prisma models in deploy/prisma/media.prisma do. Safe to run again."""
    with operator_session("migrate") as (settings, components):
        components.repository.migrate()
    typer.echo(f"schema ready: table \"{settings.media_table}\" on "
               f"{settings.redacted_database_url()}")


@app.command(rich_help_panel=PANEL)
def samples(
    directory: Annotated[Path, typer.Argument(file_okay=False, help="Where to write them.")],
) -> None:
    """Write sample media made by the project, for trying the worker out.

    A JPEG stored rotated with EXIF orientation 6, a transparent PNG, an animated GIF and a
    two-second H.264 MP4."""
    from media_worker.samples import make_samples

    for path in make_samples(directory):
        typer.echo(str(path))
