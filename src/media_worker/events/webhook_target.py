"""Status events POSTed to a webhook, signed as the Standard Webhooks specification says.

Each event is one request: the body is the event's JSON; `webhook-id` is the event id (the
same on every retry, so a receiver can drop duplicates), `webhook-timestamp` the time of this
attempt, `webhook-signature` its `v1,` HMAC-SHA256 over `id.timestamp.body`, made by PyPI's
`standardwebhooks` (the reference implementation, so receivers verify with the same library in
any language). Only a 2xx answer is a delivery; redirects are not followed (a signed event is
never re-sent to a host nobody configured). The events of one call belong to distinct media
and are sent side by side, so a slow receiver costs one timeout per call, not one per event.
Retries are the dispatcher's (the event stays in the outbox), so urllib3 retries nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import urllib3
from standardwebhooks.webhooks import Webhook

from media_worker import __version__
from media_worker.events.outbox import OutboxEntry
from media_worker.events.target import DeliveryReport
from media_worker.observability.logging import redact, short_error

MAX_BATCH = 10
USER_AGENT = f"media-worker/{__version__} (Standard Webhooks)"


class WebhookTarget:
    """EventTarget: one signed POST per event."""

    name = "webhook"
    max_batch = MAX_BATCH

    def __init__(self, url: str, secret: str, *, timeout_seconds: float) -> None:
        """`secret` as Standard Webhooks gives it (`whsec_` + base64); it signs, and is
        never logged."""
        self._url = url
        self._signer = Webhook(secret)
        self.call_timeout_seconds = timeout_seconds
        self._http = urllib3.PoolManager(
            num_pools=2, maxsize=MAX_BATCH, retries=False,
            timeout=urllib3.Timeout(total=timeout_seconds))
        self._threads = ThreadPoolExecutor(MAX_BATCH, thread_name_prefix="events-webhook")

    def deliver(self, events: Sequence[OutboxEntry]) -> DeliveryReport:
        if len(events) == 1:
            outcomes = [self._post(events[0])]
        else:
            outcomes = list(self._threads.map(self._post, events))
        delivered = frozenset(e.event_id for e, error in zip(events, outcomes, strict=True)
                              if error is None)
        failed = {e.event_id: error for e, error in zip(events, outcomes, strict=True)
                  if error is not None}
        return DeliveryReport(delivered, failed)

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
        self._http.clear()

    def _post(self, event: OutboxEntry) -> str | None:
        """None when delivered, else why not."""
        headers = self.signed_headers(event, datetime.now(UTC))
        try:
            response = self._http.request("POST", self._url, body=event.payload.encode(),
                                          headers=headers, redirect=False,
                                          preload_content=True)
        except urllib3.exceptions.TimeoutError:
            return f"webhook did not answer within {self.call_timeout_seconds:g} s"
        except urllib3.exceptions.HTTPError as exc:
            return f"webhook unreachable: {short_error(exc, limit=200)}"
        if 200 <= response.status < 300:
            return None
        return f"webhook answered HTTP {response.status}"
