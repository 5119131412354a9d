"""Deployments for the end-to-end tests: real services, and the embedded default.

- `services`: moto S3 + SQS and PostgreSQL;
- `real`: SeaweedFS S3 (SigV4 checked, keys of this session), LocalStack SQS and PostgreSQL;
- `embedded`: nothing configured (SQLite queue and table, a directory).
"""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from tests.integration.deployments import BUCKET, Deployment
from tests.servers import S3Server

COMMON = {
    "SQS_WAIT_TIME_SECONDS": "1",
    "SQS_POLL_INTERVAL_MS": "100",
    "SQS_VISIBILITY_TIMEOUT": "60",
    "LOG_FORMAT": "json",
    "MINIO_BUCKET": BUCKET,
}


def _server_deployment(name: str, *, s3: S3Server, sqs_endpoint: str, postgres_url: str,
                       queue_name: str, workdir: Path) -> Deployment:
    """A queue (+ dead-letter queue) and a bucket of this test's own on shared servers, and a
    fresh database with the table already migrated (`postgres_url`)."""
    sqs = boto3.client("sqs", endpoint_url=sqs_endpoint, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    dlq_url = sqs.create_queue(QueueName=f"{queue_name}-dlq")["QueueUrl"]
    sqs.close()
    env = COMMON | {
        "DATABASE_URL": postgres_url,
        "SQS_QUEUE_URL": queue_url,
        "SQS_ENDPOINT": sqs_endpoint,
        "SQS_DLQ_URL": dlq_url,
        "MINIO_ENDPOINT": s3.endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "MINIO_ACCESS_KEY": s3.access_key,
        "MINIO_SECRET_KEY": s3.secret_key,
        "MINIO_BUCKET": queue_name,  # the servers are shared by every test
    }
    return Deployment(name, env, workdir)


@pytest.fixture
def services_deployment(
    moto_endpoint: str, migrated_postgres_url: str, unique_name: str, tmp_path: Path
) -> Deployment:
    """moto S3 + SQS (with a dead-letter queue) and a fresh PostgreSQL database."""
    return _server_deployment("services", s3=S3Server(moto_endpoint, "test", "test"),
                              sqs_endpoint=moto_endpoint, postgres_url=migrated_postgres_url,
                              queue_name=unique_name, workdir=tmp_path)


@pytest.fixture
def real_deployment(
    seaweedfs: S3Server, localstack_endpoint: str, migrated_postgres_url: str,
    unique_name: str, tmp_path: Path,
) -> Deployment:
    """SeaweedFS S3, LocalStack SQS (with a dead-letter queue), a fresh PostgreSQL database."""
    return _server_deployment("real", s3=seaweedfs, sqs_endpoint=localstack_endpoint,
                              postgres_url=migrated_postgres_url, queue_name=unique_name,
                              workdir=tmp_path)


@pytest.fixture
def embedded_deployment(tmp_path: Path) -> Deployment:
    """The embedded default: no backend configured, so everything lives under ./var of the
    worker's working directory (a temporary directory here)."""
    return Deployment("embedded", dict(COMMON), tmp_path)


@pytest.fixture(params=[pytest.param("services", marks=pytest.mark.services),
                        pytest.param("real", marks=pytest.mark.services), "embedded"])
def deployment(request: pytest.FixtureRequest) -> Deployment:
    """Each end-to-end test runs on every deployment."""
    return request.getfixturevalue(f"{request.param}_deployment")
