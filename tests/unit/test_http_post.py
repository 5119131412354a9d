"""The webhook's HTTP/1.1 client (events/http_post.py) against a scripted server on 127.0.0.1:
what it sends, how it reads each framing of an answer, and when it keeps the connection."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from media_worker.events.http_post import MAX_BODY_BYTES, BadAnswerError, HttpPoster

OK_WITH_BODY = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


@dataclass
class Script:
    """Answers in order, one per request; `close_after` closes the connection after that
    many answers on it (0: keep it)."""

    answers: list[bytes]
    close_after: int = 0
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0


def _serve(listener: socket.socket, script: Script) -> None:
    while script.answers:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        script.connections += 1
        with conn:
            served = 0
            buffer = b""
            while script.answers:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        break
                    buffer += data
                if b"\r\n\r\n" not in buffer:
                    break
                head, _, rest = buffer.partition(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                while len(rest) < length:
                    rest += conn.recv(65536)
                script.requests.append(head + b"\r\n\r\n" + rest[:length])
                buffer = rest[length:]
                conn.sendall(script.answers.pop(0))
                served += 1
                if script.close_after and served >= script.close_after:
                    break


@contextmanager
def server(script: Script) -> Iterator[str]:
    listener = socket.create_server(("127.0.0.1", 0))
    thread = threading.Thread(target=_serve, args=(listener, script), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hooks/media?x=1"
    finally:
        listener.close()


def post(url: str, poster: HttpPoster | None = None) -> int:
    poster = poster or HttpPoster(url, timeout=5)
    return poster.post(b'{"a":1}', {"webhook-id": "e1", "content-type": "application/json"})


def test_the_request_is_one_post_with_host_length_headers_and_body() -> None:
    script = Script([OK_WITH_BODY])
    with server(script) as url:
        assert post(url) == 200
    head, _, body = script.requests[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /hooks/media?x=1 HTTP/1.1"
    assert f"Host: {url.split('/')[2]}".encode() in lines
    assert b"Content-Length: 7" in lines
    assert b"webhook-id: e1" in lines
    assert body == b'{"a":1}'


@pytest.mark.parametrize("answer", [
    OK_WITH_BODY,
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\n"
    b"Trailer: 1\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\n"
    b"Content-Length: 0\r\n\r\n",
], ids=["content-length", "chunked", "no-content", "interim-answer"])
def test_each_framed_answer_is_read_and_the_connection_kept(answer: bytes) -> None:
    script = Script([answer, OK_WITH_BODY])
    with server(script) as url:
        poster = HttpPoster(url, timeout=5)
        assert post(url, poster) in (200, 201, 204)
        assert post(url, poster) == 200
    assert script.connections == 1


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
], ids=["connection-close", "http-1.0"])
def test_an_answer_that_ends_the_connection_gets_a_new_one_next(answer: bytes) -> None:
    script = Script([answer, OK_WITH_BODY], close_after=1)
    with server(script) as url:
        poster = HttpPoster(url, timeout=5)
        assert post(url, poster) == 200
        assert post(url, poster) == 200
    assert script.connections == 2


def test_an_answer_without_length_is_read_to_the_close() -> None:
    script = Script([b"HTTP/1.1 500 Oops\r\n\r\nsomething broke", OK_WITH_BODY],
                    close_after=1)
    with server(script) as url:
        poster = HttpPoster(url, timeout=5)
        assert post(url, poster) == 500
        assert post(url, poster) == 200
    assert script.connections == 2


def test_a_kept_alive_connection_the_receiver_closed_is_replaced_once() -> None:
    script = Script([OK_WITH_BODY, OK_WITH_BODY], close_after=1)  # closes after each answer
    with server(script) as url:
        poster = HttpPoster(url, timeout=5)
        assert post(url, poster) == 200
        assert post(url, poster) == 200  # the first connection was gone: sent again, fresh
    assert len(script.requests) == 2


def test_an_answer_that_is_not_http_is_an_error() -> None:
    with server(Script([b"SSH-2.0-OpenSSH\r\n\r\n"])) as url, pytest.raises(BadAnswerError):
        post(url)


def test_a_receiver_that_never_answers_times_out() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        poster = HttpPoster(f"http://127.0.0.1:{listener.getsockname()[1]}/", timeout=0.3)
        with pytest.raises(TimeoutError):
            poster.post(b"{}", {})
    finally:
        listener.close()


@pytest.mark.parametrize(("answer", "body"), [
    (OK_WITH_BODY, b"hello"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\n"
     b"\r\n", b"abcde"),
    (b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n{\"__type\": \"X\"}",
     b"{\"__type\": \"X\"}"),
], ids=["content-length", "chunked", "framed-by-close"])
def test_exchange_returns_the_answers_body_whatever_its_framing(answer: bytes,
                                                                body: bytes) -> None:
    script = Script([answer])
    with server(script) as url:
        got = HttpPoster(url, timeout=5).exchange(b"{}", {})
    assert got.body == body


def test_exchange_keeps_the_first_mib_of_a_huge_body_and_the_connection() -> None:
    huge = b"x" * (MAX_BODY_BYTES + 10)
    script = Script([b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(huge) + huge,
                     OK_WITH_BODY])
    with server(script) as url:
        poster = HttpPoster(url, timeout=5)
        assert len(poster.exchange(b"{}", {}).body) == MAX_BODY_BYTES
        assert poster.exchange(b"{}", {}).body == b"hello"
    assert script.connections == 1

