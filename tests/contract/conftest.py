"""The storage adapters every storage contract module runs on: the local directory, and S3
on moto and on SeaweedFS, each with a fresh, empty bucket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from media_worker.storage.filesystem import FilesystemStorage
from media_worker.storage.port import ObjectStorage
from media_worker.storage.s3 import S3Storage
from tests.conftest import S3Server, s3_server

S3_SERVERS = [pytest.param(name, marks=pytest.mark.services) for name in ("moto", "seaweedfs")]


def s3_storage_on(server: S3Server, **options: object) -> S3Storage:
    """S3Storage signed with the keys `server` accepts."""
    return S3Storage(endpoint_url=server.endpoint, access_key_id=server.access_key,
                     secret_access_key=server.secret_key, **options)  # type: ignore[arg-type]


@pytest.fixture
def bucket(unique_name: str) -> str:
    return unique_name


@pytest.fixture
def fs_storage(tmp_path: Path, bucket: str) -> Iterator[FilesystemStorage]:
    storage = FilesystemStorage(tmp_path / "storage")
    storage.ensure_bucket(bucket)
    yield storage
    storage.close()


def _s3_storage(request: pytest.FixtureRequest, server_name: str, bucket: str) -> S3Storage:
    storage = s3_storage_on(s3_server(request, server_name))
    request.addfinalizer(storage.close)
    storage.ensure_bucket(bucket)
    return storage


@pytest.fixture(params=S3_SERVERS)
def s3_storage(request: pytest.FixtureRequest, bucket: str) -> S3Storage:
    """S3Storage on each S3 server, with a fresh, empty bucket."""
    return _s3_storage(request, request.param, bucket)


@pytest.fixture(params=["filesystem", *S3_SERVERS])
def storage(request: pytest.FixtureRequest, bucket: str) -> ObjectStorage:
    """Each adapter (S3 on each server) with a fresh, empty bucket named by `bucket`."""
    if request.param == "filesystem":
        return request.getfixturevalue("fs_storage")
    return _s3_storage(request, request.param, bucket)
