"""Large PDFs for the reading-in-place tests: a "scanned catalogue" of full-page JPEG scans.

Each page shows one 1275x1650 JPEG (a Letter page at 150 dpi) of noise, so it does not
compress: about 1 MB a page. The file is written as many producers write it (the pages and
their scans first, the page tree, the catalogue and the cross-reference table at the end);
qpdf (Debian's `qpdf`) makes a linearized copy (first page's objects and hint tables at the
start) and one with object streams and a cross-reference stream (PDF 1.5). They are made in a
temporary directory, once per module or session, never kept in the repository.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pyvips

SCAN_WIDTH, SCAN_HEIGHT = 1275, 1650
PAGE_POINTS = (612, 792)  # US Letter
SCANS = 4  # distinct scans, repeated: each page still has an image object of its own


def qpdf_available() -> bool:
    return shutil.which("qpdf") is not None


def scan(seed: int) -> bytes:
    """A full-page "scan" as a JPEG: coloured noise, about 1 MB."""
    noise = pyvips.Image.gaussnoise(SCAN_WIDTH, SCAN_HEIGHT, sigma=25, mean=128, seed=seed)
    grey = noise.cast("uchar")
    colour = grey.bandjoin([grey.rot180(), grey.flip("horizontal")])
    # Page 1 has a mark to find: a black band across its top, on every scan.
    marked = colour.draw_rect([0, 0, 0], 0, 0, SCAN_WIDTH, SCAN_HEIGHT // 10, fill=True)
    return marked.copy(interpretation="srgb").jpegsave_buffer(Q=70)


def write_catalogue(path: Path, pages: int) -> Path:
    """`pages` scanned pages, written pages first, page tree and catalogue last."""
    scans = [scan(seed) for seed in range(SCANS)]
    offsets: dict[int, int] = {}
    kids: list[int] = []
    with path.open("wb") as out:
        out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
        number = 2  # 1: the catalogue, 2: the page tree, both written last
        for index in range(pages):
            image, content, page = number + 1, number + 2, number + 3
            number += 3
            data = scans[index % SCANS]
            offsets[image] = out.tell()
            out.write(b"%d 0 obj\n<< /Type /XObject /Subtype /Image /Width %d /Height %d "
                      b"/ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /DCTDecode "
                      b"/Length %d >>\nstream\n" % (image, SCAN_WIDTH, SCAN_HEIGHT, len(data)))
            out.write(data + b"\nendstream\nendobj\n")
            draw = b"q %d 0 0 %d 0 0 cm /Scan Do Q" % PAGE_POINTS
            offsets[content] = out.tell()
            out.write(b"%d 0 obj\n<< /Length %d >>\nstream\n%s\nendstream\nendobj\n"
                      % (content, len(draw), draw))
            offsets[page] = out.tell()
            out.write(b"%d 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] "
                      b"/Contents %d 0 R /Resources << /XObject << /Scan %d 0 R >> >> >>\n"
                      b"endobj\n" % (page, *PAGE_POINTS, content, image))
            kids.append(page)
        offsets[2] = out.tell()
        out.write(b"2 0 obj\n<< /Type /Pages /Kids [%s] /Count %d >>\nendobj\n"
                  % (b" ".join(b"%d 0 R" % kid for kid in kids), pages))
        offsets[1] = out.tell()
        out.write(b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n")
        xref = out.tell()
        out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (number + 1))
        out.write(b"".join(b"%010d 00000 n \n" % offsets[n] for n in range(1, number + 1)))
        out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
                  % (number + 1, xref))
    return path


def make_big_pdfs(directory: Path, pages: int) -> dict[str, Path]:
    """`catalogue.pdf` of `pages` pages and, with qpdf, `linearized.pdf` and
    `object-streams.pdf`, the same document rewritten."""
    plain = write_catalogue(directory / "catalogue.pdf", pages)
    files = {"catalogue.pdf": plain}
    if qpdf_available():
        for name, options in (("linearized.pdf", ["--linearize"]),
                              ("object-streams.pdf", ["--object-streams=generate"])):
            subprocess.run(["qpdf", *options, str(plain), str(directory / name)], check=True,
                           capture_output=True)
            files[name] = directory / name
    return files
