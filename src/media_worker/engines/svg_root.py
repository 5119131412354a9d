"""Whether bytes are an SVG document: an XML prolog (declaration, comments, processing
instructions, a DOCTYPE with or without an internal subset), then an `<svg>` root element,
with or without a namespace prefix."""

from __future__ import annotations

import re

_SVG_ROOT = re.compile(r"<(?:[A-Za-z_][\w.-]*:)?svg[\s>/]")


def has_svg_root(head: bytes) -> bool:
    """Whether the first element after the prolog in `head` is `<svg>`."""
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    rest = _skip_xml_prolog(text)
    return rest is not None and bool(_SVG_ROOT.match(rest))


def _skip_xml_prolog(text: str) -> str | None:
    """The text after the XML declaration, comments, processing instructions and DOCTYPE;
    None when the prolog does not end inside the sniffed bytes."""
    rest = text.lstrip()
    while rest.startswith("<?") or rest.startswith("<!"):
        if rest.startswith("<!--"):
            end = rest.find("-->")
            skip = end + 3
        elif rest.startswith("<?"):
            end = rest.find("?>")
            skip = end + 2
        else:
            end = _doctype_end(rest)
            skip = end + 1
        if end < 0:
            return None
        rest = rest[skip:].lstrip()
    return rest


def _doctype_end(text: str) -> int:
    """Index of the `>` closing a `<!DOCTYPE …>` (skipping an internal `[ … ]` subset)."""
    bracket = text.find("[")
    close = text.find(">")
    if 0 <= bracket < close:
        subset_end = text.find("]", bracket)
        return -1 if subset_end < 0 else text.find(">", subset_end)
    return close
