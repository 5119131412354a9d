"""PDFs read in place (issue 15): the local engine draws a stored PDF's first page through a
reader of its own storage, fetching the document's structure and that page's objects, with
the same thumbnails as from a local copy; the reader's refusals are the job's error, never a
page drawn without the parts that could not be read."""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

import pytest

from media_worker.engines.factories import local_engine
from media_worker.engines.isolation import IsolatedEngine
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, RenderResult, SourceMedia
from media_worker.errors import (
    CorruptMediaError,
    OriginalChangedError,
    ReadLimitExceededError,
    TruncatedOriginalError,
    UnsupportedMediaError,
)
from media_worker.storage.filesystem import FilesystemStorage
from media_worker.storage.port import ObjectStorage
from media_worker.types import ThumbnailSize
from tests.big_pdfs import make_big_pdfs, qpdf_available
from tests.unit.reading_storages import S3LikeStorage, in_place, stored

BUCKET = "media"
SIZES = [ThumbnailSize(name="small", width=160, height=160),
         ThumbnailSize(name="large", width=640, height=640)]
MIB = 1024 * 1024
LIMITS = {"max_pixels": 100_000_000, "max_video_seconds": 3600}
CORPUS_PDFS = ["encrypted-with-images.pdf", "graph.pdf", "habibi-rotated.pdf", "i3.pdf",
               "minimal-document.pdf", "pdflatex-4-pages.pdf"]
LAYOUTS = ["catalogue.pdf",
           *[pytest.param(name, marks=pytest.mark.skipif(not qpdf_available(),
                                                         reason="needs Debian's qpdf"))
             for name in ("linearized.pdf", "object-streams.pdf")]]


@pytest.fixture(scope="module")
def big_pdfs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 40-page scanned catalogue (about 20 MB), as written, linearized and with object
    streams."""
    return make_big_pdfs(tmp_path_factory.mktemp("big-pdfs"), pages=40)




def rendered(result: RenderResult) -> dict[str, bytes]:
    return {thumb.size.name: thumb.data for thumb in result.thumbnails}


def same_as_a_local_copy(storage: ObjectStorage, document: Path) -> RenderResult:
    """The in-place render of `document`, checked against the render of its local copy:
    the same thumbnails byte for byte, the same metadata but for `bytesRead`."""
    engine = LocalEngine(**LIMITS, storage=storage)
    from_copy = engine.render(SourceMedia(document, BUCKET, document.name), SIZES, OutputSpec())
    from_store = engine.render(in_place(document.name), SIZES, OutputSpec())
    assert rendered(from_store) == rendered(from_copy)
    assert {k: v for k, v in from_store.metadata.items() if k != "bytesRead"} == (
        from_copy.metadata)
    return from_store


@pytest.mark.parametrize("name", CORPUS_PDFS)
def test_a_corpus_pdf_read_in_place_renders_what_its_local_copy_renders(
        corpus: Path, tmp_path: Path, name: str) -> None:
    document = corpus / "documents" / "pdf" / name
    result = same_as_a_local_copy(S3LikeStorage(stored(tmp_path, document)), document)
    # A small document is read whole, once: the read-ahead windows and their cache.
    assert result.metadata["bytesRead"] == document.stat().st_size


@pytest.mark.parametrize("storage_kind", ["filesystem", "s3-like"])
@pytest.mark.parametrize("name", LAYOUTS)
def test_a_big_pdf_read_in_place_renders_its_local_copy_and_fetches_a_small_part(
        big_pdfs: dict[str, Path], tmp_path: Path, name: str, storage_kind: str) -> None:
    root = stored(tmp_path, big_pdfs[name])
    storage = FilesystemStorage(root) if storage_kind == "filesystem" else S3LikeStorage(root)
    result = same_as_a_local_copy(storage, big_pdfs[name])
    assert result.metadata["pages"] == 40
    size = big_pdfs[name].stat().st_size
    # The first page's scan (about 500 KB) and the structure around it, of about 20 MB.
    assert 0 < result.metadata["bytesRead"] <= 0.05 * size


def test_a_pdf_whose_first_page_needs_more_than_max_read_bytes_fails_naming_the_limit(
        big_pdfs: dict[str, Path], tmp_path: Path) -> None:
    """Past the limit, the first page's scan cannot be read: the job fails rather than
    render a page PDFium drew without it."""
    engine = LocalEngine(**LIMITS, storage=S3LikeStorage(stored(tmp_path,
                                                                big_pdfs["catalogue.pdf"])))
    with pytest.raises(ReadLimitExceededError, match="MAX_READ_BYTES"):
        engine.render(in_place("catalogue.pdf", max_read_bytes=300_000), SIZES, OutputSpec())


def test_a_pdf_whose_structure_needs_more_than_max_read_bytes_fails_naming_the_limit(
        big_pdfs: dict[str, Path], tmp_path: Path) -> None:
    engine = LocalEngine(**LIMITS, storage=S3LikeStorage(stored(tmp_path,
                                                                big_pdfs["catalogue.pdf"])))
    with pytest.raises(ReadLimitExceededError, match="MAX_READ_BYTES"):
        engine.render(in_place("catalogue.pdf", max_read_bytes=20_000), SIZES, OutputSpec())


def test_a_pdf_whose_cross_references_are_rebuilt_is_read_whole_within_max_read_bytes(
        big_pdfs: dict[str, Path], tmp_path: Path) -> None:
    """A wrong `startxref` makes PDFium scan the whole file for objects."""
    data = big_pdfs["catalogue.pdf"].read_bytes()
    broken = tmp_path / "rebuilt.pdf"
    broken.write_bytes(re.sub(rb"startxref\n\d+", b"startxref\n12345", data))
    engine = LocalEngine(**LIMITS, storage=S3LikeStorage(stored(tmp_path / "store", broken)))
    result = engine.render(in_place("rebuilt.pdf"), SIZES, OutputSpec())
    assert result.metadata["pages"] == 40
    assert result.metadata["bytesRead"] >= len(data)
    with pytest.raises(ReadLimitExceededError, match="MAX_READ_BYTES"):
        engine.render(in_place("rebuilt.pdf", max_read_bytes=len(data) // 2), SIZES,
                      OutputSpec())


def test_a_pdf_renders_in_place_after_one_was_refused_in_the_same_process(
        big_pdfs: dict[str, Path], tmp_path: Path) -> None:
    engine = LocalEngine(**LIMITS, storage=S3LikeStorage(stored(tmp_path,
                                                                big_pdfs["catalogue.pdf"])))
    with pytest.raises(ReadLimitExceededError):
        engine.render(in_place("catalogue.pdf", max_read_bytes=300_000), SIZES, OutputSpec())
    assert len(engine.render(in_place("catalogue.pdf"), SIZES, OutputSpec()).thumbnails) == 2


@pytest.mark.parametrize("changes_after", [1, 3])  # while PDFium opens it, loads the page
def test_a_pdf_that_changes_while_it_is_read_fails_as_transient(
        big_pdfs: dict[str, Path], tmp_path: Path, changes_after: int) -> None:
    storage = S3LikeStorage(stored(tmp_path, big_pdfs["catalogue.pdf"]),
                            changes_after=changes_after)
    engine = LocalEngine(**LIMITS, storage=storage)
    with pytest.raises(OriginalChangedError, match="changed while it was read"):
        engine.render(in_place("catalogue.pdf"), SIZES, OutputSpec())


def test_a_truncated_pdf_fails_permanently_with_a_reason(
        big_pdfs: dict[str, Path], tmp_path: Path) -> None:
    storage = S3LikeStorage(stored(tmp_path, big_pdfs["catalogue.pdf"]), truncated_by=1000)
    engine = LocalEngine(**LIMITS, storage=storage)
    with pytest.raises(TruncatedOriginalError, match=r"catalogue\.pdf.*ended early"):
        engine.render(in_place("catalogue.pdf"), SIZES, OutputSpec())


@pytest.mark.parametrize(("name", "error", "words"), [
    ("libreoffice-writer-password.pdf", UnsupportedMediaError, "password-protected PDF"),
    ("pikepdf-fuzz-378014596.pdf", CorruptMediaError, "cannot decode PDF"),
    ("issue-146.pdf", CorruptMediaError, "cannot decode PDF"),
])
def test_a_broken_pdf_read_in_place_fails_as_its_local_copy_does(
        corpus: Path, tmp_path: Path, name: str, error: type[Exception], words: str) -> None:
    document = corpus / "documents" / "malformed" / name
    engine = LocalEngine(**LIMITS, storage=S3LikeStorage(stored(tmp_path, document)))
    with pytest.raises(error, match=words) as from_copy:
        engine.render(SourceMedia(document, BUCKET, name), SIZES, OutputSpec())
    with pytest.raises(error, match=words) as from_store:
        engine.render(in_place(name), SIZES, OutputSpec())
    assert str(from_store.value) == str(from_copy.value)


def test_a_decoder_process_reads_a_pdf_in_place_through_a_storage_of_its_own(
        big_pdfs: dict[str, Path], tmp_path: Path) -> None:
    root = stored(tmp_path, big_pdfs["catalogue.pdf"])
    factory = partial(local_engine, **LIMITS, storage=partial(S3LikeStorage, root))
    engine = IsolatedEngine(factory, workers=1, timeout_seconds=60)
    try:
        result = engine.render(in_place("catalogue.pdf"), SIZES, OutputSpec())
        with pytest.raises(ReadLimitExceededError, match="MAX_READ_BYTES"):
            engine.render(in_place("catalogue.pdf", max_read_bytes=300_000), SIZES,
                          OutputSpec())
    finally:
        engine.close()
    assert [thumb.size.name for thumb in result.thumbnails] == ["small", "large"]
    assert result.metadata["bytesRead"] < 0.05 * big_pdfs["catalogue.pdf"].stat().st_size
