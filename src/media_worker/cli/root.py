"""The `media-worker` command and its `dlq` group; the commands attach themselves in the
modules beside this one (worker, inspect, operate)."""

from __future__ import annotations

from typing import Annotated

import typer

from media_worker import __version__

app = typer.Typer(
    help="Turn uploaded images and videos into thumbnails: a queue-driven background worker.\n\n"
    "Configuration comes from environment variables (and ./.env); with none set, everything "
    "runs embedded under ./var/. See README.md for every variable.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
dlq_app = typer.Typer(help="Inspect and empty the dead-letter queue (poison messages).",
                      no_args_is_help=True)
app.add_typer(dlq_app, name="dlq", rich_help_panel="Operate")


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
