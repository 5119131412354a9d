"""What the embedded default's SQLite files (queue and table) agree on."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path

# How long a statement waits for another process's write lock before giving up. Writes are
# single short statements or BEGIN IMMEDIATE blocks of a few, so only a stalled process holds
# one this long; the same wait for the queue and the table keeps an outage of one from looking
# like an outage of the other.
BUSY_TIMEOUT_MS = 15_000


def open_sqlite(path: Path) -> sqlite3.Connection:
    """A connection to the table's file: autocommit (each statement, or a BEGIN IMMEDIATE
    block, is its own transaction), rows by column name, shareable across threads."""
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                           check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return conn


@contextmanager
def sqlite_connection(path: Path) -> Iterator[sqlite3.Connection]:
    """A short-lived connection (open_sqlite), closed on exit."""
    with closing(open_sqlite(path)) as conn:
        yield conn


def utc_text(moment: datetime | None = None) -> str:
    """UTC ISO-8601 with milliseconds (now by default): equal-width text, so SQL string
    comparison is time order."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+00:00"
