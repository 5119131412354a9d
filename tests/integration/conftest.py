"""Deployments for the end-to-end tests: real services, and the embedded default."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from tests.integration.deployments import BUCKET, Deployment

COMMON = {
    "SQS_WAIT_TIME_SECONDS": "1",
    "SQS_POLL_INTERVAL_MS": "100",
    "SQS_VISIBILITY_TIMEOUT": "60",
    "LOG_FORMAT": "json",
    "MINIO_BUCKET": BUCKET,
}


@pytest.fixture
def services_deployment(
    moto_endpoint: str, postgres_url: str, unique_name: str, tmp_path: Path
) -> Deployment:
    """moto S3 + SQS (with a dead-letter queue) and a fresh PostgreSQL database."""
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName=unique_name)["QueueUrl"]
    dlq_url = sqs.create_queue(QueueName=f"{unique_name}-dlq")["QueueUrl"]
    env = COMMON | {
        "DATABASE_URL": postgres_url,
        "SQS_QUEUE_URL": queue_url,
        "SQS_ENDPOINT": moto_endpoint,
        "SQS_DLQ_URL": dlq_url,
        "MINIO_ENDPOINT": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "MINIO_ACCESS_KEY": "test",
        "MINIO_SECRET_KEY": "test",
        "MINIO_BUCKET": unique_name,  # the moto server is shared by every test
    }
    deployment = Deployment("services", env, tmp_path)
    result = deployment.command("migrate")
    assert result.returncode == 0, result.stderr
    return deployment


@pytest.fixture
def embedded_deployment(tmp_path: Path) -> Deployment:
    """The embedded default: no backend configured, so everything lives under ./var of the
    worker's working directory (a temporary directory here)."""
    return Deployment("embedded", dict(COMMON), tmp_path)


@pytest.fixture(params=["services", "embedded"])
def deployment(request: pytest.FixtureRequest) -> Deployment:
    """Each end-to-end test runs on both deployments."""
    return request.getfixturevalue(f"{request.param}_deployment")
