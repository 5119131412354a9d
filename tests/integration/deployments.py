"""A worker deployment under test: its environment, its CLI, and a view of its backends.

The same end-to-end tests run against two deployments: real services (moto S3+SQS, PostgreSQL)
and the embedded default (SQLite queue and table, a directory). The worker always runs as the
real `media-worker` command in a subprocess, exactly as operators run it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import chdir, contextmanager
from dataclasses import dataclass
from pathlib import Path

from media_worker.app import Components, open_components
from media_worker.config import Settings

CLI = [sys.executable, "-m", "media_worker"]
BUCKET = "media"


@dataclass
class Deployment:
    """Environment variables of one worker set-up, and ways to drive and inspect it."""

    name: str
    env: dict[str, str]
    workdir: Path

    def settings(self) -> Settings:
        return Settings(**{key.lower(): value for key, value in self.env.items()})

    @contextmanager
    def components(self) -> Iterator[Components]:
        # Relative paths of the embedded default are relative to the worker's directory.
        with chdir(self.workdir), open_components(self.settings(), engine=False) as components:
            yield components

    def command(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run `media-worker ARGS` to completion."""
        return subprocess.run([*CLI, *args], env=self._process_env(), cwd=self.workdir,
                              capture_output=True, text=True, timeout=timeout, check=False)

    def start(self, *args: str, log: Path) -> subprocess.Popen[bytes]:
        """Start `media-worker ARGS` in the background, its log to `log`."""
        with log.open("wb") as handle:
            return subprocess.Popen([*CLI, *args], env=self._process_env(), cwd=self.workdir,
                                    stdout=handle, stderr=subprocess.STDOUT)

    def enqueue(self, *files: Path) -> list[str]:
        """Submit files as the API would; returns their media ids in order."""
        result = self.command("enqueue", *map(str, files))
        assert result.returncode == 0, result.stderr
        return [line.split("\t", 1)[0] for line in result.stdout.splitlines()]

    def drain(self, concurrency: int = 2) -> subprocess.CompletedProcess[str]:
        result = self.command("run", "--drain", "--concurrency", str(concurrency), timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    def _process_env(self) -> dict[str, str]:
        inherited = {k: v for k, v in os.environ.items() if not _is_worker_variable(k)}
        return {**inherited, **self.env, "PYTHONUNBUFFERED": "1"}


def _is_worker_variable(name: str) -> bool:
    return name in Settings.model_fields or name.lower() in Settings.model_fields


def log_events(text: str) -> list[dict]:
    """The JSON log lines of a worker's output."""
    events = []
    for line in text.splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    return events
