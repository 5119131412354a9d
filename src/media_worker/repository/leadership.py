"""Cross-replica locks for work only one worker should do at a time (the reconciliation
sweep): a PostgreSQL session advisory lock on a connection of its own, or, for the embedded
default, an exclusive `flock` on a file beside the database. Either is released by the
operating system or the database the moment its holder dies, so a crashed leader never
blocks the others: the next replica takes over at its next try."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

import psycopg


class AdvisoryLeadership:
    """A held `pg_try_advisory_lock`; the lock lives exactly as long as the connection."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._connection = connection

    @classmethod
    def try_take(cls, url: str, name: str, connect_timeout: int) -> AdvisoryLeadership | None:
        # Keepalives: a half-open connection must not leave the holder believing it leads.
        connection = psycopg.connect(url, autocommit=True, connect_timeout=connect_timeout,
                                     keepalives=1, keepalives_idle=30, keepalives_interval=10,
                                     keepalives_count=3)
        try:
            row = connection.execute("SELECT pg_try_advisory_lock(hashtext(%s))",
                                     (name,)).fetchone()
        except BaseException:
            connection.close()
            raise
        if row and row[0]:
            return cls(connection)
        connection.close()
        return None

    def held(self) -> bool:
        try:
            self._connection.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def release(self) -> None:
        self._connection.close()


class FileLeadership:
    """An exclusive, non-blocking `flock` on `<database>.<name>.lock`."""

    def __init__(self, descriptor: int) -> None:
        self._descriptor: int | None = descriptor

    @classmethod
    def try_take(cls, database: Path, name: str) -> FileLeadership | None:
        path = database.with_name(f"{database.name}.{name}.lock")
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return None
        return cls(descriptor)

    def held(self) -> bool:
        return self._descriptor is not None

    def release(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None
