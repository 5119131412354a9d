"""Signals: the handler only sets the poller's stop flag; the loop does the logging."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest
from structlog.testing import capture_logs

from media_worker.app import install_signal_handlers
from tests.unit.test_poller import make_poller


@pytest.fixture
def restored_handlers() -> Iterator[None]:
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.mark.usefixtures("restored_handlers")
def test_the_signal_handler_sets_the_stop_flag_and_logs_nothing() -> None:
    poller, *_ = make_poller(jobs=0, drain=False)
    install_signal_handlers(poller)
    with capture_logs() as logs:
        os.kill(os.getpid(), signal.SIGTERM)
        handled = logs == []  # nothing was logged from inside the handler
    deadline = time.monotonic() + 5
    while not poller.stopping and time.monotonic() < deadline:
        time.sleep(0.01)
    assert poller.stopping
    assert handled


def test_the_loop_logs_why_it_stops() -> None:
    poller, *_ = make_poller(jobs=0, drain=False)
    with capture_logs() as logs:
        runner = threading.Thread(target=poller.run)
        runner.start()
        poller.stop("SIGTERM received")
        runner.join(timeout=10)
    assert not runner.is_alive()
    stopping = [entry for entry in logs if entry["event"].startswith("stopping")]
    assert stopping == [{"event": "stopping; finishing in-flight jobs",
                         "reason": "SIGTERM received", "log_level": "info"}]
