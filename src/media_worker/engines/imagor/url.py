"""URLs as imagor, imagorvideo and Thumbor parse them, and their HMAC signatures.

    /{signature|unsafe}/[meta/][trim/][AxB:CxD/][fit-in/][-]WxH/[halign/][valign/][smart/]
        [filters:f1(..):f2(..)/]{image}

The three servers agree on this grammar (imagor adopted Thumbor's) and on the signature: an
HMAC of everything after `/{signature}/`, exactly as it appears on the wire, URL-safe base64
with its `=` padding. The one thing a client must get right beyond that is the image path:

- imagor takes the image from the *escaped* request path and `QueryUnescape`s it, so `%XX`
  and `+` are decoded (a `+` would become a space);
- Thumbor (Tornado) percent-decodes the path but keeps `+` as it is.

So every byte outside `A-Z a-z 0-9 - _ . ~ /` is written as `%XX` (UTF-8), a space as `%20`
and never `+`: both servers then recover the same image string, and the signature covers the
escaped form they verify. Slashes of an object key are kept (readable URLs, as imagor's own
generator does), except where they would let a key be read as an operation: a query string
(a presigned URL), a first segment that looks like `meta`, `fit-in`, `300x200`, `filters:…`
and the like, or empty and dot segments. Then the whole image is one escaped segment.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

SignerType = Literal["sha1", "sha256", "sha512"]
HAlign = Literal["left", "right", "center"]
VAlign = Literal["top", "bottom", "middle"]

# imagor's parser takes a hash of 9+ characters; imagor-studio's router needs 17+. A signature
# truncated below 17 characters is refused, so it works behind both (and keeps >= 100 bits).
MIN_TRUNCATE = 17

_DIGESTS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
# A first image segment that either server could read as an operation instead of the image.
_OPERATION_LIKE = re.compile(
    r"""^(?: unsafe | meta | debug | params | smart | stretch
          | left | right | center | top | bottom | middle
          | trim(?::.*)?
          | (?:adaptive-)?(?:full-)?fit-in
          | -?(?:\d+|orig)?x-?(?:\d+|orig)?
          | [\d.]+x[\d.]+:[\d.]+x[\d.]+
          | \d+x\d+:\d+x\d+
          | filters:.* | b64:.* )$""",
    re.VERBOSE,
)
_FILTER_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_FILTER_ARGS = re.compile(r"^[A-Za-z0-9.,_-]*$")
_FOCAL_ARGS = re.compile(r"^\d+x\d+:\d+x\d+$")


# --- the image path -------------------------------------------------------------------------
def escape_image(image: str) -> str:
    """The image as it goes on the wire (see the module docstring for the rule)."""
    if not image:
        raise ValueError("the image path is empty")
    keep_slashes = "?" not in image and not _ambiguous_segments(image)
    return _percent_escape(image, keep_slashes=keep_slashes)


def _ambiguous_segments(image: str) -> bool:
    segments = image.split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        return True  # leading, doubled or trailing slashes, dot segments: kept only escaped
    return bool(_OPERATION_LIKE.match(segments[0]))


def _percent_escape(text: str, *, keep_slashes: bool) -> str:
    out = []
    for byte in text.encode("utf-8"):
        if byte in _UNRESERVED or (keep_slashes and byte == ord("/")):
            out.append(chr(byte))
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


# --- filters --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Filter:
    """One `name(args)` of the `filters:` segment. Arguments are limited to characters every
    server reads literally, so no escaping rule can differ between them."""

    name: str
    args: str = ""

    def __post_init__(self) -> None:
        if not _FILTER_NAME.match(self.name):
            raise ValueError(f"invalid filter name {self.name!r}")
        if self.name == "focal" and _FOCAL_ARGS.match(self.args):
            return  # `LxT:RxB`: both servers read the colon inside the parentheses
        if not _FILTER_ARGS.match(self.args):
            raise ValueError(f"filter {self.name}() has characters that need escaping: "
                             f"{self.args!r}")

    def __str__(self) -> str:
        return f"{self.name}({self.args})"


def focal_region(left: int, top: int, right: int, bottom: int) -> Filter:
    """`focal(LxT:RxB)`: the region (upright source pixels) a filled crop centres on."""
    if not 0 <= left < right or not 0 <= top < bottom:
        raise ValueError(f"not a region: {left}x{top}:{right}x{bottom}")
    return Filter("focal", f"{left}x{top}:{right}x{bottom}")


def frame_at_position(position: float) -> Filter:
    """`frame(0.5)`: imagorvideo uses the frame at this fraction of the duration. Always
    written with a decimal point: `frame(1)` would mean the *first frame*, not the end."""
    return Filter("frame", _fraction(position))


def frame_at_time(seconds: float) -> Filter:
    """`frame(5s)`: the frame at this time since the start (a Go duration)."""
    return Filter("frame", _go_duration(seconds))


def frame_at_index(index: int) -> Filter:
    """`frame(10)`: the 10th frame (counted from 1)."""
    if index < 1:
        raise ValueError("frame indices start at 1")
    return Filter("frame", str(index))


def seek_to_position(position: float) -> Filter:
    """`seek(0.1)`: jump to this fraction of the duration, then let imagorvideo pick the best
    frame from there (instead of from the start)."""
    return Filter("seek", _fraction(position))


def seek_to_time(seconds: float) -> Filter:
    """`seek(2.5s)`: jump to this time, then pick the best frame from there."""
    return Filter("seek", _go_duration(seconds))


def _fraction(position: float) -> str:
    if not 0.0 <= position <= 1.0:
        raise ValueError(f"a position is between 0.0 and 1.0, not {position}")
    text = format_number(position)
    return text if "." in text else f"{text}.0"


def _go_duration(seconds: float) -> str:
    """Seconds as a Go duration (`5s`, `2.5s`), to the millisecond."""
    if seconds < 0:
        raise ValueError(f"a time is not negative: {seconds}")
    return f"{format_number(round(seconds, 3))}s"


def format_number(value: float) -> str:
    """A number the way Go's `FormatFloat(v, 'f', -1, 64)` writes it: the shortest digits
    that read back as the same float, never an exponent, no trailing `.0`."""
    text = format(Decimal(repr(float(value))), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


# --- the operations -------------------------------------------------------------------------
@dataclass(frozen=True)
class ImagorParams:
    """Everything a URL can ask, in the order the grammar puts it. Width or height 0 means
    "whatever keeps the aspect"; a negative one flips the picture on that axis."""

    image: str
    meta: bool = False
    trim: bool = False
    trim_by: Literal["top-left", "bottom-right"] = "top-left"
    trim_tolerance: int = 0
    crop: tuple[float, float, float, float] | None = None  # left, top, right, bottom
    fit_in: bool = False
    width: int = 0
    height: int = 0
    hflip: bool = False
    vflip: bool = False
    halign: HAlign = "center"
    valign: VAlign = "middle"
    smart: bool = False
    filters: tuple[Filter, ...] = ()


def build_path(params: ImagorParams) -> str:
    """The path after `/{signature}/`: what is signed and what goes on the wire."""
    parts = [*_operation_parts(params)]
    if params.filters:
        parts.append("filters:" + ":".join(str(f) for f in params.filters))
    parts.append(escape_image(params.image))
    return "/".join(parts)


def _operation_parts(p: ImagorParams) -> list[str]:
    parts = ["meta"] if p.meta else []
    if p.trim:
        trim = "trim:bottom-right" if p.trim_by == "bottom-right" else "trim"
        parts.append(f"{trim}:{p.trim_tolerance}" if p.trim_tolerance > 0 else trim)
    if p.crop is not None and any(value > 0 for value in p.crop):
        left, top, right, bottom = (format_number(value) for value in p.crop)
        parts.append(f"{left}x{top}:{right}x{bottom}")
    if p.fit_in:
        parts.append("fit-in")
    dimensions = _dimensions(p)
    if dimensions:
        parts.append(dimensions)
    parts.extend(align for align in (p.halign, p.valign)
                 if align not in ("center", "middle"))  # the defaults are left out
    if p.smart:
        parts.append("smart")
    return parts


def _dimensions(p: ImagorParams) -> str:
    hflip = p.hflip != (p.width < 0)  # a negative width is a flip too
    vflip = p.vflip != (p.height < 0)
    if not (p.width or p.height or hflip or vflip):
        return ""
    return f"{'-' if hflip else ''}{abs(p.width)}x{'-' if vflip else ''}{abs(p.height)}"


# --- signing --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Signer:
    """HMAC-SHA signer as imagor configures it (IMAGOR_SECRET, IMAGOR_SIGNER_TYPE,
    IMAGOR_SIGNER_TRUNCATE); sha1 without truncation is also Thumbor's signer."""

    secret: str = field(repr=False)
    signer_type: SignerType = "sha1"
    truncate: int = 0

    def __post_init__(self) -> None:
        if self.signer_type not in _DIGESTS:
            raise ValueError(f"unknown signer type {self.signer_type!r} "
                             f"(use one of {', '.join(_DIGESTS)})")
        if self.truncate and self.truncate < MIN_TRUNCATE:
            raise ValueError(f"signature truncation {self.truncate} is too short: keep at "
                             f"least {MIN_TRUNCATE} characters, or 0 for the full signature")

    def sign(self, path: str) -> str:
        """The signature of `path` (everything after `/{signature}/`, already escaped)."""
        mac = hmac.new(self.secret.encode("utf-8"), path.removeprefix("/").encode("utf-8"),
                       _DIGESTS[self.signer_type])
        signature = base64.urlsafe_b64encode(mac.digest()).decode("ascii")
        if self.truncate and len(signature) > self.truncate:
            return signature[: self.truncate]
        return signature


@dataclass(frozen=True)
class UrlBuilder:
    """Full URLs for one service: signed, or `unsafe` only when explicitly allowed."""

    base_url: str
    signer: Signer | None = None
    allow_unsafe: bool = False

    def __post_init__(self) -> None:
        if self.signer is None and not self.allow_unsafe:
            raise ValueError("no secret to sign URLs with, and unsafe URLs are not allowed")

    def url(self, params: ImagorParams) -> str:
        """`{base_url}/{signature}/{path}`; a path prefix in base_url is not signed, as a
        reverse proxy in front of the service strips it."""
        path = build_path(params)
        return f"{self.base_url.rstrip('/')}/{self.signature(path)}/{path}"

    def signature(self, path: str) -> str:
        return self.signer.sign(path) if self.signer is not None else "unsafe"
