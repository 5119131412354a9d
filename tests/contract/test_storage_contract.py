"""The ObjectStorage contract: every adapter, one behaviour per test.

The same tests run against the local directory and against S3 on two real servers, moto and
SeaweedFS (which, unlike moto, checks SigV4 signatures and keys), so anything the worker relies
on behaves alike on one machine and in production. The adapters are tests/contract/conftest.py's;
reading an object in place has its own module, test_object_reader_contract.py.
"""

from __future__ import annotations

import os
import re
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from media_worker.errors import (
    ObjectTooLargeError,
    OriginalNotFoundError,
    PermanentError,
    StorageUnavailableError,
)
from media_worker.storage.filesystem import FilesystemStorage
from media_worker.storage.port import ObjectStorage
from media_worker.storage.s3 import S3Storage
from tests.conftest import S3Server, free_port
from tests.contract.conftest import s3_storage_on
from tests.servers import SEAWEEDFS_VOLUMES, SeaweedServer

PAYLOAD_BYTES = 3 * 1024 * 1024 + 17  # several chunks, not a round number
WEBP = "image/webp"


def _payload(size: int = PAYLOAD_BYTES) -> bytes:
    """Non-repeating bytes, so a misplaced chunk cannot go unnoticed."""
    return os.urandom(size)


# --- every adapter -------------------------------------------------------------------------
def test_upload_then_read_returns_the_bytes(storage: ObjectStorage, bucket: str) -> None:
    storage.upload(bucket, "thumbnails/m1/small.webp", b"RIFF-small", WEBP)

    assert storage.read(bucket, "thumbnails/m1/small.webp") == b"RIFF-small"


def test_upload_overwrites_an_existing_object(storage: ObjectStorage, bucket: str) -> None:
    storage.upload(bucket, "thumbnails/m1/small.webp", b"first attempt, longer", WEBP)
    storage.upload(bucket, "thumbnails/m1/small.webp", b"retry", WEBP)

    assert storage.read(bucket, "thumbnails/m1/small.webp") == b"retry"


def test_download_writes_the_file_and_returns_its_size(
    storage: ObjectStorage, bucket: str, tmp_path: Path
) -> None:
    data = _payload()
    storage.upload(bucket, "uploads/video.mp4", data, "video/mp4")
    destination = tmp_path / "original"

    written = storage.download(bucket, "uploads/video.mp4", destination)

    assert written == len(data)
    assert destination.read_bytes() == data


def test_download_refuses_an_object_over_max_bytes_and_leaves_no_file(
    storage: ObjectStorage, bucket: str, tmp_path: Path
) -> None:
    storage.upload(bucket, "uploads/huge.mp4", b"x" * 2048, "video/mp4")
    destination = tmp_path / "original"

    refused = r"2048 bytes, over the limit of 1024 \(MAX_INPUT_BYTES\)"
    with pytest.raises(ObjectTooLargeError, match=refused):
        storage.download(bucket, "uploads/huge.mp4", destination, max_bytes=1024)

    assert not destination.exists()


def test_download_of_exactly_max_bytes_is_allowed(
    storage: ObjectStorage, bucket: str, tmp_path: Path
) -> None:
    storage.upload(bucket, "uploads/edge.jpg", b"y" * 1024, "image/jpeg")
    assert storage.download(bucket, "uploads/edge.jpg", tmp_path / "o", max_bytes=1024) == 1024


def test_size_is_the_object_length(storage: ObjectStorage, bucket: str) -> None:
    storage.upload(bucket, "uploads/a.jpg", b"x" * 1234, "image/jpeg")

    assert storage.size(bucket, "uploads/a.jpg") == 1234


def test_exists_is_true_for_a_stored_object(storage: ObjectStorage, bucket: str) -> None:
    storage.upload(bucket, "uploads/a.jpg", b"x", "image/jpeg")

    assert storage.exists(bucket, "uploads/a.jpg")


def test_an_existing_bucket_passes_the_bucket_check(storage: ObjectStorage, bucket: str) -> None:
    storage.check_bucket(bucket)


def test_a_missing_bucket_fails_the_bucket_check_naming_it(storage: ObjectStorage) -> None:
    with pytest.raises(OriginalNotFoundError, match="t-no-such-bucket"):
        storage.check_bucket("t-no-such-bucket")


def test_exists_is_false_for_a_missing_object(storage: ObjectStorage, bucket: str) -> None:
    storage.upload(bucket, "uploads/a.jpg", b"x", "image/jpeg")

    assert not storage.exists(bucket, "uploads/b.jpg")
    assert not storage.exists(bucket, "uploads")  # a "folder" is not an object


def test_download_of_a_missing_key_raises_not_found_naming_the_key(
    storage: ObjectStorage, bucket: str, tmp_path: Path
) -> None:
    with pytest.raises(OriginalNotFoundError, match=re.escape("uploads/gone.jpg")):
        storage.download(bucket, "uploads/gone.jpg", tmp_path / "original")


def test_failed_download_leaves_no_destination_file(
    storage: ObjectStorage, bucket: str, tmp_path: Path
) -> None:
    with pytest.raises(OriginalNotFoundError):
        storage.download(bucket, "uploads/gone.jpg", tmp_path / "original")

    assert not (tmp_path / "original").exists()


def test_size_of_a_missing_key_raises_not_found(storage: ObjectStorage, bucket: str) -> None:
    with pytest.raises(OriginalNotFoundError, match=re.escape("uploads/gone.jpg")):
        storage.size(bucket, "uploads/gone.jpg")


def test_read_from_a_missing_bucket_raises_not_found(
    storage: ObjectStorage, unique_name: str
) -> None:
    with pytest.raises(OriginalNotFoundError, match=f"{unique_name}-absent"):
        storage.read(f"{unique_name}-absent", "uploads/a.jpg")


def test_list_keys_returns_keys_under_the_prefix_sorted(
    storage: ObjectStorage, bucket: str
) -> None:
    for key in ["thumbnails/b/small.webp", "uploads/x.jpg", "thumbnails/a/small.webp",
                "thumbnails/a/large.webp", "thumbnailsX"]:
        storage.upload(bucket, key, b"x", WEBP)

    assert storage.list_keys(bucket, "thumbnails/") == [
        "thumbnails/a/large.webp", "thumbnails/a/small.webp", "thumbnails/b/small.webp",
    ]
    assert storage.list_keys(bucket, "thumbnails/a/s") == ["thumbnails/a/small.webp"]
    assert storage.list_keys(bucket, "thumb")[-1] == "thumbnailsX"
    assert len(storage.list_keys(bucket)) == 5


def test_list_keys_returns_every_page(storage: ObjectStorage, bucket: str) -> None:
    """More keys than one ListObjectsV2 page (1000); written from threads sharing one client."""
    keys = [f"many/{index:05d}" for index in range(1010)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda key: storage.upload(bucket, key, b"x", WEBP), keys))

    assert storage.list_keys(bucket, "many/") == keys


def test_delete_removes_the_object(storage: ObjectStorage, bucket: str) -> None:
    storage.upload(bucket, "thumbnails/m1/small.webp", b"x", WEBP)

    storage.delete(bucket, "thumbnails/m1/small.webp")

    assert not storage.exists(bucket, "thumbnails/m1/small.webp")
    assert storage.list_keys(bucket) == []


def test_deleting_a_missing_object_is_fine(storage: ObjectStorage, bucket: str) -> None:
    storage.delete(bucket, "thumbnails/never/written.webp")

    assert not storage.exists(bucket, "thumbnails/never/written.webp")


@pytest.mark.parametrize("key", [
    "uploads/with space/holiday photo.jpg",
    "uploads/ünïcödé/日本語 ファイル.png",
    "deeply/nested/folders/of/an/upload/v.mp4",
    "odd+chars=(1)&[2]~'3'@,;.jpg",
])
def test_unusual_keys_round_trip(storage: ObjectStorage, bucket: str, key: str) -> None:
    storage.upload(bucket, key, key.encode(), "application/octet-stream")

    assert storage.read(bucket, key) == key.encode()
    assert storage.list_keys(bucket) == [key]


def test_ensure_bucket_is_idempotent_and_keeps_objects(
    storage: ObjectStorage, bucket: str
) -> None:
    storage.upload(bucket, "uploads/a.jpg", b"kept", "image/jpeg")

    storage.ensure_bucket(bucket)
    storage.ensure_bucket(bucket)

    assert storage.read(bucket, "uploads/a.jpg") == b"kept"


def test_upload_file_stores_the_file(storage: ObjectStorage, bucket: str, tmp_path: Path) -> None:
    data = _payload()
    source = tmp_path / "clip.mp4"
    source.write_bytes(data)

    storage.upload_file(bucket, "uploads/clip.mp4", source, "video/mp4")

    assert storage.size(bucket, "uploads/clip.mp4") == len(data)
    assert storage.read(bucket, "uploads/clip.mp4") == data


# --- S3 only -------------------------------------------------------------------------------
@pytest.mark.services
def test_presigned_url_fetches_the_bytes(s3_storage: S3Storage, bucket: str) -> None:
    s3_storage.upload(bucket, "uploads/photo 1.jpg", b"jpeg bytes", "image/jpeg")

    url = s3_storage.presigned_get_url(bucket, "uploads/photo 1.jpg", expires_seconds=60)

    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"jpeg bytes"


@pytest.mark.services
def test_upload_stores_the_content_type(s3_storage: S3Storage, bucket: str) -> None:
    s3_storage.upload(bucket, "thumbnails/m1/small.webp", b"RIFF", WEBP)

    url = s3_storage.presigned_get_url(bucket, "thumbnails/m1/small.webp", expires_seconds=60)

    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.headers["Content-Type"] == WEBP


@pytest.mark.services
def test_seaweedfs_rejects_requests_signed_with_wrong_keys(seaweedfs: S3Server) -> None:
    """SeaweedFS really checks SigV4: its S3 contract results prove the adapter signs right."""
    good = seaweedfs.client()
    good.list_buckets()
    wrong_secret = seaweedfs.client(secret_key=seaweedfs.secret_key[::-1] + "x")
    unknown_key = seaweedfs.client(access_key="test", secret_key="test")

    for client, code in ((wrong_secret, "SignatureDoesNotMatch"),
                         (unknown_key, "InvalidAccessKeyId")):
        with pytest.raises(ClientError) as caught:
            client.list_buckets()
        assert caught.value.response["Error"]["Code"] == code
    anonymous = urllib.request.Request(f"{seaweedfs.endpoint}/")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(anonymous, timeout=10)
    assert refused.value.code == 403


@pytest.mark.services
def test_seaweedfs_has_a_volume_for_every_bucket_the_suite_makes(seaweedfs: SeaweedServer) -> None:
    """Every test makes a bucket, and each bucket takes a volume that is never given back:
    with `weed mini`'s own limit (free disk / 1 GiB) a late upload failed with InternalError."""
    assert seaweedfs.free_volumes() >= SEAWEEDFS_VOLUMES // 2


@pytest.mark.services
def test_wrong_storage_keys_raise_unavailable_naming_the_credentials(
    seaweedfs: S3Server, unique_name: str,
) -> None:
    """Rejected keys are the store's (or the operator's) trouble, not the media's: transient,
    with a hint, and never the secret itself."""
    wrong = S3Server(seaweedfs.endpoint, seaweedfs.access_key, "wrong-" + seaweedfs.secret_key)
    storage = s3_storage_on(wrong, max_attempts=1)

    with pytest.raises(StorageUnavailableError, match="credentials") as caught:
        storage.size(unique_name, "uploads/a.jpg")  # a HEAD: the 403 has no body, no code

    assert "403" in str(caught.value)
    with pytest.raises(StorageUnavailableError, match=r"SignatureDoesNotMatch.*credentials"):
        storage.read(unique_name, "uploads/a.jpg")
    assert wrong.secret_key not in str(caught.value)
    storage.close()


def test_unreachable_endpoint_raises_unavailable_without_the_secret() -> None:
    secret = "sEcReT-9f3c1e-do-not-print"
    storage = S3Storage(endpoint_url=f"http://127.0.0.1:{free_port()}",
                        access_key_id="AKIDEXAMPLE", secret_access_key=secret,
                        max_attempts=2, connect_timeout=1)

    with pytest.raises(StorageUnavailableError) as caught:
        storage.size("media", "uploads/a.jpg")

    assert "uploads/a.jpg" in str(caught.value)
    for text in (str(caught.value), repr(caught.value), str(caught.value.__cause__),
                 repr(storage)):
        assert secret not in text
    storage.close()


# --- filesystem only -----------------------------------------------------------------------
@pytest.mark.parametrize(("bucket_name", "key"), [
    ("media", "../escape.jpg"),
    ("media", "uploads/../../escape.jpg"),
    ("media", "/etc/passwd"),
    ("media", "uploads/a\0.jpg"),
    ("..", "escape.jpg"),
    ("media/../..", "escape.jpg"),
])
def test_a_key_escaping_the_bucket_is_refused(
    tmp_path: Path, bucket_name: str, key: str
) -> None:
    root = tmp_path / "storage"
    storage = FilesystemStorage(root)
    storage.ensure_bucket("media")

    with pytest.raises(PermanentError):
        storage.upload(bucket_name, key, b"x", WEBP)
    with pytest.raises(PermanentError):
        storage.read(bucket_name, key)

    assert sorted(p.name for p in tmp_path.rglob("*")) == ["media", "storage"]


def test_a_thumbnail_write_leaves_no_temporary_file(
    fs_storage: FilesystemStorage, bucket: str, tmp_path: Path
) -> None:
    fs_storage.upload(bucket, "thumbnails/m1/small.webp", b"first", WEBP)
    fs_storage.upload(bucket, "thumbnails/m1/small.webp", b"second", WEBP)

    files = [p for p in (tmp_path / "storage").rglob("*") if p.is_file()]
    assert files == [tmp_path / "storage" / bucket / "thumbnails" / "m1" / "small.webp"]


def test_an_interrupted_write_keeps_the_previous_object(
    fs_storage: FilesystemStorage, bucket: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fs_storage.upload(bucket, "thumbnails/m1/small.webp", b"complete thumbnail", WEBP)

    def disk_full(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(StorageUnavailableError, match="No space left"):
        fs_storage.upload(bucket, "thumbnails/m1/small.webp", b"half", WEBP)

    assert fs_storage.read(bucket, "thumbnails/m1/small.webp") == b"complete thumbnail"
    assert fs_storage.list_keys(bucket) == ["thumbnails/m1/small.webp"]
    assert len([p for p in (tmp_path / "storage").rglob("*") if p.is_file()]) == 1
