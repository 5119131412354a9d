"""PDFs read in place on every storage adapter's reader (the local directory, S3 on moto and
SeaweedFS): the local engine draws a stored PDF's first page with the thumbnails of a local
copy, fetching a small part of it; a PDF replaced while it is read fails as transient, one
that needs more than MAX_READ_BYTES fails naming it. The PDF is made once per module, in a
temporary directory (tests/big_pdfs.py)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, SourceMedia
from media_worker.errors import OriginalChangedError, ReadLimitExceededError
from media_worker.storage.port import ObjectStorage
from media_worker.storage.reader import ObjectReader
from media_worker.types import ThumbnailSize
from tests.big_pdfs import write_catalogue

KEY = "uploads/catalogue.pdf"
SIZES = [ThumbnailSize(name="small", width=160, height=160),
         ThumbnailSize(name="large", width=640, height=640)]
LIMITS = {"max_pixels": 100_000_000, "max_video_seconds": 3600}


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 scanned pages, about 20 MB (moto loads a whole object for every ranged GET)."""
    return write_catalogue(tmp_path_factory.mktemp("pdfs") / "catalogue.pdf", pages=40)


@pytest.fixture
def stored(storage: ObjectStorage, bucket: str, catalogue: Path) -> Path:
    storage.upload_file(bucket, KEY, catalogue, "application/pdf")
    return catalogue


def test_a_pdf_read_in_place_renders_its_local_copy_and_fetches_its_first_page(
        storage: ObjectStorage, bucket: str, stored: Path) -> None:
    engine = LocalEngine(**LIMITS, storage=storage)
    from_copy = engine.render(SourceMedia(stored, bucket, KEY), SIZES, OutputSpec())
    from_store = engine.render(SourceMedia(None, bucket, KEY), SIZES, OutputSpec())
    assert [t.data for t in from_store.thumbnails] == [t.data for t in from_copy.thumbnails]
    assert {k: v for k, v in from_store.metadata.items() if k != "bytesRead"} == (
        from_copy.metadata)
    # The first page's scan (about 500 KB) and the structure around it, in the adapter's
    # read-ahead windows (1 MiB after a jump by default on S3), of about 20 MB.
    assert 0 < from_store.metadata["bytesRead"] <= 0.1 * stored.stat().st_size


def test_a_pdf_that_needs_more_than_max_read_bytes_fails_naming_the_limit(
        storage: ObjectStorage, bucket: str, stored: Path) -> None:
    engine = LocalEngine(**LIMITS, storage=storage)
    with pytest.raises(ReadLimitExceededError, match="MAX_READ_BYTES"):
        engine.render(SourceMedia(None, bucket, KEY, max_read_bytes=300_000), SIZES,
                      OutputSpec())


class _ReplacingReader(io.RawIOBase):
    """An ObjectReader that has the stored object replaced after its `after`-th read."""

    def __init__(self, inner: ObjectReader, replace: Any, after: int) -> None:
        super().__init__()
        self._inner, self._replace, self._left = inner, replace, after

    name = property(lambda self: self._inner.name)
    bytes_fetched = property(lambda self: self._inner.bytes_fetched)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._inner.seek(offset, whence)

    def tell(self) -> int:
        return self._inner.tell()

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        self._left -= 1
        if self._left == 0:
            self._replace()
        return self._inner.readinto(buffer)

    def close(self) -> None:
        self._inner.close()
        super().close()


class _ReplacedWhileRead:
    """`storage`, whose next reader sees its object replaced by a new version mid-way."""

    def __init__(self, storage: ObjectStorage, catalogue: Path, after: int) -> None:
        self._storage, self._catalogue, self._after = storage, catalogue, after

    def open_reader(self, bucket: str, key: str, *, max_read_bytes: int) -> _ReplacingReader:
        def replace() -> None:
            data = self._catalogue.read_bytes()
            self._storage.upload(bucket, key, data + b"\n% a new version\n", "application/pdf")

        inner = self._storage.open_reader(bucket, key, max_read_bytes=max_read_bytes)
        return _ReplacingReader(inner, replace, self._after)

    def close(self) -> None:
        pass


def test_a_pdf_replaced_while_it_is_read_fails_as_transient(
        storage: ObjectStorage, bucket: str, stored: Path) -> None:
    """Replaced after the engine's sniff of its head, before PDFium fetches its trailer (at
    the end of the file: no read-ahead window holds it yet)."""
    replacing = _ReplacedWhileRead(storage, stored, after=2)
    engine = LocalEngine(**LIMITS, storage=replacing)  # type: ignore[arg-type]
    with pytest.raises(OriginalChangedError, match="changed while it was read"):
        engine.render(SourceMedia(None, bucket, KEY), SIZES, OutputSpec())
