"""Fixtures of the fault suite: moto and PostgreSQL behind proxies the test controls, and a
fleet of real `media-worker run` processes stopped with SIGTERM at the end."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest

from media_worker.app import open_components
from tests.faults.harness import FAULT_TIMINGS, Fleet, Lab, Services, through
from tests.faults.proxy import TcpProxy
from tests.integration.deployments import Deployment


def proxy_to(url: str) -> TcpProxy:
    parts = urlsplit(url)
    assert parts.hostname is not None
    return TcpProxy(parts.hostname, parts.port or 5432)


@pytest.fixture
def services(moto_endpoint: str, migrated_postgres_url: str, unique_name: str,
             tmp_path: Path) -> Iterator[Services]:
    """A fresh queue (+ dead-letter queue), bucket and migrated database; S3, SQS and
    PostgreSQL each reached by the workers through a proxy of its own (S3 and SQS are both moto,
    but separate proxies let a test slow down downloads without slowing the queue, or cut one
    alone)."""
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName=unique_name)["QueueUrl"]
    dlq_url = sqs.create_queue(QueueName=f"{unique_name}-dlq")["QueueUrl"]
    postgres_url = migrated_postgres_url
    direct_env = FAULT_TIMINGS | {
        "DATABASE_URL": postgres_url,
        "SQS_QUEUE_URL": queue_url,
        "SQS_DLQ_URL": dlq_url,
        "SQS_ENDPOINT": moto_endpoint,
        "MINIO_ENDPOINT": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "MINIO_ACCESS_KEY": "test",
        "MINIO_SECRET_KEY": "test",
        "MINIO_BUCKET": unique_name,  # the moto server is shared by every test
    }
    with ExitStack() as stack:
        s3 = stack.enter_context(proxy_to(moto_endpoint))
        sqs_proxy = stack.enter_context(proxy_to(moto_endpoint))
        database = stack.enter_context(proxy_to(postgres_url))
        proxied_env = direct_env | {
            "DATABASE_URL": through(postgres_url, database),
            "SQS_QUEUE_URL": through(queue_url, sqs_proxy),
            "SQS_DLQ_URL": through(dlq_url, sqs_proxy),
            "SQS_ENDPOINT": through(moto_endpoint, sqs_proxy),
            "MINIO_ENDPOINT": through(moto_endpoint, s3),
        }
        direct = Deployment("direct", direct_env, tmp_path)
        view = stack.enter_context(open_components(direct.settings(), engine=False))
        view.storage.ensure_bucket(unique_name)
        yield Services(deployment=Deployment("proxied", proxied_env, tmp_path), direct=direct,
                       view=view, s3=s3, sqs=sqs_proxy, database=database)


@pytest.fixture
def fleet(services: Services, tmp_path: Path) -> Iterator[Fleet]:
    """Workers started by the test; whatever still runs at the end gets SIGTERM."""
    workers = Fleet(services.deployment, tmp_path / "logs")
    yield workers
    services.heal()
    workers.stop_all()


@pytest.fixture
def lab(services: Services, fleet: Fleet) -> Lab:
    """The scenario's services and workers; its wall time counts from here."""
    return Lab(services, fleet)
