"""Signal handling of a running worker.

The handler does as good as nothing: it notes the signal in a list (an append is atomic) and,
on the second one, writes a line straight to the stderr descriptor and exits. Logging there
could deadlock on structlog's lock, and even `threading.Event.set()` takes a lock the main
thread may hold inside `Event.wait()`; so a small watcher thread turns the first signal into
`poller.stop()`, from ordinary code.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from types import FrameType

from media_worker.poller import QueuePoller

WATCH_SECONDS = 0.05  # how soon a signal is acted on; the loop itself waits far longer


def install_signal_handlers(poller: QueuePoller) -> None:
    """First SIGTERM/SIGINT: stop receiving and finish in-flight jobs. Second: exit now."""
    received: list[str] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signal.Signals(signum).name)
        if len(received) > 1:
            os.write(2, f"media-worker: second {received[-1]}; exiting immediately\n".encode())
            os._exit(128 + signum)  # in-flight messages reappear after their visibility timeout

    def watch() -> None:
        while not received:
            time.sleep(WATCH_SECONDS)
        poller.stop(f"{received[0]} received")

    threading.Thread(target=watch, name="signal-watcher", daemon=True).start()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
