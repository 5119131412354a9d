"""The in-process engine on still images (and on what every kind of input must never do)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import pyvips
from PIL import Image

from media_worker.config import ThumbnailFormat
from media_worker.engines import images
from media_worker.engines.images.vips import jpeg_shrink
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, RenderResult, SourceMedia
from media_worker.errors import (
    CorruptMediaError,
    LimitExceededError,
    PermanentError,
    UnsupportedMediaError,
)
from media_worker.samples import make_samples
from media_worker.types import ThumbnailSize

SIZES = ThumbnailSize.parse_list("small:150x150,medium:480x480,large:1280x1280")
SMALL = ThumbnailSize.parse_list("small:150x150")
METADATA_FIELDS = ("exif-data", "xmp-data", "iptc-data", "icc-profile-data")


@pytest.fixture(scope="module")
def engine() -> LocalEngine:
    return LocalEngine(max_pixels=100_000_000, max_video_seconds=3600)


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {path.suffix.lstrip("."): path
            for path in make_samples(tmp_path_factory.mktemp("samples"))}


def render(engine: LocalEngine, path: Path, sizes: list[ThumbnailSize] = SIZES,
           fmt: ThumbnailFormat = ThumbnailFormat.WEBP) -> RenderResult:
    return engine.render(SourceMedia(path, "media", path.name), sizes, OutputSpec(fmt, 80))


def decoded(result: RenderResult, index: int = 0) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(result.thumbnails[index].data, "")


def pattern(path: Path, width: int, height: int, *, alpha: bool = False) -> Path:
    """A synthetic picture (gradient), saved in the format of the file name's suffix."""
    xyz = pyvips.Image.xyz(width, height)
    image = ((xyz[0] * 255 / width).bandjoin([xyz[1] * 255 / height, 128])).cast("uchar")
    if alpha:  # transparent left half
        image = image.bandjoin((xyz[0] >= width // 2).ifthenelse(255, 0).cast("uchar"))
    image.copy(interpretation="srgb").write_to_file(str(path))
    return path


# --- orientation and colour -----------------------------------------------------------------
@pytest.mark.parametrize("kind", ["Landscape", "Portrait"])
def test_corpus_orientation_jpegs_all_come_out_upright(engine: LocalEngine, corpus: Path,
                                                       kind: str) -> None:
    """Every EXIF orientation 1-8 gives the same picture as the untagged reference file."""
    folder = corpus / "images" / "orientation"
    reference = render(engine, folder / f"{kind}_0.jpg", SMALL, ThumbnailFormat.PNG)
    expected = (150, 100) if kind == "Landscape" else (100, 150)
    upright = (1800, 1200) if kind == "Landscape" else (1200, 1800)
    for number in range(1, 9):
        result = render(engine, folder / f"{kind}_{number}.jpg", SMALL, ThumbnailFormat.PNG)
        thumb = result.thumbnails[0]
        assert (thumb.width, thumb.height) == expected, number
        assert (result.metadata["width"], result.metadata["height"]) == upright, number
        assert result.metadata["orientation"] == (number if number > 1 else 1)
        difference = (decoded(result) - decoded(reference)).abs().avg()
        assert difference < 5, f"{kind}_{number} differs from the reference by {difference:.1f}"


def test_embedded_icc_profile_is_converted_to_srgb(engine: LocalEngine, corpus: Path) -> None:
    """This AVIF's profile rotates hues: only a colour-managed decode puts red at 12 o'clock."""
    result = render(engine, corpus / "images/formats/avif/"
                    "red-at-12-oclock-with-color-profile-8bpc.avif", SMALL, ThumbnailFormat.PNG)
    red, green, blue = decoded(result)(75, 16)[:3]
    assert red > 200
    assert green < 80
    assert blue < 130


def test_cmyk_jpeg_becomes_three_band_srgb(engine: LocalEngine, corpus: Path) -> None:
    result = render(engine, corpus / "images/formats/jpeg/Channel_digital_image_CMYK_color.jpg",
                    SMALL, ThumbnailFormat.JPEG)
    image = decoded(result)
    assert (image.bands, image.interpretation) == (3, "srgb")
    assert 60 < image.avg() < 200  # neither inverted nor black


# --- privacy --------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", list(ThumbnailFormat))
def test_camera_gps_exif_never_reaches_a_thumbnail(engine: LocalEngine, corpus: Path,
                                                   fmt: ThumbnailFormat) -> None:
    source = corpus / "images/camera/DSCN0010.jpg"
    assert "exif-data" in pyvips.Image.new_from_file(str(source)).get_fields()
    for thumbnail in render(engine, source, SIZES, fmt).thumbnails:
        image = pyvips.Image.new_from_buffer(thumbnail.data, "")
        assert [name for name in METADATA_FIELDS if image.get_typeof(name)] == []
        with Image.open(io.BytesIO(thumbnail.data)) as pillow:
            assert dict(pillow.getexif()) == {}


# --- geometry -------------------------------------------------------------------------------
def test_thumbnails_fit_their_box_and_keep_aspect(engine: LocalEngine, tmp_path: Path) -> None:
    source = pattern(tmp_path / "wide.png", 1000, 600)
    sizes = ThumbnailSize.parse_list("big:800x800,wide:300x100,tall:100x300,tiny:32x32")
    result = render(engine, source, sizes)
    for size, thumb in zip(sizes, result.thumbnails, strict=True):
        assert thumb.size == size
        assert thumb.width <= size.width
        assert thumb.height <= size.height
        assert thumb.width == size.width or thumb.height == size.height  # touches the box
        assert abs(thumb.width * 600 / 1000 - thumb.height) <= 1
        assert (decoded(result, sizes.index(size)).width, decoded(
            result, sizes.index(size)).height) == (thumb.width, thumb.height)


def test_small_original_is_never_upscaled(engine: LocalEngine, tmp_path: Path) -> None:
    result = render(engine, pattern(tmp_path / "small.png", 100, 80), SIZES)
    assert [(t.width, t.height) for t in result.thumbnails] == [(100, 80)] * 3


def test_biggest_thumbnail_is_chosen_by_scale_not_box_area(engine: LocalEngine,
                                                           tmp_path: Path) -> None:
    """A 1000x100 box has more area than 300x300 but gives a square picture only 100x100."""
    sizes = ThumbnailSize.parse_list("banner:1000x100,square:300x300")
    result = render(engine, pattern(tmp_path / "square.jpg", 600, 600), sizes)
    assert [(t.width, t.height) for t in result.thumbnails] == [(100, 100), (300, 300)]


@pytest.mark.parametrize(("width", "height", "box", "expected"), [
    (4000, 3000, "large:1280x1280", 2),  # 12 MP photo: 1/2 leaves 2000 px, 1/4 only 1000
    (4000, 3000, "small:150x150", 8),
    (2000, 1000, "large:1280x1280", 1),  # already less than twice the box
    (1000, 10000, "wide:800x100", 8),  # the tall picture fits the box by its height
])
def test_jpeg_shrink_is_the_largest_power_of_two_that_still_covers_the_box(
        width: int, height: int, box: str, expected: int) -> None:
    assert jpeg_shrink(width, height, ThumbnailSize.parse(box)) == expected


def test_jpeg_shrink_never_leaves_fewer_pixels_than_the_thumbnail() -> None:
    box = ThumbnailSize.parse("large:1280x1280")
    for width in range(100, 20000, 37):
        height = width * 3 // 4
        shrink = jpeg_shrink(width, height, box)
        scale = min(1280 / width, 1280 / height, 1.0)
        assert -(-width // shrink) >= round(width * scale), width


def test_shrunk_jpeg_decode_gives_the_exact_box(engine: LocalEngine, tmp_path: Path) -> None:
    """A 5000x3750 JPEG is decoded at 1/2 for a 1280 box and still resized to exactly 1280."""
    result = render(engine, pattern(tmp_path / "big.jpg", 5000, 3750), SIZES)
    assert [(t.width, t.height) for t in result.thumbnails] == [(150, 113), (480, 360),
                                                                 (1280, 960)]


def test_pillow_fallback_after_draft_scaling_still_fills_the_largest_box(
        engine: LocalEngine, corpus: Path) -> None:
    """A damaged 3648x2736 JPEG goes through Pillow: the DCT draft and the integer reduce
    after it must together never leave fewer pixels than the 1280 px thumbnail needs."""
    result = render(engine, corpus / "images" / "malformed" / "corrupted.jpg")
    assert [(t.width, t.height) for t in result.thumbnails] == [(150, 113), (480, 360),
                                                                 (1280, 960)]


def test_thumbnails_come_back_in_the_order_of_sizes(engine: LocalEngine, tmp_path: Path) -> None:
    sizes = ThumbnailSize.parse_list("medium:480x480,small:150x150,large:1280x1280")
    result = render(engine, pattern(tmp_path / "p.png", 2000, 1000), sizes)
    assert [t.size.name for t in result.thumbnails] == ["medium", "small", "large"]
    assert [t.width for t in result.thumbnails] == [480, 150, 1280]


# --- alpha, animation, formats --------------------------------------------------------------
@pytest.mark.parametrize("fmt", [ThumbnailFormat.WEBP, ThumbnailFormat.PNG,
                                 ThumbnailFormat.AVIF])
def test_png_alpha_is_kept_where_the_format_has_alpha(engine: LocalEngine, tmp_path: Path,
                                                      fmt: ThumbnailFormat) -> None:
    result = render(engine, pattern(tmp_path / "a.png", 400, 300, alpha=True), SMALL, fmt)
    image = decoded(result)
    assert image.hasalpha()
    assert image(5, 50)[-1] < 10
    assert image(145, 50)[-1] > 245
    assert result.metadata["hasAlpha"] is True


def test_png_alpha_is_flattened_onto_white_in_jpeg(engine: LocalEngine, tmp_path: Path) -> None:
    result = render(engine, pattern(tmp_path / "a.png", 400, 300, alpha=True), SMALL,
                    ThumbnailFormat.JPEG)
    image = decoded(result)
    assert image.bands == 3
    assert min(image(5, 50)) > 245  # the transparent half is white, not black


def test_animated_gif_gives_a_single_frame(engine: LocalEngine, corpus: Path) -> None:
    result = render(engine, corpus / "images/formats/gif/iss634.gif", SMALL)
    assert result.metadata["pages"] == 42
    with Image.open(io.BytesIO(result.thumbnails[0].data)) as thumbnail:
        assert getattr(thumbnail, "n_frames", 1) == 1
        assert thumbnail.size == (150, 150)


def test_heic_is_decoded_with_pillow_heif_and_irot_applied(engine: LocalEngine,
                                                           corpus: Path) -> None:
    """pyvips-binary has no HEVC decoder; this iPhone photo is stored landscape + irot 270."""
    result = render(engine, corpus / "images/formats/heic/arrow.heic", SMALL)
    assert (result.metadata["format"], result.metadata["width"],
            result.metadata["height"]) == ("heic", 3024, 4032)
    assert (result.thumbnails[0].width, result.thumbnails[0].height) == (113, 150)


@pytest.mark.parametrize(("name", "fmt", "size"), [
    ("bmp/pal8.bmp", "bmp", (127, 64)),
    ("ico/multiple_entries_with_different_bit_depth.ico", "ico", (48, 48)),
    ("avif/star-8bpc.avifs", "avif", (159, 159)),
])
def test_formats_without_a_libvips_loader_go_through_pillow(
        engine: LocalEngine, corpus: Path, name: str, fmt: str, size: tuple[int, int]) -> None:
    result = render(engine, corpus / "images/formats" / name, SIZES)
    assert (result.metadata["format"], result.metadata["width"],
            result.metadata["height"]) == (fmt, *size)
    assert (result.thumbnails[-1].width, result.thumbnails[-1].height) == size


def test_jpeg_xl_renders_with_the_plugin_or_is_refused_by_name(engine: LocalEngine,
                                                               corpus: Path) -> None:
    source = corpus / "images/formats/jxl/8bit-sRGB.jxl"
    try:
        import pillow_jxl  # noqa: F401
    except ImportError:
        with pytest.raises(UnsupportedMediaError, match="JPEG XL"):
            render(engine, source, SMALL)
        return
    result = render(engine, source, SMALL)
    assert (result.metadata["width"], result.metadata["height"]) == (1440, 1080)


def test_image_metadata_is_camel_case(engine: LocalEngine, samples: dict[str, Path]) -> None:
    metadata = render(engine, samples["png"], SMALL).metadata
    assert {"kind": "image", "format": "png", "mimeType": "image/png", "width": 800,
            "height": 600, "orientation": 1, "hasAlpha": True, "pages": 1}.items() \
        <= metadata.items()


# --- SVG safety -----------------------------------------------------------------------------
def test_svg_cannot_pull_in_files_next_to_it(engine: LocalEngine, tmp_path: Path) -> None:
    pyvips.Image.black(40, 40).new_from_image([255, 0, 0]).pngsave(str(tmp_path / "secret.png"))
    svg = tmp_path / "x.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg" '
                   'xmlns:xlink="http://www.w3.org/1999/xlink" width="40" height="40">'
                   '<image xlink:href="secret.png" width="40" height="40"/></svg>')
    image = decoded(render(engine, svg, SMALL, ThumbnailFormat.PNG))
    assert image.hasalpha()
    assert image[3].max() == 0


# --- limits and damage ----------------------------------------------------------------------
def test_pixel_limit_is_checked_from_the_header_before_decoding(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """libvips decodes lazily, inside the resize/encode step: it must never be reached."""
    def must_not_decode(*_args: object, **_kwargs: object) -> None:
        pytest.fail("pixels were decoded before the limit was checked")

    monkeypatch.setattr(images.vips, "render_sizes", must_not_decode)
    monkeypatch.setattr(images.pillow, "render_from_image", must_not_decode)
    engine = LocalEngine(max_pixels=400 * 300 - 1, max_video_seconds=60)
    sources = [pattern(tmp_path / "p.png", 400, 300), _progressive_jpeg(tmp_path),
               _bmp(tmp_path)]
    for source in sources:
        with pytest.raises(LimitExceededError, match="400x300"):
            render(engine, source, SMALL)


def test_baseline_jpeg_is_held_to_max_pixels_at_its_shrink_on_load_scale(
        tmp_path: Path) -> None:
    """libjpeg streams a 400x300 baseline JPEG at 1/2 scale for a 150 px box: the 200x150
    it holds is what MAX_PIXELS bounds; MAX_HEADER_PIXELS bounds the header."""
    source = pattern(tmp_path / "p.jpg", 400, 300)
    held = LocalEngine(max_pixels=200 * 150, max_video_seconds=60)
    assert render(held, source, SMALL).metadata["width"] == 400
    with pytest.raises(LimitExceededError, match="MAX_PIXELS"):
        render(LocalEngine(max_pixels=200 * 150 - 1, max_video_seconds=60), source, SMALL)
    capped = LocalEngine(max_pixels=10**8, max_video_seconds=60,
                         max_header_pixels=400 * 300 - 1)
    with pytest.raises(LimitExceededError, match="MAX_HEADER_PIXELS"):
        render(capped, source, SMALL)


def _progressive_jpeg(tmp_path: Path) -> Path:
    """Progressive: every coefficient of the whole picture is held until the last scan."""
    path = tmp_path / "progressive.jpg"
    pyvips.Image.new_from_file(str(pattern(tmp_path / "b.png", 400, 300))).jpegsave(
        str(path), interlace=True)
    return path


def _bmp(tmp_path: Path) -> Path:
    path = tmp_path / "p.bmp"
    Image.new("RGB", (400, 300), (10, 20, 30)).save(path)
    return path


def test_gigapixel_png_bomb_is_refused(engine: LocalEngine, corpus: Path) -> None:
    with pytest.raises(LimitExceededError, match="MAX_PIXELS"):
        render(engine, corpus / "images/malformed/65536-uint32-limit.png", SMALL)


@pytest.mark.parametrize("keep", [0.5, 0.05, 0.002])
def test_truncated_jpeg_is_recovered_or_corrupt_never_a_crash(
        engine: LocalEngine, samples: dict[str, Path], tmp_path: Path, keep: float) -> None:
    data = samples["jpg"].read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: max(4, int(len(data) * keep))])
    try:
        outcome = str(len(render(engine, cut, SMALL).thumbnails))
    except CorruptMediaError as exc:
        outcome = str(exc)
    assert outcome == "1" or outcome.startswith("cannot decode JPEG: ")
    assert str(tmp_path) not in outcome
    assert "\n" not in outcome


def test_damaged_jpeg_scan_is_recovered_with_pillow(engine: LocalEngine, corpus: Path) -> None:
    """libjpeg gives up on restart markers out of order; Pillow still decodes the picture."""
    result = render(engine, corpus / "images/malformed/corrupted.jpg", SMALL)
    assert (result.metadata["width"], result.metadata["height"]) == (3648, 2736)


def test_every_malformed_image_ends_in_a_result_or_a_permanent_error(
        engine: LocalEngine, corpus: Path) -> None:
    outcomes = {}
    for path in sorted((corpus / "images" / "malformed").iterdir()):
        try:
            render(engine, path, SMALL)
            outcomes[path.name] = "ok"
        except PermanentError as exc:
            outcomes[path.name] = f"{type(exc).__name__}: {exc}"
    assert [text for text in outcomes.values() if str(corpus) in text] == []
    assert outcomes["65536-uint32-limit.png"].startswith("LimitExceededError")
    assert outcomes["empty.heic"].startswith("UnsupportedMediaError")
    assert outcomes["truncated.jpg"] == "ok"
    # Camera RAWs cut short go to LibRaw (tests/unit/test_raw.py), not to FFmpeg or libvips,
    # and the iPhone DNG LibRaw decodes to black is refused rather than shown.
    assert outcomes["file-type-fixture.cr3"].startswith("CorruptMediaError: cannot decode CR3")
    assert outcomes["file-type-fixture-sony-zv-e10.arw"].startswith(
        "UnsupportedMediaError: unsupported ARW: LibRaw")
    assert outcomes["IMG_1361.dng"].startswith("CorruptMediaError: cannot decode DNG")


# --- samples --------------------------------------------------------------------------------
def test_project_samples_all_render(engine: LocalEngine, samples: dict[str, Path]) -> None:
    kinds = {suffix: render(engine, path, SMALL).metadata["kind"]
             for suffix, path in samples.items()}
    assert kinds == {"jpg": "image", "png": "image", "gif": "image", "mp4": "video"}


def test_sample_jpeg_arrow_points_up(engine: LocalEngine, samples: dict[str, Path]) -> None:
    """Stored turned, tagged orientation 6: upright, the blue bar runs along the bottom."""
    result = render(engine, samples["jpg"], SMALL, ThumbnailFormat.PNG)
    image = decoded(result)
    assert (image.width, image.height) == (150, 113)
    red, _green, blue = image(75, 110)[:3]
    assert blue > 150
    assert red < 100


@pytest.mark.skipif(not os.environ.get("MEDIA_WORKER_FULL_CORPUS"),
                    reason="full corpus sweep (~40 s): set MEDIA_WORKER_FULL_CORPUS=1")
def test_every_supported_corpus_file_renders(engine: LocalEngine, corpus: Path) -> None:
    """Every file the MANIFEST expects READY: orientation, camera, formats and top-level
    videos (files not in the MANIFEST are not the corpus)."""
    rows = (corpus / "MANIFEST.tsv").read_text().splitlines()[1:]
    paths = [corpus / row.split("\t")[0] for row in rows
             if "malformed/" not in row.split("\t")[0]
             and "no-video-stream/" not in row.split("\t")[0]
             and not row.startswith("images/raw/GOPR0024.GPR")]  # unsupported: test_raw.py
    failures = {}
    for path in paths:
        try:
            render(engine, path, SIZES)
        except PermanentError as exc:
            failures[str(path.relative_to(corpus))] = str(exc)
    assert failures == {}
