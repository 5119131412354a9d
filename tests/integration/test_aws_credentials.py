"""Credentials as the AWS ecosystem provides them, against a real S3 server that checks keys
(SeaweedFS with SigV4 enforced): keys in the environment, a shared-credentials file or
AWS_PROFILE, and container credentials (what ECS and EKS Pod Identity look like to the SDK),
refreshed when they expire. Wrong keys fail readably, naming the variables, and no secret ever
reaches a log line."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from media_worker.types import MediaStatus
from tests.integration.deployments import Deployment
from tests.servers import S3Server

pytestmark = pytest.mark.services

BASE = {
    "SQS_WAIT_TIME_SECONDS": "1",
    "SQS_POLL_INTERVAL_MS": "100",
    "LOG_FORMAT": "json",
    "MAX_ATTEMPTS": "1",
    "THUMBNAIL_SIZES": "small:64x64",
}


def seaweed_deployment(seaweedfs: S3Server, tmp_path: Path, bucket: str,
                       **env: str) -> Deployment:
    """SeaweedFS storage, the embedded queue and table: only the storage's keys vary.
    The chain finds nothing of the machine's own (empty credentials and config files)."""
    (tmp_path / "empty").write_text("")
    chain = {"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "empty"),
             "AWS_CONFIG_FILE": str(tmp_path / "empty")}
    return Deployment("seaweedfs", BASE | chain | {
        "MINIO_ENDPOINT": seaweedfs.endpoint, "MINIO_BUCKET": bucket} | env, tmp_path)


def submit_with_good_keys(seaweedfs: S3Server, deployment: Deployment,
                          photo: Path) -> list[str]:
    """Upload the originals as the API would, with the server's keys."""
    submitter = Deployment("submitter", deployment.env | {
        "MINIO_ACCESS_KEY": seaweedfs.access_key, "MINIO_SECRET_KEY": seaweedfs.secret_key},
        deployment.workdir)
    return submitter.enqueue(photo, photo)


def statuses(deployment: Deployment, media_ids: list[str]) -> list[MediaStatus]:
    with deployment.components() as components:
        records = [components.repository.get(media_id) for media_id in media_ids]
    return [record.status for record in records if record is not None]


@pytest.fixture
def photo(corpus: Path) -> Path:
    return corpus / "images" / "formats" / "jpeg" / "rgb.jpg"


def test_keys_in_the_environment_are_used(seaweedfs: S3Server, tmp_path: Path,
                                          unique_name: str, photo: Path) -> None:
    deployment = seaweed_deployment(seaweedfs, tmp_path, unique_name,
                                    MINIO_ACCESS_KEY=seaweedfs.access_key,
                                    MINIO_SECRET_KEY=seaweedfs.secret_key)
    media_ids = submit_with_good_keys(seaweedfs, deployment, photo)
    deployment.drain()
    assert statuses(deployment, media_ids) == [MediaStatus.READY] * 2


def test_standard_aws_variables_are_used_for_storage(seaweedfs: S3Server, tmp_path: Path,
                                                     unique_name: str, photo: Path) -> None:
    deployment = seaweed_deployment(seaweedfs, tmp_path, unique_name,
                                    AWS_ACCESS_KEY_ID=seaweedfs.access_key,
                                    AWS_SECRET_ACCESS_KEY=seaweedfs.secret_key)
    media_ids = submit_with_good_keys(seaweedfs, deployment, photo)
    deployment.drain()
    assert statuses(deployment, media_ids) == [MediaStatus.READY] * 2


def test_a_shared_credentials_file_alone_is_enough(seaweedfs: S3Server, tmp_path: Path,
                                                   unique_name: str, photo: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(f"[default]\naws_access_key_id = {seaweedfs.access_key}\n"
                           f"aws_secret_access_key = {seaweedfs.secret_key}\n")
    deployment = seaweed_deployment(seaweedfs, tmp_path, unique_name,
                                    AWS_SHARED_CREDENTIALS_FILE=str(credentials))
    media_ids = submit_with_good_keys(seaweedfs, deployment, photo)
    result = deployment.drain()
    assert statuses(deployment, media_ids) == [MediaStatus.READY] * 2
    assert "development default" not in result.stderr


def test_aws_profile_picks_its_profile(seaweedfs: S3Server, tmp_path: Path,
                                       unique_name: str, photo: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(
        "[default]\naws_access_key_id = nobody\naws_secret_access_key = wrong-secret-1\n"
        f"[thumbnails]\naws_access_key_id = {seaweedfs.access_key}\n"
        f"aws_secret_access_key = {seaweedfs.secret_key}\n")
    deployment = seaweed_deployment(seaweedfs, tmp_path, unique_name,
                                    AWS_SHARED_CREDENTIALS_FILE=str(credentials),
                                    AWS_PROFILE="thumbnails")
    media_ids = submit_with_good_keys(seaweedfs, deployment, photo)
    deployment.drain()
    assert statuses(deployment, media_ids) == [MediaStatus.READY] * 2


class CredentialsEndpoint:
    """What ECS and EKS Pod Identity serve at AWS_CONTAINER_CREDENTIALS_FULL_URI: temporary
    credentials that expire soon, so botocore must come back for fresh ones."""

    def __init__(self, server: S3Server, lifetime: timedelta) -> None:
        self.requests = 0
        self._server, self._lifetime = server, lifetime
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                endpoint.requests += 1
                body = json.dumps(endpoint.credentials()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_port}/v2/credentials/worker"
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    def credentials(self) -> dict[str, str]:
        expires = datetime.now(UTC) + self._lifetime
        return {"AccessKeyId": self._server.access_key,
                "SecretAccessKey": self._server.secret_key,
                # Real endpoints hand out STS session tokens, which SeaweedFS would try to
                # verify as its own; an empty one makes botocore sign with the keys alone.
                "Token": "",
                "Expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()


@pytest.fixture
def container_credentials(seaweedfs: S3Server) -> Iterator[CredentialsEndpoint]:
    # Inside botocore's mandatory-refresh window: every request finds them about to expire.
    endpoint = CredentialsEndpoint(seaweedfs, timedelta(minutes=5))
    yield endpoint
    endpoint.close()


def test_container_credentials_are_fetched_and_refreshed_mid_run(
    seaweedfs: S3Server, tmp_path: Path, unique_name: str, photo: Path,
    container_credentials: CredentialsEndpoint,
) -> None:
    deployment = seaweed_deployment(
        seaweedfs, tmp_path, unique_name,
        AWS_CONTAINER_CREDENTIALS_FULL_URI=container_credentials.url)
    media_ids = submit_with_good_keys(seaweedfs, deployment, photo)
    result = deployment.drain()
    assert statuses(deployment, media_ids) == [MediaStatus.READY] * 2, result.stderr[-2000:]
    # Once at start-up, then again as they expire: more than one fetch in one run.
    assert container_credentials.requests >= 2


def test_wrong_keys_fail_readably_naming_the_variables_without_the_secret(
    seaweedfs: S3Server, tmp_path: Path, unique_name: str, photo: Path,
) -> None:
    wrong_secret = "wrong-secret-value-0123456789"
    deployment = seaweed_deployment(seaweedfs, tmp_path, unique_name,
                                    MINIO_ACCESS_KEY=seaweedfs.access_key,
                                    MINIO_SECRET_KEY=wrong_secret)
    media_ids = submit_with_good_keys(seaweedfs, deployment, photo)
    result = deployment.drain()
    with deployment.components() as components:
        record = components.repository.get(media_ids[0])
    assert record is not None
    assert record.status is MediaStatus.FAILED
    assert record.error is not None
    assert "MINIO_ACCESS_KEY/MINIO_SECRET_KEY" in record.error
    assert "HTTP 403" in record.error
    output = result.stdout + result.stderr
    assert "MINIO_ACCESS_KEY/MINIO_SECRET_KEY" in output
    assert wrong_secret not in output
    assert seaweedfs.secret_key not in output


def test_no_credentials_off_aws_uses_the_development_keys_with_one_warning(
    seaweedfs: S3Server, tmp_path: Path, unique_name: str, photo: Path,
) -> None:
    deployment = seaweed_deployment(seaweedfs, tmp_path, unique_name)
    submit_with_good_keys(seaweedfs, deployment, photo)
    result = deployment.drain()
    warnings = [line for line in result.stderr.splitlines()
                if "no credentials in the settings or boto3's chain" in line]
    assert len(warnings) == 1
    assert "MINIO_ACCESS_KEY/MINIO_SECRET_KEY" in warnings[0]
