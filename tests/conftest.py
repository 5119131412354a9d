"""Shared fixtures: the corpus, real S3 and SQS servers, a real PostgreSQL database.

The servers are real: moto (S3 + SQS), SeaweedFS (S3, enforcing SigV4) and LocalStack (S3 +
SQS) run as subprocesses on free ports, each started once per session by tests/servers.py; each
test that needs PostgreSQL (127.0.0.1:5432) gets a database of its own, created and dropped
around it (empty, or copied from a template the session migrated once).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests import servers
from tests.big_videos import BigVideos, ffmpeg_available, shared_big_videos
from tests.servers import S3Server, SeaweedServer, ServerUnavailable, free_port
from tests.servers import wait_for_http as _wait_for_http

__all__ = ["REPO_ROOT", "S3Server", "_wait_for_http", "free_port"]  # bench/ and tests use them

REPO_ROOT = servers.REPO_ROOT
CORPUS = Path(os.environ.get("MEDIA_WORKER_CORPUS", REPO_ROOT.parent / "shared" / "corpus"))
# boto3's credential chain ends at the EC2 instance-metadata address, which is no host of
# ours: the tests (and every worker they start) never ask it.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
POSTGRES_ADMIN_URL = os.environ.get(
    "MEDIA_WORKER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The shared media corpus (../shared/corpus); tests that need it skip where it is absent."""
    if not (CORPUS / "MANIFEST.tsv").is_file():
        pytest.skip(f"media corpus not found at {CORPUS} (set MEDIA_WORKER_CORPUS)")
    return CORPUS


@pytest.fixture(scope="session")
def big_videos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BigVideos]:
    """Videos of 100-335 MB and 30 minutes for the reading-in-place tests (tests/big_videos.py),
    made once per run with Debian's ffmpeg and shared by the test processes."""
    if not ffmpeg_available():
        pytest.skip("needs Debian's ffmpeg (apt-get install ffmpeg)")
    with shared_big_videos(tmp_path_factory.getbasetemp()) as videos:
        yield videos


@pytest.fixture(scope="session")
def aws_credentials() -> Iterator[None]:
    """Dummy credentials so boto3 never looks for real ones."""
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ["AWS_ACCESS_KEY_ID"] = "test"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "test"
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def moto_endpoint(aws_credentials: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real moto HTTP server (S3 + SQS, any keys) in a subprocess; yields its endpoint URL."""
    with servers.moto_server(tmp_path_factory.mktemp("moto")) as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    """SeaweedFS's S3 server, enforcing SigV4 with a key pair of this session."""
    try:
        servers.find_weed()
    except ServerUnavailable as exc:
        pytest.skip(str(exc))
    with servers.seaweedfs_server(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture(scope="session")
def localstack_endpoint(aws_credentials: None, tmp_path_factory: pytest.TempPathFactory
                        ) -> Iterator[str]:
    """LocalStack (S3 + SQS, any keys), run natively from .venv-localstack; its endpoint."""
    try:
        servers.find_localstack_python()
    except ServerUnavailable as exc:
        pytest.skip(str(exc))
    with servers.localstack_server(tmp_path_factory.mktemp("localstack")) as endpoint:
        yield endpoint


def s3_server(request: pytest.FixtureRequest, name: str) -> S3Server:
    """The S3 server called `name` ("moto" or "seaweedfs") with the keys it accepts."""
    if name == "moto":
        return S3Server(request.getfixturevalue("moto_endpoint"), "test", "test")
    if name == "seaweedfs":
        return request.getfixturevalue("seaweedfs")
    raise ValueError(f"no S3 server {name!r}")


def sqs_endpoint(request: pytest.FixtureRequest, name: str) -> str:
    """The endpoint of the SQS server called `name` ("moto" or "localstack"; keys test/test)."""
    if name in ("moto", "localstack"):
        return str(request.getfixturevalue(f"{name}_endpoint"))
    raise ValueError(f"no SQS server {name!r}")


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The admin URL of the machine's PostgreSQL; skips with a clear message when absent."""
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {exc}".splitlines()[0])
    return POSTGRES_ADMIN_URL


@contextmanager
def database(admin_url: str, *, template: str | None = None) -> Iterator[str]:
    """A new database (empty, or a copy of `template`) and its URL; dropped on exit."""
    name = f"mw_test_{uuid.uuid4().hex[:12]}"
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        create += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(create)
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            conn.execute(drop.format(sql.Identifier(name)))


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    with database(postgres_server) as url:
        yield url


@pytest.fixture(scope="session")
def migrated_template(postgres_server: str, tmp_path_factory: pytest.TempPathFactory
                      ) -> Iterator[str]:
    """The name of a database of this session migrated once by the real `media-worker
    migrate`; each test's migrated database is copied from it (CREATE DATABASE … TEMPLATE
    takes milliseconds, the command about a second)."""
    from tests.integration.deployments import Deployment

    with database(postgres_server) as url:
        migrate = Deployment("template", {"DATABASE_URL": url},
                             tmp_path_factory.mktemp("template")).command("migrate")
        assert migrate.returncode == 0, migrate.stderr
        yield url.rsplit("/", 1)[1]


@pytest.fixture
def migrated_postgres_url(postgres_server: str, migrated_template: str) -> Iterator[str]:
    """A fresh database for one test with the media table in it, as `media-worker migrate`
    leaves it; dropped afterwards."""
    with database(postgres_server, template=migrated_template) as url:
        yield url


@pytest.fixture
def unique_name() -> str:
    """A short unique name for queues and buckets of one test."""
    return f"t-{uuid.uuid4().hex[:10]}"
