"""The worker's small HTTP server: `/metrics`, `/healthz` and `/readyz` on METRICS_PORT.

Why the standard library and not a web framework: the server has three GET endpoints, no
routing beyond a dictionary, no request bodies, and must never compete with the jobs for the
interpreter. `http.server.ThreadingHTTPServer` in a daemon thread does exactly that, adds no
dependency, and cannot keep the process alive after the worker has decided to exit.

- `/healthz`: 200 `ok` while the process runs and every supervised background loop (heartbeat,
  reconciler, queue gauge) is alive; 503 with a JSON body naming the failing loops once one
  keeps failing (liveness; the container's HEALTHCHECK).
- `/readyz`: runs every readiness check (queue, storage, database), each on its own thread
  with a timeout, and answers 200 or 503 with a JSON body naming each check's result. It also
  sets `media_worker_dependency_up`.
- `/metrics`: the Prometheus exposition of the worker's `WorkerMetrics`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Final
from urllib.parse import urlsplit

from media_worker.observability.logging import Logger, short_error
from media_worker.observability.metrics import WorkerMetrics
from media_worker.supervision import Liveness

Check = Callable[[], None]
"""A readiness check: returns when its dependency answers, raises when it does not."""

OK: Final = "ok"


class _Probe:
    """One run of a check on a daemon thread.

    A check that hangs (a database behind a black-holed route) must not hang `/readyz`, and
    must not keep the interpreter from exiting either; a daemon thread joined with a timeout
    gives both. While a run is still hanging, later requests wait on it instead of starting
    another, so a slow dependency costs one thread, not one per probe."""

    def __init__(self, check: Check) -> None:
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(check,), daemon=True,
                                        name="readyz-check")
        self._thread.start()

    def _run(self, check: Check) -> None:
        try:
            check()
        except BaseException as exc:  # even SystemExit from a client library is "not ready"
            self.error = exc

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds; True when the check has finished."""
        self._thread.join(max(timeout, 0.0))
        return not self._thread.is_alive()


class HealthServer:
    """Serves metrics and health endpoints from a daemon thread until `stop()`."""

    def __init__(
        self,
        port: int,
        metrics: WorkerMetrics,
        checks: Mapping[str, Check],
        host: str = "0.0.0.0",
        *,
        check_timeout: float = 2.0,
        logger: Logger | None = None,
        liveness: Liveness | None = None,
    ) -> None:
        """`port` 0 binds a free port (read it from `.port` after `start()`)."""
        self._host = host
        self._requested_port = port
        self.metrics = metrics
        self._checks = dict(checks)
        self._check_timeout = check_timeout
        self._log = logger
        self.liveness = liveness or Liveness()
        self._probes: dict[str, _Probe] = {}
        self._last: dict[str, bool] = {}
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The bound port once started (the requested one before)."""
        return self._server.server_address[1] if self._server else self._requested_port

    def start(self) -> None:
        """Bind and serve in a daemon thread; returns at once."""
        if self._server is not None:
            return
        self._server = _Server((self._host, self._requested_port), self)
        # A short poll interval keeps stop() quick (shutdown waits for the loop's next turn).
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,),
                                        name="health-http", daemon=True)
        self._thread.start()
        if self._log:
            self._log.info("health server listening", host=self._host, port=self.port)

    def stop(self) -> None:
        """Stop serving and release the port. Safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> HealthServer:
        self.start()
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- readiness ----------------------------------------------------------------------
    def readiness(self) -> tuple[bool, dict[str, str]]:
        """Run every check (concurrently, bounded by the timeout); record `dependency_up`.

        Returns whether all passed and, per check, `ok` or a short credential-free error."""
        probes = self._start_probes()
        deadline = time.monotonic() + self._check_timeout
        results = {name: self._result(probe, deadline) for name, probe in probes.items()}
        for name, result in results.items():
            self._record(name, result)
        return all(result == OK for result in results.values()), results

    def _start_probes(self) -> dict[str, _Probe]:
        with self._lock:
            for name, check in self._checks.items():
                previous = self._probes.get(name)
                if previous is None or not previous.running:
                    self._probes[name] = _Probe(check)
            return dict(self._probes)

    def _result(self, probe: _Probe, deadline: float) -> str:
        if not probe.wait(deadline - time.monotonic()):
            return f"timed out after {self._check_timeout:g} s"
        return OK if probe.error is None else short_error(probe.error, limit=200)

    def _record(self, name: str, result: str) -> None:
        up = result == OK
        self.metrics.set_dependency(name, up)
        with self._lock:
            changed = self._last.get(name) != up
            self._last[name] = up
        if changed and self._log:
            if up:
                self._log.info("dependency reachable", dependency=name)
            else:
                self._log.warning("dependency unreachable", dependency=name, error=result)


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its HealthServer (handlers reach it via self.server)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], health: HealthServer) -> None:
        self.health = health
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    """Routes the three GET endpoints; everything else is 404."""

    server: _Server
    timeout = 10  # a client that connects and says nothing must not hold a thread forever
    server_version = "media-worker"

    def do_GET(self) -> None:
        self._serve(with_body=True)

    def do_HEAD(self) -> None:
        self._serve(with_body=False)

    def _serve(self, *, with_body: bool) -> None:
        routes: dict[str, Callable[[], tuple[int, bytes, str]]] = {
            "/metrics": self._metrics,
            "/healthz": self._healthz,
            "/readyz": self._readyz,
        }
        route = routes.get(urlsplit(self.path).path)
        try:
            status, body, content_type = route() if route else _text(HTTPStatus.NOT_FOUND,
                                                                      "not found")
        except Exception as exc:
            status, body, content_type = _text(HTTPStatus.INTERNAL_SERVER_ERROR,
                                               short_error(exc))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def _metrics(self) -> tuple[int, bytes, str]:
        body, content_type = self.server.health.metrics.render_for(self.headers.get("Accept"))
        return HTTPStatus.OK, body, content_type

    def _healthz(self) -> tuple[int, bytes, str]:
        problems = self.server.health.liveness.problems()
        if not problems:
            return _text(HTTPStatus.OK, OK)
        payload = {"status": "unhealthy", "threads": problems}
        return HTTPStatus.SERVICE_UNAVAILABLE, json.dumps(payload).encode(), "application/json"

    def _readyz(self) -> tuple[int, bytes, str]:
        ready, checks = self.server.health.readiness()
        payload = {"status": "ready" if ready else "unavailable", "checks": checks}
        status = HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE
        return status, json.dumps(payload).encode(), "application/json"

    def log_message(self, format: str, *args: object) -> None:
        """Silent: Prometheus and probes call every few seconds; one access line each would
        drown the job logs. Failures of dependencies are logged by HealthServer instead."""


def _text(status: int, text: str) -> tuple[int, bytes, str]:
    return status, f"{text}\n".encode(), "text/plain; charset=utf-8"
