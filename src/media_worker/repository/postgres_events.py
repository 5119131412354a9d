"""Status events on PostgreSQL: one statement changes the row, writes its outbox rows and queues
its NOTIFY, so the three commit together or not at all. A listener never hears of a change it
cannot read yet, and no event exists for a change that rolled back.

The statement wraps the transition's `UPDATE … RETURNING *`:

    WITH [previous AS (the row's status before),] updated AS (UPDATE …),
         changed AS (the updated row, if it really changed status, with a new event id),
         [outbox AS (INSERT one row per target from `changed`)]
    SELECT updated.* [, pg_notify(channel, {"id", "status"}) from `changed`] FROM updated

A fenced write retried after a lost reply finds its row in the target state already: it
matches (and reports success) but `previous` says the status did not change, so it writes no
second event. Event ids come from gen_random_uuid() (PostgreSQL 13+), the payload from the
row as updated: jsonb_build_object costs the database a little and the worker nothing.
"""

from __future__ import annotations

from typing import Final

from psycopg import sql

from media_worker.events.outbox import EVENT_TYPES, EventRecording

# NOTIFY refuses payloads of 8000 bytes or more; ids are far shorter, but a row whose id is not
# must still change status.
MAX_NOTIFY_ID_BYTES: Final = 7900

EVENT_TYPE = sql.SQL("CASE c.\"status\" {cases} END").format(cases=sql.SQL(" ").join(
    sql.SQL("WHEN {} THEN {}").format(sql.Literal(status.value), sql.Literal(event_type))
    for status, event_type in EVENT_TYPES.items()))
# `thumbnails` and `metadata` belong to media.ready; the other events carry them as null.
PAYLOAD = sql.SQL(
    "jsonb_build_object('type', {type}, 'id', c.\"eventId\", 'mediaId', c.\"id\", "
    "'jobId', %(event_job)s::text, 'status', c.\"status\", 'attempts', c.\"attempts\", "
    "'error', c.\"error\", "
    "'thumbnails', CASE WHEN c.\"status\" = 'READY' THEN c.\"thumbnails\" END, "
    "'metadata', CASE WHEN c.\"status\" = 'READY' THEN c.\"metadata\" END, "
    "'occurredAt', to_char(c.\"updatedAt\", 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'))"
).format(type=EVENT_TYPE)


class EventStatements:
    """Turns a transition's UPDATE into the statement that also records its event."""

    def __init__(self, recording: EventRecording, *, table: sql.Identifier,
                 outbox: sql.Identifier, now: sql.Composable) -> None:
        self._recording = recording
        self._table = table
        self._outbox = outbox
        self._now = now

    @property
    def enabled(self) -> bool:
        return self._recording.any

    def wrap(self, update: sql.Composable, *, changed_from: str | None,
             row: bool = False) -> sql.Composable:
        """`update` (an UPDATE … RETURNING *) recording an event when it changes the row's
        status; with `changed_from`, only when the row was in that status before (a retried
        write of the same claim finds it changed already). One result row per updated row:
        the row itself with `row`, else just a 1 (the worker then parses no JSON it does not
        need). Parameters: the update's own, `id` when `changed_from` is given, and
        `event_job` (the job id, or None)."""
        previous = sql.SQL("")
        join = sql.SQL("")
        if changed_from is not None:
            previous = sql.SQL('previous AS (SELECT "status" FROM {t} WHERE "id" = %(id)s), '
                               ).format(t=self._table)
            join = sql.SQL(' JOIN previous p ON p."status" = {s}').format(
                s=sql.Literal(changed_from))
        return sql.SQL(
            "WITH {previous}updated AS ({update}), "
            'changed AS MATERIALIZED (SELECT u.*, gen_random_uuid()::text AS "eventId" '
            "FROM updated u{join}){outbox} SELECT {result}{notify} FROM updated u"
        ).format(previous=previous, update=update, join=join, outbox=self._outbox_rows(),
                 result=sql.SQL("u.*" if row else '1 AS "matched"'), notify=self._notify())

    def _outbox_rows(self) -> sql.Composable:
        if not self._recording.targets:
            return sql.SQL("")
        targets = sql.SQL(", ").join(sql.SQL("({})").format(sql.Literal(name))
                                     for name in self._recording.targets)
        return sql.SQL(
            ', outbox AS (INSERT INTO {outbox} ("id", "target", "mediaId", "payload", '
            '"createdAt") SELECT c."eventId", t.target, c."id", {payload}, {now} '
            "FROM changed c CROSS JOIN (VALUES {targets}) AS t(target))"
        ).format(outbox=self._outbox, payload=PAYLOAD, now=self._now, targets=targets)

    def _notify(self) -> sql.Composable:
        if not self._recording.channel:
            return sql.SQL("")
        return sql.SQL(
            ", (SELECT pg_notify({channel}, json_build_object('id', c.\"id\", 'status', "
            "c.\"status\")::text) FROM changed c WHERE octet_length(c.\"id\") < {limit}) "
            'AS "notified"'
        ).format(channel=sql.Literal(self._recording.channel),
                 limit=sql.Literal(MAX_NOTIFY_ID_BYTES))
