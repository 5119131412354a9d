"""PDF documents: the first page, drawn by PDFium (pypdfium2) at the scale the job needs.

A page is a drawing, not pixels, so it is given a pixel size of its own: the page as shown
(after `/Rotate`, inside its crop box, which PDFium applies) at PAGE_DPI. That is the size the
row records, crops are measured in and thumbnails never exceed, as an original's pixels are for
a photo. The page is then drawn once, straight at the scale the largest box needs (not at 72 dpi
and enlarged, nor at print resolution and reduced), on white, and every size is cut from that.

Read in place: a stored PDF is not downloaded. PDFium opens it through its custom file access
(pypdfium2's file-object input) over an ObjectReader, and asks for the byte ranges it parses:
the trailer and cross-reference table (or stream), the catalogue and page tree, then the first
page's objects (its content stream, fonts and images). A 100 MB scanned catalogue costs its
first page's scan and the structure around it, not its size. A document PDFium must rebuild (a
broken cross-reference table) is read whole, bounded by MAX_READ_BYTES. PDFium takes a read
that failed for a hole in the file and draws on without it (a blank where an image was), so the
reader's refusal — more than MAX_READ_BYTES, a changed or truncated original — is kept and
raised as the job's error once PDFium is done (`failures_first`, as for videos).

Bombs: the drawing is bounded by the largest box, and a page of absurd size or shape (a
200-inch strip under a `cover` size) by MAX_PIXELS, which caps the drawing's pixels rather than
refusing the page. What PDFium parses (object nesting, broken cross-references it rebuilds) is
bounded by PDFium itself and by the decoder process's timeout.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, BinaryIO

import pyvips

from media_worker.engines.decode_budget import MEGABYTE, DecodeBudget, admitted
from media_worker.engines.encode import Framing, largest_box, render_from_image, scale_for
from media_worker.engines.port import OutputSpec, RenderResult
from media_worker.engines.sniff import MediaType
from media_worker.engines.video_source import FailureKeepingReader, failures_first
from media_worker.errors import CorruptMediaError, MediaWorkerError, UnsupportedMediaError
from media_worker.renditions import Focus
from media_worker.types import ThumbnailSize

# A page's pixel size: pdftoppm's default resolution, enough for the usual boxes on A4 or
# Letter (1754 px on the long side) without taking a page for a poster.
PAGE_DPI = 150
POINTS_PER_INCH = 72  # PDF user space units
_RGB_BYTES = 3 * 2  # PDFium's RGB bitmap and its copy for libvips

PdfSource = Path | BinaryIO  # a local copy, or a seekable reader of the stored original


class _QuietReader(FailureKeepingReader):
    """The reader as PDFium's file access calls it, from C: a refused read is kept and reads
    as nothing (PDFium's failed read), rather than raised into ctypes, which would only print
    it."""

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        try:
            return super().readinto(buffer)
        except MediaWorkerError:
            return 0


def render_pdf(
    source: PdfSource, media_type: MediaType, sizes: list[ThumbnailSize], output: OutputSpec,
    *, max_pixels: int, budget: DecodeBudget | None = None, focus: Focus | None = None,
) -> RenderResult:
    """Thumbnails of the first page, and the document's page count."""
    import pypdfium2 as pdfium

    opened = str(source) if isinstance(source, Path) else _QuietReader(source)
    with failures_first(opened):
        document = _open(opened, pdfium)
        try:
            pages = len(document)
            page = _first_page(document, pdfium)
            width_pt, height_pt = page.get_size()  # as shown: /Rotate and the crop box applied
            width, height = page_pixels(width_pt, height_pt)
            box = largest_box(width, height, sizes)
            scale = render_scale(width_pt, height_pt, box, max_pixels)
            drawn = math.ceil(width_pt * scale) * math.ceil(height_pt * scale)
            with admitted(budget, drawn * _RGB_BYTES // MEGABYTE):
                image = _draw(page, scale)
            fit = scale_for(width, height, box)
            image = _trimmed(image, round(width * fit), round(height * fit))
        finally:  # closes the page too
            document.close()
    thumbnails = render_from_image(image, sizes, output, Framing(width, height, focus))
    metadata = {"kind": "document", "format": media_type.format,
                "mimeType": media_type.mime_type, "width": width, "height": height,
                "pages": pages, "hasAlpha": False}
    return RenderResult(thumbnails, metadata)


def page_pixels(width_pt: float, height_pt: float) -> tuple[int, int]:
    """The page's own pixel size: its size in points at PAGE_DPI."""
    factor = PAGE_DPI / POINTS_PER_INCH
    return max(1, round(width_pt * factor)), max(1, round(height_pt * factor))


def render_scale(width_pt: float, height_pt: float, box: ThumbnailSize,
                 max_pixels: int | None) -> float:
    """Pixels per point to draw the page at: what fits the page's own pixels in `box`, no
    more than MAX_PIXELS of drawing, and never under a pixel a side."""
    width, height = page_pixels(width_pt, height_pt)
    scale = scale_for(width, height, box) * PAGE_DPI / POINTS_PER_INCH
    if max_pixels is not None and width_pt * height_pt * scale * scale > max_pixels:
        scale = math.sqrt(max_pixels / (width_pt * height_pt))
    return max(scale, 1 / min(width_pt, height_pt))


def _open(opened: str | _QuietReader, pdfium: Any) -> Any:
    """The document (from a path, or read in place), or the reason it will not open in the
    row's words.

    PDFium's last error is process-wide and some refusals (a document without pages) set
    none, leaving the previous job's: a stale "incorrect password" would misname a broken
    file. So it is set to "file access error" first, by opening no file at all (the upload is
    there and readable): still that after a refusal, PDFium gave no reason."""
    pdfium.raw.FPDF_LoadDocument(b"\x00", None)
    try:
        return pdfium.PdfDocument(opened)
    except pdfium.PdfiumError as exc:
        if exc.err_code == pdfium.raw.FPDF_ERR_PASSWORD:
            raise UnsupportedMediaError(
                "password-protected PDF: it cannot be opened without its password") from None
        if exc.err_code == pdfium.raw.FPDF_ERR_SECURITY:
            raise UnsupportedMediaError(
                "encrypted PDF: its security handler is not supported") from None
        raise CorruptMediaError(f"cannot decode PDF: {_pdfium_words(exc, pdfium)}") from None


def _first_page(document: Any, pdfium: Any) -> Any:
    try:
        return document[0]
    except pdfium.PdfiumError:
        raise CorruptMediaError(
            "cannot decode PDF: its first page cannot be loaded (a damaged document)") from None


def _draw(page: Any, scale: float) -> pyvips.Image:
    """The page drawn on white at `scale` pixels per point, as 8-bit sRGB."""
    bitmap = page.render(scale=scale, fill_color=(255, 255, 255, 255), rev_byteorder=True,
                         may_draw_forms=False)
    try:  # pypdfium2's own bitmaps are packed: rows of exactly width x 3 bytes
        pixels, width, height = bytes(bitmap.buffer), bitmap.width, bitmap.height
    finally:
        bitmap.close()
    image = pyvips.Image.new_from_memory(pixels, width, height, 3, "uchar")
    return image.copy(interpretation="srgb")


def _trimmed(image: pyvips.Image, width: int, height: int) -> pyvips.Image:
    """PDFium's bitmap is the page's size rounded up: the extra row or column past the fitted
    size is cut, so no thumbnail is a pixel wider than the page's own pixels allow."""
    if image.width <= width and image.height <= height:
        return image
    return image.extract_area(0, 0, min(image.width, width), min(image.height, height))


def _pdfium_words(exc: Any, pdfium: Any) -> str:
    """pypdfium2's `Failed to load document (PDFium: Data format error).` as `not a valid
    PDF (Data format error)`; see `_open` for a refusal without a reason."""
    text = str(exc)
    if "(PDFium: " not in text:
        return text
    reason = text.split("(PDFium: ", 1)[1].rstrip(".").rstrip(")")
    no_reason = exc.err_code == pdfium.raw.FPDF_ERR_FILE
    return f"not a valid PDF ({'PDFium gives no reason' if no_reason else reason})"
