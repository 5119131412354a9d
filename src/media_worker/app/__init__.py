"""The composition root: the only package that knows every adapter.

`adapters` turns Settings into concrete adapters, `worker` wires them into a MediaProcessor and
a QueuePoller with their companions, `signals` owns SIGTERM/SIGINT.
"""

from media_worker.app.adapters import (
    Components,
    build_engine,
    build_queue,
    build_repository,
    build_storage,
    connection_pool_size,
    open_components,
)
from media_worker.app.signals import install_signal_handlers
from media_worker.app.worker import build_poller, run_worker

__all__ = [
    "Components", "build_engine", "build_poller", "build_queue", "build_repository",
    "build_storage", "connection_pool_size", "install_signal_handlers", "open_components",
    "run_worker",
]
