"""A webhook receiver on 127.0.0.1 that the tests run: what an API's endpoint does with the
worker's status events, recorded for the test to look at.

Every request is checked with `standardwebhooks`' own `Webhook.verify` (the reference
implementation a receiver would use) and recorded with the answer it got. The answer is the
test's to choose, and may change while the worker runs: `ok` (204), `fail` (503), `hang`
(the request is held, unanswered, until `release()` or the receiver stops).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from base64 import b64encode
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

Mode = Literal["ok", "fail", "hang"]
ANSWERS = {"ok": 204, "fail": 503}


def new_secret() -> str:
    """A Standard Webhooks secret: whsec_ and 32 random bytes in base64."""
    return "whsec_" + b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True)
class Delivery:
    """One request as received."""

    event_id: str  # webhook-id
    body: str
    headers: dict[str, str]
    verified: bool
    answer: int | None  # None: held unanswered (hang)

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """The running receiver: its URL, the secret it verifies with, what it received."""

    url: str
    secret: str
    mode: Mode = "ok"
    deliveries: list[Delivery] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _released: threading.Event = field(default_factory=threading.Event)

    def set_mode(self, mode: Mode) -> None:
        self.mode = mode
        if mode != "hang":
            self.release()

    def release(self) -> None:
        """Let held requests go (they were never answered: the worker gave up on them)."""
        self._released.set()

    def received(self) -> list[Delivery]:
        with self._lock:
            return list(self.deliveries)

    def accepted(self) -> list[Delivery]:
        """Requests answered 2xx, in arrival order."""
        return [d for d in self.received() if d.answer is not None and d.answer < 300]

    def accepted_events(self) -> list[dict[str, Any]]:
        return [d.event for d in self.accepted()]

    def wait_for(self, count: int, *, timeout: float, accepted: bool = True) -> list[Delivery]:
        """Until `count` requests (accepted ones by default) have arrived."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.accepted() if accepted else self.received()
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g} s: {len(found)} of {count} "
                                     f"webhook requests ({[d.event_id for d in found]})")
            time.sleep(0.05)

    def record(self, delivery: Delivery) -> None:
        with self._lock:
            self.deliveries.append(delivery)

    def hold(self) -> None:
        """Keep a request unanswered until released (at most ten minutes)."""
        self._released.wait(600)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    verifier = Webhook(receiver.secret)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
            headers = {key.lower(): value for key, value in self.headers.items()}
            try:
                verifier.verify(body, headers)
                verified = True
            except WebhookVerificationError:
                verified = False
            mode = receiver.mode
            answer = None if mode == "hang" else ANSWERS[mode]
            receiver.record(Delivery(headers.get("webhook-id", ""), body, headers, verified,
                                     answer))
            if answer is None:
                receiver.hold()
                return  # the connection closes without an answer
            self.send_response(answer)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    return Handler


@contextmanager
def webhook_receiver(mode: Mode = "ok", secret: str | None = None) -> Iterator[Receiver]:
    """A receiver on a free port of 127.0.0.1 for the block's duration."""
    receiver = Receiver("", secret or new_secret(), mode)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/media"
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver",
                              daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release()
        server.shutdown()
        server.server_close()
