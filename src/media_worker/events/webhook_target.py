"""Status events POSTed to a webhook, signed as the Standard Webhooks specification says.

Each event is one request: the body is the event's JSON; `webhook-id` is the event id (the
same on every retry, so a receiver can drop duplicates), `webhook-timestamp` the time of this
attempt, `webhook-signature` its `v1,` HMAC-SHA256 over `id.timestamp.body`, made by PyPI's
`standardwebhooks` (the reference implementation, so receivers verify with the same library in
any language). Only a 2xx answer is a delivery; redirects are not followed (a signed event is
never re-sent to a host nobody configured). Retries are the dispatcher's: the event stays in
the outbox.

The events of one call belong to distinct media. While the receiver answers quickly they are
sent one after the other on the dispatcher's thread (handing each to another thread would cost
more CPU than the request); once a request is slow or fails, the rest of the call and the
calls after it are sent side by side, so a slow receiver costs one timeout per call, not one
per event, until a call is answered quickly again.

The requests go through the standard library's http.client on one kept-alive connection per
sending thread, not through urllib3: urllib3 writes a request's headers and body in two system
calls and adds its pool's bookkeeping, which made a delivery cost the worker several times the
CPU (docs/performance.md, "Status events"); http.client sends a bytes body with its headers in
one write. A request that fails on a reused connection before any answer (the receiver closed
it while idle) is sent once more on a fresh one.
"""

from __future__ import annotations

import http.client
import ssl
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from urllib.parse import urlsplit

from standardwebhooks.webhooks import Webhook

from media_worker import __version__
from media_worker.events.outbox import OutboxEntry
from media_worker.events.target import DeliveryReport
from media_worker.observability.logging import redact, short_error

MAX_BATCH = 10
QUICK_SECONDS = 0.2  # an answer within this is quick: the next events go one after the other
USER_AGENT = f"media-worker/{__version__} (Standard Webhooks)"
# What a kept-alive connection the receiver closed meanwhile raises before any answer.
STALE_CONNECTION = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class WebhookTarget:
    """EventTarget: one signed POST per event."""

    name = "webhook"
    max_batch = MAX_BATCH
    keeps_batch_order = False  # requests side by side may arrive in any order

    def __init__(self, url: str, secret: str, *, timeout_seconds: float) -> None:
        """`secret` as Standard Webhooks gives it (`whsec_` + base64); it signs, and is
        never logged. `timeout_seconds` bounds connecting and each wait for the receiver."""
        self._url = url
        self._signer = Webhook(secret)
        self.call_timeout_seconds = timeout_seconds
        self._connections = _KeptAlive(url, timeout_seconds)
        self._threads = ThreadPoolExecutor(MAX_BATCH, thread_name_prefix="events-webhook")
        self._quick = True  # the receiver's last answers came quickly

    def deliver(self, events: Sequence[OutboxEntry]) -> DeliveryReport:
        outcomes: list[str | None] = []
        while self._quick and len(outcomes) < len(events):
            started = time.monotonic()
            outcomes.append(self._post(events[len(outcomes)]))
            self._quick = outcomes[-1] is None and time.monotonic() - started < QUICK_SECONDS
        if len(outcomes) < len(events):
            started = time.monotonic()
            outcomes += self._threads.map(self._post, events[len(outcomes):])
            self._quick = (all(outcome is None for outcome in outcomes)
                           and time.monotonic() - started < QUICK_SECONDS)
        pairs = list(zip(events, outcomes, strict=True))
        return DeliveryReport(frozenset(e.event_id for e, error in pairs if error is None),
                              {e.event_id: error for e, error in pairs if error is not None})

    def signed_headers(self, event: OutboxEntry, moment: datetime) -> dict[str, str]:
        """The headers of one attempt at `moment`."""
        return {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": event.event_id,
            "webhook-timestamp": str(int(moment.timestamp())),
            "webhook-signature": self._signer.sign(event.event_id, moment, event.payload),
        }

    def describe(self) -> str:
        return redact(self._url)

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        self._connections.close_all()

    def _post(self, event: OutboxEntry) -> str | None:
        """None when delivered, else why not."""
        body = event.payload.encode()
        headers = self.signed_headers(event, datetime.now(UTC))
        try:
            status = self._connections.post(body, headers)
        except TimeoutError:
            return f"webhook did not answer within {self.call_timeout_seconds:g} s"
        except (OSError, http.client.HTTPException) as exc:
            return f"webhook unreachable: {short_error(exc, limit=200)}"
        if 200 <= status < 300:
            return None
        return f"webhook answered HTTP {status}"


class _KeptAlive:
    """One HTTP(S) connection per thread to the webhook's host, reused between requests."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._timeout = timeout
        self._context = ssl.create_default_context() if self._https else None
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def post(self, body: bytes, headers: dict[str, str]) -> int:
        """The answer's status; raises what the connection raises."""
        connection, reused = self._connection()
        try:
            return self._exchange(connection, body, headers)
        except STALE_CONNECTION:
            self._drop(connection)
            if not reused:
                raise
        connection, _ = self._connection()
        try:
            return self._exchange(connection, body, headers)
        except BaseException:
            self._drop(connection)
            raise

    def close_all(self) -> None:
        with self._lock:
            connections, self._all = self._all, []
        for connection in connections:
            connection.close()

    def _exchange(self, connection: http.client.HTTPConnection, body: bytes,
                  headers: dict[str, str]) -> int:
        try:
            connection.request("POST", self._path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
        except STALE_CONNECTION:
            raise
        except BaseException:
            self._drop(connection)
            raise
        if response.will_close:
            self._drop(connection)
        return response.status

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            return connection, True
        if self._https:
            connection = http.client.HTTPSConnection(self._host, self._port,
                                                     timeout=self._timeout,
                                                     context=self._context)
        else:
            connection = http.client.HTTPConnection(self._host, self._port,
                                                    timeout=self._timeout)
        self._local.connection = connection
        with self._lock:
            self._all.append(connection)
        return connection, False

    def _drop(self, connection: http.client.HTTPConnection) -> None:
        connection.close()
        if getattr(self._local, "connection", None) is connection:
            self._local.connection = None
        with self._lock:
            if connection in self._all:
                self._all.remove(connection)
