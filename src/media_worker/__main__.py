"""`python -m media_worker` and the `media-worker` console script.

Kept tiny on purpose: decoder child processes are spawned, and a spawned child re-imports the
script that launched its parent. Importing the CLI only inside `main` keeps its dependencies
(boto3, psycopg, typer, rich: ~15 MB per process) out of every decoder child.
"""

from __future__ import annotations


def main() -> None:
    """Run the command line."""
    from media_worker.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
