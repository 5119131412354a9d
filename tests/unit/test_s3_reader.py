"""S3RangeSource's answers to stores misbehaving in ways no test server can be made to:
a range answered short, a range refused inside the announced size, a Range header ignored.

botocore's Stubber plays the store; the behaviour on real servers (moto, SeaweedFS) is
specified in tests/contract/test_object_reader_contract.py.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from media_worker.errors import (
    OriginalChangedError,
    StorageUnavailableError,
    TruncatedOriginalError,
)
from media_worker.storage.s3_reader import S3RangeSource

ETAG = '"v1"'
SIZE = 100


@contextmanager
def _nothing_to_translate(*_: object) -> Iterator[None]:
    yield


def _ranged(data: bytes, content_range: str, etag: str = ETAG) -> dict[str, Any]:
    return {"Body": StreamingBody(io.BytesIO(data), len(data)), "ContentLength": len(data),
            "ContentRange": content_range, "ETag": etag}


@pytest.fixture
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="k",
                          aws_secret_access_key="s")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _opened(client: Any, stubber: Stubber) -> S3RangeSource:
    stubber.add_response("get_object", _ranged(b"h" * 10, f"bytes 0-9/{SIZE}"))
    source, head = S3RangeSource.open(client, "media", "uploads/v.mp4", first=10, attempts=1,
                                      translated=_nothing_to_translate)
    assert (source.size, source.etag, head) == (SIZE, ETAG, b"h" * 10)
    return source


def test_a_range_answered_shorter_than_asked_is_a_truncated_original(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    source = _opened(client, stubber)
    stubber.add_response("get_object", _ranged(b"x" * 10, f"bytes 10-19/{SIZE}"))

    with pytest.raises(TruncatedOriginalError, match="announced 100 bytes but answered 10"):
        source.fetch(10, 20)


def test_a_range_refused_inside_the_announced_size_is_a_truncated_original(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    source = _opened(client, stubber)
    stubber.add_client_error("get_object", "InvalidRange", http_status_code=416)
    stubber.add_response("head_object", {"ContentLength": 50, "ETag": ETAG})

    with pytest.raises(TruncatedOriginalError, match="truncated"):
        source.fetch(60, 20)


def test_a_range_refused_because_a_shorter_version_replaced_it_is_a_change(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    source = _opened(client, stubber)
    stubber.add_client_error("get_object", "InvalidRange", http_status_code=416)
    stubber.add_response("head_object", {"ContentLength": 50, "ETag": '"v2"'})

    with pytest.raises(OriginalChangedError, match="changed while it was read"):
        source.fetch(60, 20)


def test_an_answer_of_another_version_is_a_change_even_without_if_match(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    source = _opened(client, stubber)
    stubber.add_response("get_object", _ranged(b"x" * 20, f"bytes 10-29/{SIZE}", etag='"v2"'))

    with pytest.raises(OriginalChangedError, match='ETag "v2"'):
        source.fetch(10, 20)


def test_a_store_that_ignores_range_is_refused_without_reading_the_body(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    whole = {"Body": StreamingBody(io.BytesIO(b"x" * SIZE), SIZE), "ContentLength": SIZE,
             "ETag": ETAG}
    stubber.add_response("get_object", whole)

    with pytest.raises(StorageUnavailableError, match="cannot serve ranged reads"):
        S3RangeSource.open(client, "media", "uploads/v.mp4", first=10, attempts=1,
                           translated=_nothing_to_translate)


def test_every_later_range_asks_for_the_version_first_read(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    source = _opened(client, stubber)
    stubber.add_response("get_object", _ranged(b"x" * 20, f"bytes 10-29/{SIZE}"),
                         expected_params={"Bucket": "media", "Key": "uploads/v.mp4",
                                          "Range": "bytes=10-29", "IfMatch": ETAG})

    assert source.fetch(10, 20) == b"x" * 20
