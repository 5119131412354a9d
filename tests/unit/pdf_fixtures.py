"""PDFs written by hand for the PDF tests: pages of given boxes, rotation and drawing, and the
hostile structures a fuzzer or an attacker builds (deep nesting, forms that draw forms)."""

from __future__ import annotations

RED_LEFT_HALF = b"1 0 0 rg 0 0 %d %d re f"  # width/2, height: a red left half on white


def document(objects: list[bytes]) -> bytes:
    """A PDF of `objects` (object 1 the catalog) with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


def stream(data: bytes, entries: bytes = b"") -> bytes:
    return b"<< /Length %d %s>>\nstream\n" % (len(data), entries) + data + b"\nendstream"


def pages(*specs: tuple[bytes, bytes]) -> bytes:
    """A document of pages, each `(page dictionary entries, content stream)`."""
    count = len(specs)
    kids = b" ".join(b"%d 0 R" % (3 + 2 * index) for index in range(count))
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, count)]
    for index, (entries, content) in enumerate(specs):
        objects.append(b"<< /Type /Page /Parent 2 0 R /Contents %d 0 R %s >>"
                       % (4 + 2 * index, entries))
        objects.append(stream(content))
    return document(objects)


def page(width: int, height: int, extra: bytes = b"") -> tuple[bytes, bytes]:
    """A `width`x`height` pt page whose left half is red."""
    return (b"/MediaBox [0 0 %d %d] %s" % (width, height, extra),
            RED_LEFT_HALF % (width // 2, height))


def nested_forms(depth: int, *, draws: int) -> bytes:
    """A page drawing a form that draws the next `draws` times, `depth` forms deep: a chain
    PDFium cuts at its nesting limit (draws=1), or 2^depth drawings (draws=2)."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] /Contents 4 0 R "
               b"/Resources << /XObject << /X 5 0 R >> >> >>",
               stream(b"1 0 0 rg 0 0 100 100 re f /X Do")]
    for level in range(depth):
        last = level == depth - 1
        resources = b"" if last else b"/Resources << /XObject << /X %d 0 R >> >> " % (6 + level)
        body = b"0 0 1 rg 0 0 10 10 re f" if last else b" ".join([b"q /X Do Q"] * draws)
        objects.append(stream(body, b"/Type /XObject /Subtype /Form /BBox [0 0 200 100] "
                              + resources))
    return document(objects)


def nested_arrays(depth: int) -> bytes:
    """A one-page PDF whose page dictionary holds arrays `depth` deep."""
    width, height = 200, 100
    deep = b"[" * depth + b"]" * depth
    return pages((b"/MediaBox [0 0 %d %d] /Deep %s" % (width, height, deep),
                  RED_LEFT_HALF % (width // 2, height)))


def nested_page_tree(depth: int) -> bytes:
    """A page `depth` page-tree nodes deep."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    objects += [b"<< /Type /Pages /Kids [%d 0 R] /Count 1 >>" % (3 + level)
                for level in range(depth)]
    objects.append(b"<< /Type /Page /MediaBox [0 0 200 100] >>")
    return document(objects)
