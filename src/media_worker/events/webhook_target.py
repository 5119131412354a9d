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

The requests go over kept-alive connections, one per sending thread (events/http_post.py: a
small HTTP/1.1 client, because the libraries' own machinery was most of a delivery's CPU).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

from media_worker import __version__
from media_worker.events.http_post import HttpPoster
from media_worker.events.outbox import OutboxEntry
from media_worker.events.target import DeliveryReport
from media_worker.observability.logging import redact, short_error

MAX_BATCH = 10
QUICK_SECONDS = 0.2  # an answer within this is quick: the next events go one after the other
USER_AGENT = f"media-worker/{__version__} (Standard Webhooks)"

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
        self._connections = _PerThread(url, timeout_seconds)
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
        except OSError as exc:
            return f"webhook unreachable: {short_error(exc, limit=200)}"
        if 200 <= status < 300:
            return None
        return f"webhook answered HTTP {status}"


class _PerThread:
    """An HttpPoster per sending thread (the dispatcher's, and those of side-by-side calls)."""

    def __init__(self, url: str, timeout: float) -> None:
        self._url = url
        self._timeout = timeout
        self._local = threading.local()
        self._all: list[HttpPoster] = []
        self._lock = threading.Lock()

    def post(self, body: bytes, headers: dict[str, str]) -> int:
        poster = getattr(self._local, "poster", None)
        if poster is None:
            poster = self._local.poster = HttpPoster(self._url, self._timeout)
            with self._lock:
                self._all.append(poster)
        return poster.post(body, headers)

    def close_all(self) -> None:
        with self._lock:
            posters, self._all = self._all, []
        for poster in posters:
            poster.close()
