"""LISTEN on PostgreSQL: the status changes as the worker NOTIFYs them (`events tail`).

A notification arrives once the transaction that changed the row has committed, so the row
reads as the event says. While the listener is not connected, notifications are not kept
for it: `LISTEN` is for watching, the outbox is for delivery.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
from psycopg import sql

from media_worker.errors import RepositoryUnavailableError
from media_worker.observability.logging import short_error


def status_notifications(url: str, channel: str, *, timeout: float | None = None
                         ) -> Iterator[tuple[datetime, dict[str, str]]]:
    """(when received, {"id", "status"}) for every NOTIFY on `channel`, until the caller stops
    (or `timeout` seconds pass without one). A payload that is not the worker's is skipped."""
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise RepositoryUnavailableError(f"database unavailable: {short_error(exc)}") from None
    with conn:
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        try:
            for notify in conn.notifies(timeout=timeout):
                payload = _parsed(notify.payload)
                if payload is not None:
                    yield datetime.now(UTC), payload
        except psycopg.OperationalError as exc:
            raise RepositoryUnavailableError(
                f"database connection lost: {short_error(exc)}") from None


def _parsed(text: str) -> dict[str, str] | None:
    try:
        payload = json.loads(text)
    except ValueError:
        return None
    if not isinstance(payload, dict) or not {"id", "status"} <= payload.keys():
        return None
    return {"id": str(payload["id"]), "status": str(payload["status"])}
