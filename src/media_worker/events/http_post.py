"""POSTs to one webhook host over kept-alive HTTP/1.1 connections, reading only the answer's
status: the webhook target's transport.

Why not urllib3 or http.client: a status event is a small body whose only answer that matters
is the status code, and for that both spend most of a delivery's CPU on their own machinery
(urllib3's pool bookkeeping, http.client's two writes per request and its email-package header
parser); docs/performance.md, "Status events", has the measurements against this module's
single write per request and plain header scan. What it implements of RFC 9112, and all a
webhook needs: one request per connection at a time, `Host` and `Content-Length` added, the
answer's body skipped (or, for `exchange`, kept up to MAX_BODY_BYTES) by `Content-Length`, by
chunks, or up to the close; interim 1xx answers skipped; a connection reused unless the answer
said `Connection: close` or had no length; TLS by the standard library's default context
(certificates and host names checked). The AWS event targets (events/aws_signed.py) send their
signed calls through it too, for the same reason.
"""

from __future__ import annotations

import io
import socket
import ssl
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

MAX_HEADER_BYTES: Final = 64 * 1024
MAX_BODY_BYTES: Final = 1024 * 1024  # kept of an answer's body; the rest is read past
NO_BODY_STATUSES: Final = frozenset({204, 304})


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes = b""  # its first MAX_BODY_BYTES, when asked for


class BadAnswerError(OSError):
    """The receiver's answer is not HTTP/1.x as far as this client reads it."""


class StaleConnectionError(OSError):
    """A kept-alive connection was closed by the receiver before it answered."""


class HttpPoster:
    """One connection to the URL's host, used by one thread at a time."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._https else 80)
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        default_port = self._port == (443 if self._https else 80)
        self._host_header = self._host if default_port else f"{self._host}:{self._port}"
        if ":" in self._host:  # an IPv6 literal
            self._host_header = f"[{self._host}]" + ("" if default_port else f":{self._port}")
        self._timeout = timeout
        self._context = ssl.create_default_context() if self._https else None
        self._sock: socket.socket | None = None
        self._reader: io.BufferedReader | None = None

    def post(self, body: bytes, headers: dict[str, str]) -> int:
        """The answer's status code (its body is read past, never kept)."""
        return self._send(self._request(body, headers), keep_body=False).status

    def exchange(self, body: bytes, headers: dict[str, str]) -> Answer:
        """The answer's status code and body."""
        return self._send(self._request(body, headers), keep_body=True)

    def _send(self, request: bytes, *, keep_body: bool) -> Answer:
        """A kept-alive connection the receiver had closed is replaced and the request sent
        once more; anything else raises (OSError, TimeoutError)."""
        reused = self._sock is not None
        try:
            return self._exchange(request, keep_body)
        except (StaleConnectionError, BrokenPipeError, ConnectionResetError):
            self.close()
            if not reused:
                raise
        try:
            return self._exchange(request, keep_body)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
                self._reader = None

    # --- one exchange -------------------------------------------------------------------
    def _request(self, body: bytes, headers: dict[str, str]) -> bytes:
        lines = [f"POST {self._path} HTTP/1.1", f"Host: {self._host_header}",
                 *(f"{name}: {value}" for name, value in headers.items()),
                 f"Content-Length: {len(body)}", "", ""]
        return "\r\n".join(lines).encode("latin-1") + body

    def _exchange(self, request: bytes, keep_body: bool) -> Answer:
        if self._sock is None:
            self._connect()
        assert self._sock is not None
        try:
            self._sock.sendall(request)
            answer, keep = self._read_answer(bytearray() if keep_body else None)
        except BaseException:
            self.close()
            raise
        if not keep:
            self.close()
        return answer

    def _connect(self) -> None:
        sock = socket.create_connection((self._host, self._port), timeout=self._timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._context is not None:
            sock = self._context.wrap_socket(sock, server_hostname=self._host)
        self._sock = sock
        self._reader = sock.makefile("rb")

    def _read_answer(self, kept: bytearray | None) -> tuple[Answer, bool]:
        """(the answer, whether the connection can carry the next request); the body goes
        into `kept` when one is given."""
        assert self._reader is not None
        while True:
            line = self._reader.readline(MAX_HEADER_BYTES)
            if not line:
                raise StaleConnectionError("the receiver closed the connection without answering")
            parts = line.split(None, 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
                raise BadAnswerError(f"not an HTTP/1.x status line: {line[:80]!r}")
            status = int(parts[1])
            fields = self._read_fields()
            if 100 <= status < 200:
                continue  # an interim answer (103 Early Hints, …): the real one follows
            keep = self._skip_body(status, fields, parts[0], kept)
            return Answer(status, bytes(kept or b"")), keep

    def _read_fields(self) -> dict[bytes, bytes]:
        assert self._reader is not None
        fields: dict[bytes, bytes] = {}
        size = 0
        while True:
            line = self._reader.readline(MAX_HEADER_BYTES)
            size += len(line)
            if not line or size > MAX_HEADER_BYTES:
                raise BadAnswerError("the answer's header ended early or is too long")
            if line in (b"\r\n", b"\n"):
                return fields
            name, _, value = line.partition(b":")
            fields[name.strip().lower()] = value.strip()

    def _skip_body(self, status: int, fields: dict[bytes, bytes], version: bytes,
                   kept: bytearray | None) -> bool:
        """Read past the body (keeping its start in `kept`); whether the connection stays
        usable."""
        keep = fields.get(b"connection", b"").lower() != b"close" and version != b"HTTP/1.0"
        if status in NO_BODY_STATUSES:
            return keep
        if b"chunked" in fields.get(b"transfer-encoding", b"").lower():
            self._skip_chunks(kept)
            return keep
        length = fields.get(b"content-length")
        if length is not None and length.isdigit():
            self._skip(int(length), kept)
            return keep
        while self._reader is not None:  # framed by the close
            data = self._reader.read(65536)
            if not data:
                break
            _keep(kept, data)
        return False

    def _skip_chunks(self, kept: bytearray | None) -> None:
        assert self._reader is not None
        while True:
            size_line = self._reader.readline(MAX_HEADER_BYTES)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadAnswerError(f"bad chunk size {size_line[:40]!r}") from None
            if size == 0:
                self._read_fields()  # the trailer, up to its blank line
                return
            self._skip(size, kept)
            self._skip(2, None)  # the chunk's CRLF

    def _skip(self, count: int, kept: bytearray | None) -> None:
        assert self._reader is not None
        while count > 0:
            data = self._reader.read(min(count, 65536))
            if not data:
                raise BadAnswerError("the answer ended before its length")
            _keep(kept, data)
            count -= len(data)


def _keep(kept: bytearray | None, data: bytes) -> None:
    if kept is not None and len(kept) < MAX_BODY_BYTES:
        kept += data[:MAX_BODY_BYTES - len(kept)]
