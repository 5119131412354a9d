"""What every command shares: settings that fail with one line, exit codes, and the operator
session (settings, quiet logging, the adapters, and one readable line when a service fails).

Exit codes: 0 success, 1 a command that failed at its work, 2 usage or configuration errors
(as Unix tools do), 128+N after a second signal N.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import NoReturn, TypeVar

import typer
from rich.console import Console
from rich.progress import track

from media_worker.app import Components, open_components
from media_worker.config import Settings, SettingsError, load_settings
from media_worker.errors import MediaWorkerError
from media_worker.observability.logging import configure_logging, short_error
from media_worker.types import MediaRecord

T = TypeVar("T")
EXIT_FAILURE = 1
EXIT_USAGE = 2


def settings_or_exit() -> Settings:
    """The settings, or one line naming the invalid variable and exit 2."""
    try:
        return load_settings()
    except SettingsError as exc:
        typer.echo(f"media-worker: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None


@contextmanager
def operator_session(action: str,
                     settings: Settings | None = None) -> Iterator[tuple[Settings, Components]]:
    """Settings, warnings-only logging and the adapters (no engine) of one operator command.

    A service that fails inside the block ends the command with `media-worker: ACTION failed:
    …` and exit 1; anything else (typer.Exit included) passes through."""
    settings = settings or settings_or_exit()
    logger = configure_logging(settings.log_format, "warning")
    try:
        with open_components(settings, engine=False, logger=logger) as components:
            yield settings, components
    except MediaWorkerError as exc:
        fail(f"{action} failed: {short_error(exc)}")


def fail(message: str) -> NoReturn:
    typer.echo(f"media-worker: {message}", err=True)
    raise typer.Exit(EXIT_FAILURE)


def parse_option(name: str, parse: Callable[[str], T], text: str) -> T:
    try:
        return parse(text)
    except ValueError as exc:
        typer.echo(f"media-worker: invalid {name}: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None


def progress(label: str) -> Callable[[Iterable[MediaRecord]], Iterable[MediaRecord]]:
    """A progress bar on stderr (gone when done) over the rows a long operation walks."""
    def wrap(items: Iterable[MediaRecord]) -> Iterable[MediaRecord]:
        rows = list(items)
        return track(rows, description=label, total=len(rows), console=Console(stderr=True),
                     transient=True)

    return wrap
