"""Dockerfile.worker built and run for real, with podman (issue 17, part 4).

No Docker engine runs on these machines; Debian's podman and buildah do. scripts/build-image.sh
builds the image (a debootstrap base, `buildah bud --format docker`) or reuses it from podman's
store when nothing it is made of changed; `make test` runs it before the tests, outside their
timeouts. Every container runs the way Kubernetes runs it (deploy/kubernetes/base): as the
image's user 10001, on a read-only root filesystem with one writable directory, no
capabilities, no new privileges, and no network (the embedded default needs none).

Where podman cannot run (not installed: `make test` installs it as root with
scripts/ensure-tools.sh --image; or no usable runtime), the module skips with one line.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.integration.deployments import Deployment

BUILD = REPO_ROOT / "scripts" / "build-image.sh"
ENV = {**os.environ, "CONTAINERS_CONF": str(REPO_ROOT / "deploy" / "podman" / "containers.conf")}
# What Kubernetes' restricted profile does to the pod (the writable directory comes per test).
LOCKED_DOWN = ["--network", "none", "--read-only", "--cap-drop", "all",
               "--security-opt", "no-new-privileges"]
# The samples come in quickly from the embedded queue.
FAST_QUEUE = ["--env", "SQS_WAIT_TIME_SECONDS=1", "--env", "SQS_POLL_INTERVAL_MS=200"]
SAMPLES = 4  # `media-worker samples`: a JPEG, a PNG, a GIF and an MP4
GRACE = 10  # SHUTDOWN_GRACE_SECONDS of the stopped worker

# A cold build (base and image) takes minutes; `make test` builds before pytest starts.
pytestmark = pytest.mark.timeout(1800)


def podman(*args: str, timeout: float = 120, check: bool = True
           ) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["podman", *args], env=ENV, capture_output=True, text=True,
                            timeout=timeout, check=False)
    if check:
        assert result.returncode == 0, (
            f"podman {' '.join(args)} exited {result.returncode}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def _cannot_run() -> str | None:
    """Why podman cannot run here (scripts/build-image.sh --check, installing nothing), or None.

    Asked once, when the module is collected, so that a machine without podman skips it with
    one line rather than one per test."""
    check = subprocess.run([str(BUILD), "--check"], env=ENV, capture_output=True, text=True,
                           timeout=120, check=False)
    if check.returncode != 3:
        return None  # it can (or something else is wrong, which the build will show)
    lines = check.stderr.strip().splitlines()
    return lines[-1] if lines else "podman cannot run here"


if (reason := _cannot_run()) is not None:
    pytest.skip(reason, allow_module_level=True)


@pytest.fixture(scope="module")
def image() -> str:
    """The image's name, built or reused by scripts/build-image.sh."""
    build = subprocess.run([str(BUILD)], env=ENV, capture_output=True, text=True, timeout=1700,
                           check=False)
    assert build.returncode == 0, f"scripts/build-image.sh failed:\n{build.stderr[-5000:]}"
    return build.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def inspected(image: str) -> dict:
    """`podman image inspect`: the image's Config, and its Healthcheck beside it."""
    return json.loads(podman("image", "inspect", image).stdout)[0]


def test_the_image_keeps_its_user_healthcheck_and_entrypoint(inspected: dict) -> None:
    config = inspected["Config"]
    assert config["User"] == "10001:10001"
    # Kept only in the Docker format: buildah's default OCI format silently drops it.
    check = inspected["Healthcheck"]["Test"]
    assert check[:2] == ["CMD", "python"]
    assert "/healthz" in check[-1]
    assert config["Entrypoint"] == ["media-worker"]
    assert config["Cmd"] == ["run"]
    assert config["StopSignal"] == "SIGTERM"
    assert "9100/tcp" in config["ExposedPorts"]
    assert config["WorkingDir"] == "/app"


def test_help(image: str) -> None:
    result = podman("run", "--rm", *LOCKED_DOWN, image, "--help")
    assert "Usage: media-worker" in result.stdout
    for command in ("run", "migrate", "enqueue", "status"):
        assert re.search(rf"│ {command}\s", result.stdout), command


def test_the_image_has_no_pip_setuptools_or_tests(image: str) -> None:
    script = ("import importlib.util as u, pathlib, sys; "
              "print([m for m in ('pip', 'setuptools') if u.find_spec(m)]); "
              "print(sorted(str(p) for p in pathlib.Path(sys.prefix).rglob('tests')))")
    result = podman("run", "--rm", *LOCKED_DOWN, "--entrypoint", "python", image, "-c", script)
    assert result.stdout.splitlines() == ["[]", "[]"]


def test_embedded_drain_as_the_non_root_user_on_a_read_only_root(image: str) -> None:
    """`media-worker run --drain` on the embedded default, ./var a tmpfs owned by the user."""
    script = """set -e
id -u
media-worker samples var/samples >/dev/null
media-worker enqueue var/samples/* >/dev/null
media-worker run --drain
media-worker status --json
echo thumbnails $(find var/storage -path '*thumbnails*' -type f | wc -l)
if touch /app/written 2>/dev/null; then echo root writable; else echo root read-only; fi
"""
    result = podman("run", "--rm", *LOCKED_DOWN, "--tmpfs", "/app/var:U", *FAST_QUEUE,
                    "--entrypoint", "sh", image, "-c", script, timeout=300)
    lines = result.stdout.splitlines()
    assert lines[0] == "10001"
    status = json.loads(next(line for line in lines if line.startswith('{"media"')))
    assert status["media"]["READY"] == SAMPLES, status
    assert status["media"]["FAILED"] == 0
    assert status["queue"]["visible"] == 0
    thumbnails = int(next(line for line in lines if line.startswith("thumbnails ")).split()[1])
    assert thumbnails >= SAMPLES * 3  # three sizes each
    assert lines[-1] == "root read-only"
    assert '"event": "worker stopped"' in result.stderr  # the log is on stderr


@pytest.fixture
def worker(image: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`media-worker run` (the image's own command) in the background; ./var is tmp_path, so
    the table and queue can be read after the container stops."""
    name = f"media-worker-test-{uuid.uuid4().hex[:8]}"
    var = tmp_path / "var"
    var.mkdir()
    podman("run", "--detach", "--name", name, *LOCKED_DOWN, "--volume", f"{var}:/app/var:U",
           *FAST_QUEUE, "--env", f"SHUTDOWN_GRACE_SECONDS={GRACE}", image)
    try:
        yield name, var
    finally:
        podman("rm", "--force", "--time", "0", name, check=False)


def in_flight(name: str) -> float:
    script = ("import os, urllib.request; print(urllib.request.urlopen('http://127.0.0.1:' + "
              "os.environ['METRICS_PORT'] + '/metrics', timeout=4).read().decode())")
    metrics = podman("exec", name, "python", "-c", script, check=False).stdout
    found = re.search(r"^media_worker_jobs_in_flight (\S+)$", metrics, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_health_check_then_sigterm_exits_0_within_the_grace(
    worker: tuple[str, Path], inspected: dict,
) -> None:
    name, var = worker
    # The HEALTHCHECK passes once the health server listens (podman runs the image's command).
    deadline = time.monotonic() + 90
    while podman("healthcheck", "run", name, check=False).returncode != 0:
        state = podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
        assert state == "running", podman("logs", name, check=False).stderr[-3000:]
        assert time.monotonic() < deadline, "the health check never passed"
        time.sleep(1)
    # And it checks something: pointed at a port nobody listens on, it fails.
    probe = inspected["Healthcheck"]["Test"][1:]
    assert podman("exec", "--env", "METRICS_PORT=1", name, *probe, check=False).returncode != 0

    # Work for the worker (twice the samples), then SIGTERM while jobs are in flight.
    podman("exec", name, "sh", "-c", "media-worker samples var/samples >/dev/null && "
           "media-worker enqueue var/samples/* var/samples/* >/dev/null")
    deadline = time.monotonic() + 60
    while in_flight(name) < 1:
        assert time.monotonic() < deadline, "no job ever started"
    started = time.monotonic()
    # `podman stop` sends the image's STOPSIGNAL, then SIGKILL once its timeout is over: an
    # exit code of 0 means the worker stopped by itself.
    podman("stop", "--time", str(GRACE + 20), name, timeout=GRACE + 60)
    elapsed = time.monotonic() - started
    state = podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
    logs = podman("logs", name).stderr  # the worker logs to stderr
    assert state == "0", logs[-3000:]
    assert elapsed < GRACE + 5, f"stopped after {elapsed:.1f} s"
    assert '"reason": "SIGTERM received"' in logs
    assert '"event": "worker stopped"' in logs

    # Every job either finished or went back to the queue: none is left PROCESSING. The
    # embedded default's paths are ./var/…, so the host's worker reads them from tmp_path.
    status = Deployment("container", {}, var.parent).command("status", "--json")
    assert status.returncode == 0, status.stderr
    media = json.loads(status.stdout)["media"]
    assert media["PROCESSING"] == 0, media
    assert media["FAILED"] == 0, media
    assert media["READY"] + media["PENDING"] == 2 * SAMPLES, media
