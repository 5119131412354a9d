"""Signal handling of a running worker."""

from __future__ import annotations

import os
import signal
from types import FrameType

from media_worker.poller import QueuePoller


def install_signal_handlers(poller: QueuePoller) -> None:
    """First SIGTERM/SIGINT: stop receiving and finish in-flight jobs. Second: exit now.

    The handler never logs: structlog's writer holds a lock that is not reentrant, and a
    signal landing while the main thread writes a line would deadlock on it. It sets the
    poller's stop flag (the loop logs the reason), or on a second signal writes one line
    straight to the stderr descriptor, which takes no lock, and exits."""

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if poller.stopping:
            os.write(2, f"media-worker: second {name}; exiting immediately\n".encode())
            os._exit(128 + signum)  # in-flight messages reappear after their visibility timeout
        poller.stop(f"{name} received")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
