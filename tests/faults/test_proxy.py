"""The TCP proxy the fault scenarios rely on: it forwards, cuts, restores, throttles, stops."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.faults.proxy import TcpProxy


@pytest.fixture
def echo_server() -> Iterator[tuple[str, int]]:
    """A TCP server that sends back whatever it receives."""
    listener = socket.create_server(("127.0.0.1", 0))
    stopped = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            while data := conn.recv(65536):
                conn.sendall(data)

    def accept() -> None:
        while not stopped.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()
    stopped.set()
    listener.close()


@pytest.fixture
def proxy(echo_server: tuple[str, int]) -> Iterator[TcpProxy]:
    with TcpProxy(*echo_server) as running:
        yield running


def connect(proxy: TcpProxy) -> socket.socket:
    return socket.create_connection(("127.0.0.1", proxy.port), timeout=5)


def echo(sock: socket.socket, payload: bytes) -> bytes:
    """Send `payload` (from a thread, so large payloads cannot deadlock) and read it back."""
    sender = threading.Thread(target=sock.sendall, args=(payload,), daemon=True)
    sender.start()
    received = b""
    while len(received) < len(payload):
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def is_closed_by_peer(sock: socket.socket) -> bool:
    """True when the other end closed (EOF or reset) rather than answering."""
    try:
        sock.sendall(b"ping")
        return sock.recv(16) == b""
    except OSError:
        return True


def test_forwards_both_directions(proxy: TcpProxy) -> None:
    with connect(proxy) as sock:
        assert echo(sock, b"hello" * 1000) == b"hello" * 1000


def test_cut_closes_live_connections_and_drops_new_ones(proxy: TcpProxy) -> None:
    with connect(proxy) as live:
        assert echo(live, b"before") == b"before"
        proxy.cut()
        assert is_closed_by_peer(live)
    with connect(proxy) as fresh:
        assert is_closed_by_peer(fresh)
    assert proxy.live_connections == 0


def test_restore_forwards_again(proxy: TcpProxy) -> None:
    proxy.cut()
    proxy.restore()
    with connect(proxy) as sock:
        assert echo(sock, b"after") == b"after"


def test_throttle_slows_the_server_to_client_direction(proxy: TcpProxy) -> None:
    proxy.throttle(50_000)
    with connect(proxy) as sock:
        started = time.monotonic()
        assert echo(sock, b"x" * 50_000) == b"x" * 50_000
        assert time.monotonic() - started >= 0.8
    proxy.throttle(None)
    with connect(proxy) as sock:
        started = time.monotonic()
        assert echo(sock, b"y" * 500_000) == b"y" * 500_000
        assert time.monotonic() - started < 0.5


def test_stop_refuses_connections(echo_server: tuple[str, int]) -> None:
    proxy = TcpProxy(*echo_server)
    proxy.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=2).close()
