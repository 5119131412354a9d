"""The `media-worker` command line: run, migrate, samples (worker), status and stats
(inspect), similar and duplicates (similarity), enqueue, dlq, retry and backfill (operate),
events tail (events)."""

from __future__ import annotations

import sys

# The modules register their commands on import, and --help shows the panels in that order.
from media_worker.cli import worker

# isort: split
from media_worker.cli import inspect, similarity

# isort: split
from media_worker.cli import operate

# isort: split
from media_worker.cli import events
from media_worker.cli.root import app

__all__ = ["app", "events", "inspect", "main", "operate", "similarity", "worker"]


def main() -> None:
    """Entry point of the `media-worker` console script."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
