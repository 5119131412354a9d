"""A TCP proxy the fault tests control: cut the line, restore it, slow it down.

Standard library only (threads and sockets). It listens on a free port of 127.0.0.1 and
forwards every connection to one target. While cut, live connections are closed and new ones
are accepted and closed at once, which is what a client sees when a server or the network
between goes away; a throttle slows the server → client direction (downloads), so a job can be
made to last as long as a scenario needs.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType

_CHUNK = 64 * 1024
_TICKS_PER_SECOND = 20  # a throttled pump sends rate/20 bytes, then sleeps 50 ms


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target_host`:`target_port` until stopped."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)  # the accept loop checks for stop() this often
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self._cut = False
        self._rate: float | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name=f"proxy-{self.port}",
                                        daemon=True)
        self._thread.start()

    # --- what the tests call ------------------------------------------------------------
    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cut(self) -> None:
        """Close every live connection; accept and close new ones until restore()."""
        with self._lock:
            self._cut = True
            links = list(self._links)
        for link in links:
            link.close()

    def restore(self) -> None:
        """Forward new connections again."""
        self._cut = False

    def throttle(self, bytes_per_second: float | None) -> None:
        """Slow the server → client direction of every connection, live ones included;
        None lifts the limit."""
        if bytes_per_second is not None and bytes_per_second <= 0:
            raise ValueError("bytes_per_second must be positive (or None for no limit)")
        self._rate = bytes_per_second

    @property
    def rate(self) -> float | None:
        return self._rate

    @property
    def live_connections(self) -> int:
        with self._lock:
            return len(self._links)

    def stop(self) -> None:
        """Stop listening and close every connection."""
        self._stopped.set()
        self._thread.join(timeout=5)
        self._listener.close()
        with self._lock:
            links = list(self._links)
        for link in links:
            link.close()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, _type: type[BaseException] | None, _value: BaseException | None,
                 _traceback: TracebackType | None) -> None:
        self.stop()

    # --- the machinery ------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._cut:
                _close(client)
                continue
            self._forward(client)

    def _forward(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            _close(client)
            return
        client.settimeout(None)
        upstream.settimeout(None)
        link = _Link(client, upstream, self)
        with self._lock:
            if self._cut:  # cut() ran while we were connecting
                link.close()
                return
            self._links.add(link)
        link.start()

    def _forget(self, link: _Link) -> None:
        with self._lock:
            self._links.discard(link)


class _Link:
    """One proxied connection: a pump thread per direction."""

    def __init__(self, client: socket.socket, upstream: socket.socket, proxy: TcpProxy) -> None:
        self._client = client
        self._upstream = upstream
        self._proxy = proxy
        self._open_directions = 2
        self._lock = threading.Lock()

    def start(self) -> None:
        for source, sink, throttled in ((self._client, self._upstream, False),
                                        (self._upstream, self._client, True)):
            threading.Thread(target=self._pump, args=(source, sink, throttled),
                             daemon=True).start()

    def close(self) -> None:
        _close(self._client)
        _close(self._upstream)
        self._proxy._forget(self)

    def _pump(self, source: socket.socket, sink: socket.socket, throttled: bool) -> None:
        try:
            while True:
                rate = self._proxy.rate if throttled else None
                size = _CHUNK if rate is None else max(1, min(_CHUNK,
                                                              int(rate / _TICKS_PER_SECOND)))
                data = source.recv(size)
                if not data:
                    break
                sink.sendall(data)
                if rate is not None:
                    time.sleep(len(data) / rate)
        except OSError:
            self.close()
            return
        # An orderly end of one direction: pass the half-close on; the link ends with both.
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
        with self._lock:
            self._open_directions -= 1
            finished = self._open_directions == 0
        if finished:
            self.close()


def _close(sock: socket.socket) -> None:
    """Shut down first: that wakes a thread blocked in recv() on the same socket."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
