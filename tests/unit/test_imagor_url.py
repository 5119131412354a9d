"""The imagor URL builder and signer, checked against known answers.

Two kinds of vectors: the ones imagor documents (its README and security page, and its own
server tests), and ones computed here with `hmac`/`base64` from the standard library, never
through the module under test. Escaped image paths are read back the way each server reads
them: imagor `QueryUnescape`s (≈ `unquote_plus`), Thumbor's Tornado percent-decodes and keeps
`+` (≈ `unquote`). Both must recover the original key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import unquote, unquote_plus

import pytest

from media_worker.engines.imagor.url import (
    MIN_TRUNCATE,
    Filter,
    ImagorParams,
    Signer,
    UrlBuilder,
    build_path,
    escape_image,
    format_number,
    frame_at_index,
    frame_at_position,
    frame_at_time,
    seek_to_position,
    seek_to_time,
)

DOC_PATH = "500x500/top/raw.githubusercontent.com/cshum/imagor/master/testdata/gopher.png"


def reference_signature(secret: str, path: str, digest: str = "sha1", truncate: int = 0) -> str:
    """The signature by the definition, with the standard library only."""
    mac = hmac.new(secret.encode(), path.encode(), getattr(hashlib, digest)).digest()
    text = base64.urlsafe_b64encode(mac).decode()
    return text[:truncate] if truncate else text


# --- documented vectors ---------------------------------------------------------------------
def test_documented_sha1_example() -> None:
    """imagor README: secret `mysecret`, SHA1, the gopher path."""
    assert Signer("mysecret").sign(DOC_PATH) == "cST4Ko5_FqwT3BDn-Wf4gO3RFSk="


def test_documented_sha256_truncated_example() -> None:
    """imagor security docs: IMAGOR_SIGNER_TYPE=sha256, IMAGOR_SIGNER_TRUNCATE=40."""
    signer = Signer("mysecret", "sha256", 40)
    assert signer.sign(DOC_PATH) == "IGEn3TxngivD0jy4uuiZim2bdUCvhcnVi1Nm0xGy"


def test_imagor_server_test_vectors() -> None:
    """imagor's own config tests sign `bar` with the empty default secret."""
    assert Signer("", "sha256").sign("bar") == "WN6mgyl8pD4KTy5IDSBs0GcFPaV7-R970JLsd01pqAU="
    assert Signer("", "sha512", 32).sign("bar") == "Kmml5ejnmsn7M7TszYkeM2j5G3bpI7mp"


def test_documented_path_is_built_from_its_parts() -> None:
    params = ImagorParams(image="raw.githubusercontent.com/cshum/imagor/master/testdata/gopher.png",
                          width=500, height=500, valign="top")
    assert build_path(params) == DOC_PATH
    url = UrlBuilder("http://localhost:8000", Signer("mysecret")).url(params)
    assert url == f"http://localhost:8000/cST4Ko5_FqwT3BDn-Wf4gO3RFSk=/{DOC_PATH}"


# --- independent vectors ----------------------------------------------------------------------
PATHS = [
    "fit-in/150x150/filters:format(webp):quality(80):strip_exif()/uploads/2026/11/photo.jpg",
    "fit-in/480x480/filters:format(jpeg):seek(1s)/uploads/clip%20one.mp4",
    "meta/uploads/%C3%BCn%C3%AFcode.heic",
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("digest", ["sha1", "sha256", "sha512"])
def test_every_signer_type_matches_the_definition(path: str, digest: str) -> None:
    signature = Signer("s3cr3t-ü", digest).sign(path)  # type: ignore[arg-type]
    assert signature == reference_signature("s3cr3t-ü", path, digest)
    assert signature.endswith("=")  # padding is kept (20, 32 and 64 bytes are not 3n)


@pytest.mark.parametrize(("digest", "truncate"), [("sha1", 17), ("sha256", 20), ("sha512", 40)])
def test_truncation_keeps_the_first_characters(digest: str, truncate: int) -> None:
    signer = Signer("k", digest, truncate)  # type: ignore[arg-type]
    assert signer.sign(PATHS[0]) == reference_signature("k", PATHS[0], digest, truncate)
    assert len(signer.sign(PATHS[0])) == truncate


def test_truncation_longer_than_the_signature_changes_nothing() -> None:
    assert Signer("k", "sha1", 100).sign(PATHS[0]) == reference_signature("k", PATHS[0])


def test_truncation_below_17_characters_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 17"):
        Signer("k", "sha256", MIN_TRUNCATE - 1)
    assert Signer("k", "sha256", MIN_TRUNCATE).truncate == 17


def test_unknown_signer_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown signer type"):
        Signer("k", "md5")  # type: ignore[arg-type]


def test_a_leading_slash_is_not_signed() -> None:
    assert Signer("k").sign("/" + PATHS[0]) == reference_signature("k", PATHS[0])


def test_the_escaped_string_on_the_wire_is_what_is_signed() -> None:
    params = ImagorParams(image="uploads/a photo #1.jpg", fit_in=True, width=150, height=150)
    url = UrlBuilder("http://svc:8080", Signer("k")).url(params)
    signature, wire_path = url.removeprefix("http://svc:8080/").split("/", 1)
    assert wire_path == "fit-in/150x150/uploads/a%20photo%20%231.jpg"
    assert signature == reference_signature("k", wire_path)
    assert signature != reference_signature("k", "fit-in/150x150/uploads/a photo #1.jpg")


# --- the image path -------------------------------------------------------------------------
@pytest.mark.parametrize(("key", "wire"), [
    ("uploads/2026/11/photo.jpg", "uploads/2026/11/photo.jpg"),
    ("uploads/my photo.jpg", "uploads/my%20photo.jpg"),
    ("uploads/ünïcode/日本.png", "uploads/%C3%BCn%C3%AFcode/%E6%97%A5%E6%9C%AC.png"),
    ("uploads/what?.jpg", "uploads%2Fwhat%3F.jpg"),  # a query: one escaped segment
    ("uploads/#1.jpg", "uploads/%231.jpg"),
    ("uploads/100%.jpg", "uploads/100%25.jpg"),
    ("uploads/a+b.jpg", "uploads/a%2Bb.jpg"),  # imagor would read a bare + as a space
    ("uploads/a&b=c;d,e(f)'g'!*$@:.jpg",
     "uploads/a%26b%3Dc%3Bd%2Ce%28f%29%27g%27%21%2A%24%40%3A.jpg"),
    ("uploads/tilde~_-.jpg", "uploads/tilde~_-.jpg"),
])
def test_image_escaping(key: str, wire: str) -> None:
    assert escape_image(key) == wire


@pytest.mark.parametrize("key", [
    "meta/x.jpg", "fit-in/x.jpg", "300x200/x.jpg", "-300x-200/x.jpg", "x200/x.jpg",
    "10x20:30x40/x.jpg", "trim/x.jpg", "trim:bottom-right:5/x.jpg", "smart/x.jpg",
    "left/x.jpg", "top/x.jpg", "middle/x.jpg", "filters:x()/y.jpg", "unsafe/x.jpg",
    "stretch/x.jpg", "adaptive-full-fit-in/x.jpg", "debug/x.jpg", "b64:abc/x.jpg",
    "/leading.jpg", "a//b.jpg", "a/./b.jpg", "a/../b.jpg", "trailing/",
])
def test_keys_that_could_read_as_operations_become_one_segment(key: str) -> None:
    wire = escape_image(key)
    assert "/" not in wire
    assert unquote_plus(wire) == key


KEYS = [
    "uploads/2026/11/IMG 0001 (copy).JPG", "uploads/ünï cödé/😀.png", "a+b c%20d#e?f=g&h",
    "http://127.0.0.1:9000/media/uploads/a%20b.jpg?X-Amz-Credential=test%2F20261129%2Fus"
    "&X-Amz-Signature=abc+def", "300x200/fit-in.jpg",
]


@pytest.mark.parametrize("key", KEYS)
def test_both_servers_read_back_the_exact_image(key: str) -> None:
    wire = escape_image(key)
    assert wire.isascii()
    assert not set(wire) & set(" #?+")
    assert unquote_plus(wire) == key  # imagor: url.QueryUnescape
    assert unquote(wire) == key  # Thumbor: Tornado path decoding (no '+' → ' ')


def test_a_presigned_url_is_one_escaped_segment() -> None:
    url = "http://127.0.0.1:5000/media/k.jpg?X-Amz-Signature=ab%2Fcd&X-Amz-Expires=900"
    wire = escape_image(url)
    assert wire == ("http%3A%2F%2F127.0.0.1%3A5000%2Fmedia%2Fk.jpg%3FX-Amz-Signature%3Dab"
                    "%252Fcd%26X-Amz-Expires%3D900")


def test_an_empty_image_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        escape_image("")


# --- every option of the grammar ------------------------------------------------------------
@pytest.mark.parametrize(("params", "path"), [
    (ImagorParams(image="i.jpg"), "i.jpg"),
    (ImagorParams(image="i.jpg", meta=True), "meta/i.jpg"),
    (ImagorParams(image="i.jpg", trim=True), "trim/i.jpg"),
    (ImagorParams(image="i.jpg", trim=True, trim_by="bottom-right", trim_tolerance=10),
     "trim:bottom-right:10/i.jpg"),
    (ImagorParams(image="i.jpg", trim=True, trim_tolerance=5), "trim:5/i.jpg"),
    (ImagorParams(image="i.jpg", crop=(10, 20, 300, 400)), "10x20:300x400/i.jpg"),
    (ImagorParams(image="i.jpg", crop=(0.1, 0.2, 0.9, 0.75)), "0.1x0.2:0.9x0.75/i.jpg"),
    (ImagorParams(image="i.jpg", crop=(0, 0, 0, 0)), "i.jpg"),
    (ImagorParams(image="i.jpg", fit_in=True, width=300, height=200), "fit-in/300x200/i.jpg"),
    (ImagorParams(image="i.jpg", width=300), "300x0/i.jpg"),
    (ImagorParams(image="i.jpg", width=-300, height=200), "-300x200/i.jpg"),
    (ImagorParams(image="i.jpg", width=300, height=-200), "300x-200/i.jpg"),
    (ImagorParams(image="i.jpg", hflip=True, vflip=True), "-0x-0/i.jpg"),
    (ImagorParams(image="i.jpg", width=-300, hflip=True), "300x0/i.jpg"),  # two flips cancel
    (ImagorParams(image="i.jpg", width=10, height=10, halign="left", valign="top"),
     "10x10/left/top/i.jpg"),
    (ImagorParams(image="i.jpg", width=10, height=10, halign="center", valign="middle"),
     "10x10/i.jpg"),
    (ImagorParams(image="i.jpg", width=10, height=10, halign="right", valign="bottom",
                  smart=True), "10x10/right/bottom/smart/i.jpg"),
    (ImagorParams(image="i.jpg", fit_in=True, width=150, height=150,
                  filters=(Filter("format", "webp"), Filter("quality", "80"),
                           Filter("strip_exif"), Filter("strip_icc"))),
     "fit-in/150x150/filters:format(webp):quality(80):strip_exif():strip_icc()/i.jpg"),
    (ImagorParams(image="i.jpg", meta=True, trim=True, crop=(1, 2, 3, 4), fit_in=True,
                  width=5, height=6, halign="left", valign="bottom", smart=True,
                  filters=(Filter("fill", "white"),)),
     "meta/trim/1x2:3x4/fit-in/5x6/left/bottom/smart/filters:fill(white)/i.jpg"),
])
def test_path_grammar(params: ImagorParams, path: str) -> None:
    assert build_path(params) == path


def test_filters_need_no_escaping() -> None:
    with pytest.raises(ValueError, match="need escaping"):
        Filter("label", "hello world/x")
    with pytest.raises(ValueError, match="invalid filter name"):
        Filter("Format(", "webp")


@pytest.mark.parametrize(("value", "text"), [
    (10, "10"), (10.0, "10"), (0.1, "0.1"), (0.75, "0.75"), (1e-05, "0.00001"),
    (123456789012.5, "123456789012.5"), (-0.0, "0"), (1 / 3, "0.3333333333333333"),
])
def test_numbers_are_written_as_go_writes_them(value: float, text: str) -> None:
    assert format_number(value) == text


# --- imagorvideo's frame choice -------------------------------------------------------------
@pytest.mark.parametrize(("made", "text"), [
    (frame_at_position(0.5), "frame(0.5)"),
    (frame_at_position(1), "frame(1.0)"),  # not frame(1), which is the first frame
    (frame_at_position(0), "frame(0.0)"),
    (frame_at_time(5), "frame(5s)"),
    (frame_at_time(2.5), "frame(2.5s)"),
    (frame_at_time(0.0404), "frame(0.04s)"),
    (frame_at_time(125), "frame(125s)"),
    (frame_at_index(10), "frame(10)"),
    (seek_to_position(0.1), "seek(0.1)"),
    (seek_to_time(1), "seek(1s)"),
    (seek_to_time(0.1001), "seek(0.1s)"),
])
def test_video_filters(made: Filter, text: str) -> None:
    assert str(made) == text


@pytest.mark.parametrize("bad", [
    lambda: frame_at_position(1.5), lambda: frame_at_position(-0.1), lambda: frame_at_time(-1),
    lambda: frame_at_index(0), lambda: seek_to_position(2), lambda: seek_to_time(-0.5),
])
def test_video_filters_refuse_impossible_values(bad: object) -> None:
    with pytest.raises(ValueError, match=r"position|time|start at 1"):
        bad()  # type: ignore[operator]


@pytest.mark.parametrize(("frame", "text"), [
    (frame_at_position(0.5), "frame(0.5)"), (frame_at_time(5), "frame(5s)"),
    (seek_to_time(1), "seek(1s)"), (seek_to_position(0.1), "seek(0.1)"),
])
def test_video_filters_in_a_signed_url(frame: Filter, text: str) -> None:
    params = ImagorParams(image="uploads/my clip.mp4", fit_in=True, width=480, height=480,
                          filters=(Filter("format", "webp"), frame))
    path = f"fit-in/480x480/filters:format(webp):{text}/uploads/my%20clip.mp4"
    url = UrlBuilder("http://imagorvideo:8080/", Signer("k", "sha256", 40)).url(params)
    assert url == (f"http://imagorvideo:8080/{reference_signature('k', path, 'sha256', 40)}"
                   f"/{path}")


# --- unsafe -----------------------------------------------------------------------------------
def test_unsafe_only_when_allowed() -> None:
    params = ImagorParams(image="i.jpg", fit_in=True, width=1, height=1)
    with pytest.raises(ValueError, match="unsafe URLs are not allowed"):
        UrlBuilder("http://svc")
    assert UrlBuilder("http://svc", allow_unsafe=True).url(params) == \
        "http://svc/unsafe/fit-in/1x1/i.jpg"


def test_a_secret_wins_over_unsafe() -> None:
    params = ImagorParams(image="i.jpg")
    url = UrlBuilder("http://svc", Signer("k"), allow_unsafe=True).url(params)
    assert url == f"http://svc/{reference_signature('k', 'i.jpg')}/i.jpg"


def test_a_base_path_is_not_signed() -> None:
    url = UrlBuilder("http://proxy/imagor/", Signer("k")).url(ImagorParams(image="i.jpg"))
    assert url == f"http://proxy/imagor/{reference_signature('k', 'i.jpg')}/i.jpg"


def test_the_secret_is_not_in_the_repr() -> None:
    assert "hunter2" not in repr(Signer("hunter2"))
    assert "hunter2" not in repr(UrlBuilder("http://svc", Signer("hunter2")))
