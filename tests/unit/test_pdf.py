"""PDF documents: the first page, drawn on white at the scale the largest size needs, as shown
(`/Rotate`, crop box); encrypted and broken files fail readably, bombs end within the limits."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import pyvips

from media_worker.config import ThumbnailFormat
from media_worker.engines.factories import local_engine
from media_worker.engines.isolation import IsolatedEngine
from media_worker.engines.local import LocalEngine
from media_worker.engines.pdf import render_scale
from media_worker.engines.port import OutputSpec, RenderResult, SourceMedia
from media_worker.engines.sniff import MediaKind, sniff_bytes
from media_worker.errors import (
    CorruptMediaError,
    JobTimeoutError,
    PermanentError,
    UnsupportedMediaError,
)
from media_worker.types import ThumbnailSize
from tests.unit.pdf_fixtures import (
    nested_arrays,
    nested_forms,
    nested_page_tree,
    page,
    pages,
)

SMALL = ThumbnailSize.parse_list("small:150x150")
LARGE = ThumbnailSize.parse_list("large:1280x1280")
RED, WHITE = [255, 0, 0], [255, 255, 255]


@pytest.fixture(scope="module")
def engine() -> LocalEngine:
    return LocalEngine(max_pixels=100_000_000, max_video_seconds=3600)


def render(engine: LocalEngine, path: Path, sizes: list[ThumbnailSize] = SMALL
           ) -> RenderResult:
    return engine.render(SourceMedia(path, "media", path.name), sizes,
                         OutputSpec(ThumbnailFormat.PNG))


def written(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "doc.pdf"
    path.write_bytes(data)
    return path


def thumbnail(result: RenderResult) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(result.thumbnails[0].data, "")


def colour_at(image: pyvips.Image, x: float, y: float) -> list[int]:
    """The pixel at fractions (x, y) of the picture."""
    return [round(v) for v in image(int(x * (image.width - 1)), int(y * (image.height - 1)))]


# --- sniffing -------------------------------------------------------------------------------
def test_a_pdf_is_sniffed_as_a_document() -> None:
    media = sniff_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3")
    assert (media.kind, media.format, media.mime_type) == (
        MediaKind.DOCUMENT, "pdf", "application/pdf")


def test_a_pdf_after_a_little_leading_junk_is_still_a_pdf() -> None:
    assert sniff_bytes(b"\r\n" * 300 + b"%PDF-1.4\n").format == "pdf"


def test_a_pdf_marker_past_the_first_kilobyte_is_not_a_pdf() -> None:
    with pytest.raises(UnsupportedMediaError):
        sniff_bytes(b"x" * 2000 + b"%PDF-1.4\n")


# --- the first page, as shown ---------------------------------------------------------------
def test_the_first_page_is_drawn_on_white(engine: LocalEngine, tmp_path: Path) -> None:
    second = (b"/MediaBox [0 0 100 400]", b"0 0 1 rg 0 0 100 400 re f")
    result = render(engine, written(tmp_path, pages(page(200, 100), second)))
    image = thumbnail(result)
    assert (image.width, image.height) == (150, 75)
    assert colour_at(image, 0.1, 0.5) == RED
    assert colour_at(image, 0.9, 0.5) == WHITE


def test_a_pdf_is_described_by_its_first_page_and_page_count(
        engine: LocalEngine, tmp_path: Path) -> None:
    metadata = render(engine, written(tmp_path, pages(page(144, 72), page(72, 72),
                                                      page(72, 72)))).metadata
    assert {key: metadata[key] for key in ("kind", "format", "mimeType", "width", "height",
                                           "pages")} == {
        "kind": "document", "format": "pdf", "mimeType": "application/pdf",
        "width": 300, "height": 150, "pages": 3}  # 2x1 inches at 150 dpi


def test_rotate_turns_the_page_as_readers_show_it(engine: LocalEngine, tmp_path: Path) -> None:
    result = render(engine, written(tmp_path, pages(page(200, 100, b"/Rotate 90"))))
    image = thumbnail(result)
    assert (image.width, image.height) == (75, 150)
    assert colour_at(image, 0.5, 0.1) == RED  # the page's left half, turned clockwise
    assert colour_at(image, 0.5, 0.9) == WHITE


def test_only_the_crop_box_is_drawn(engine: LocalEngine, tmp_path: Path) -> None:
    blue_outside = b"0 0 1 rg 0 0 400 400 re f 1 0 0 rg 0 0 200 100 re f"
    document = pages((b"/MediaBox [0 0 400 400] /CropBox [0 0 200 100]", blue_outside))
    image = thumbnail(render(engine, written(tmp_path, document)))
    assert (image.width, image.height) == (150, 75)
    assert colour_at(image, 0.02, 0.02) == RED
    assert colour_at(image, 0.98, 0.98) == RED


def test_a_page_is_drawn_at_the_scale_the_largest_size_needs_not_at_72_dpi(
        engine: LocalEngine, tmp_path: Path) -> None:
    result = render(engine, written(tmp_path, pages(page(595, 842))), LARGE)
    assert (result.thumbnails[0].width, result.thumbnails[0].height) == (905, 1280)


def test_the_scale_is_computed_from_the_page_and_the_largest_box() -> None:
    box = ThumbnailSize(name="large", width=1280, height=1280)
    assert render_scale(595, 842, box, None) == pytest.approx(1280 / 842, rel=1e-3)


def test_a_small_page_is_not_enlarged_past_its_own_pixels(
        engine: LocalEngine, tmp_path: Path) -> None:
    result = render(engine, written(tmp_path, pages(page(72, 36))), LARGE)
    assert (result.thumbnails[0].width, result.thumbnails[0].height) == (150, 75)


# --- refusals -------------------------------------------------------------------------------
def test_a_password_protected_pdf_fails_saying_so(engine: LocalEngine, corpus: Path) -> None:
    path = corpus / "documents" / "malformed" / "libreoffice-writer-password.pdf"
    with pytest.raises(UnsupportedMediaError, match="password-protected PDF"):
        render(engine, path)


def test_a_pdf_with_only_an_owner_password_renders(engine: LocalEngine, corpus: Path) -> None:
    result = render(engine, corpus / "documents" / "pdf" / "encrypted-with-images.pdf")
    assert result.metadata["pages"] == 2


@pytest.mark.parametrize("name", ["issue-146.pdf", "pikepdf-fuzz-378014596.pdf"])
def test_a_damaged_pdf_fails_with_a_readable_error(engine: LocalEngine, corpus: Path,
                                                   name: str) -> None:
    with pytest.raises(CorruptMediaError, match=r"^cannot decode PDF: "):
        render(engine, corpus / "documents" / "malformed" / name)


def test_a_pdf_of_garbage_fails_with_a_readable_error(engine: LocalEngine,
                                                      tmp_path: Path) -> None:
    with pytest.raises(CorruptMediaError, match="not a valid PDF"):
        render(engine, written(tmp_path, b"%PDF-1.4\n" + bytes(range(256)) * 4))


def test_a_pdf_without_pages_fails_with_a_readable_error(engine: LocalEngine, corpus: Path,
                                                        tmp_path: Path) -> None:
    """PDFium refuses it without setting its last error: the previous job's must not show."""
    with pytest.raises(UnsupportedMediaError, match="password-protected"):
        render(engine, corpus / "documents" / "malformed" / "libreoffice-writer-password.pdf")
    with pytest.raises(CorruptMediaError, match=r"not a valid PDF \(PDFium gives no reason"):
        render(engine, written(tmp_path, pages()))


# --- bombs ----------------------------------------------------------------------------------
def test_a_huge_page_is_drawn_within_max_pixels(tmp_path: Path) -> None:
    huge = ThumbnailSize.parse_list("huge:16000x16000")
    engine = LocalEngine(max_pixels=1_000_000, max_video_seconds=60)
    result = render(engine, written(tmp_path, pages(page(14400, 14400))), huge)  # 200 in
    thumb = result.thumbnails[0]
    assert (result.metadata["width"], result.metadata["height"]) == (30000, 30000)
    assert thumb.width * thumb.height <= 1_000_000


@pytest.fixture(scope="module")
def decoder() -> Iterator[IsolatedEngine]:
    factory = partial(local_engine, max_pixels=100_000_000, max_video_seconds=60)
    isolated = IsolatedEngine(factory, workers=1, timeout_seconds=3)
    yield isolated
    isolated.close()


def outcome(decoder: IsolatedEngine, path: Path) -> str:
    """`thumbnail`, or the row's error."""
    try:
        decoder.render(SourceMedia(path, "media", path.name), SMALL, OutputSpec())
    except PermanentError as exc:
        return str(exc)
    return "thumbnail"


@pytest.mark.parametrize(("document", "expected"), [
    pytest.param(nested_arrays(100_000), "thumbnail", id="arrays-100000-deep"),
    pytest.param(nested_forms(2_000, draws=1), "thumbnail", id="forms-2000-deep"),
    pytest.param(nested_page_tree(5_000),
                 "cannot decode PDF: its first page cannot be loaded (a damaged document)",
                 id="page-tree-5000-deep"),
])
def test_deep_nesting_ends_in_the_decoder_with_a_thumbnail_or_a_readable_error(
        decoder: IsolatedEngine, tmp_path: Path, document: bytes, expected: str) -> None:
    """PDFium bounds these itself, well inside the job timeout."""
    assert outcome(decoder, written(tmp_path, document)) == expected


def test_forms_drawing_forms_exponentially_are_stopped_at_the_job_timeout(
        decoder: IsolatedEngine, tmp_path: Path) -> None:
    """2^40 drawings: PDFium has no bound on them, the decoder's timeout is the limit."""
    source = SourceMedia(written(tmp_path, nested_forms(40, draws=2)), "media", "doc.pdf")
    with pytest.raises(JobTimeoutError, match="JOB_TIMEOUT_SECONDS"):
        decoder.render(source, SMALL, OutputSpec())
