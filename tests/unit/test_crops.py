"""`cover` and `smart` sizes through the engine: exactly the box (never upscaled), the focus
and the interest placing the crop, every face kept, the crop recorded in upright source
pixels, one decode and one interest search per job."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pyvips

from media_worker.config import ThumbnailFormat
from media_worker.engines import encode
from media_worker.engines.encode import Framing, largest_box, render_sizes
from media_worker.engines.faces import find_faces
from media_worker.engines.framing import Box
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, RenderedThumbnail, RenderResult, SourceMedia
from media_worker.renditions import Focus
from media_worker.types import Crop, ThumbnailSize
from tests.unit.fresh_interpreter import Step, modules_loaded

JOB = ThumbnailSize.parse_list("small:150x150,avatar:256x256:smart,og:1200x630:cover:jpeg:85")
SQUARE = ThumbnailSize.parse("sq:256x256:cover")
SMART_SQUARE = ThumbnailSize.parse("sq:256x256:smart")
SMART_WIDE = ThumbnailSize.parse("wide:640x360:smart")
PHOTOS_WITH_FACES = ("images/formats/jpeg/craft-beer.jpg", "images/formats/png/hopper.png",
                     "images/formats/webp/hopper_orientation_6.webp")


@pytest.fixture(scope="module")
def engine() -> LocalEngine:
    return LocalEngine(max_pixels=100_000_000, max_video_seconds=3600)


def render(engine: LocalEngine, path: Path, sizes: list[ThumbnailSize],
           focus: Focus | None = None, output: OutputSpec | None = None) -> RenderResult:
    return engine.render(SourceMedia(path, "media", path.name, focus), sizes,
                         output or OutputSpec())


def pixels(thumb: RenderedThumbnail) -> np.ndarray:
    return pyvips.Image.new_from_buffer(thumb.data, "").numpy()


def inside(face: Box, crop: Crop, width: int, height: int) -> bool:
    """The face (fractions of a width x height picture) inside the crop, a pixel's slack."""
    return (crop.x - 1 <= face.left * width and face.right * width <= crop.x + crop.width + 1
            and crop.y - 1 <= face.top * height
            and face.bottom * height <= crop.y + crop.height + 1)


def test_a_cover_thumbnail_is_exactly_the_box(engine: LocalEngine, corpus: Path) -> None:
    result = render(engine, corpus / "images/camera/42_IndexError.jpg", JOB)  # 4032x3024
    small, avatar, og = result.thumbnails
    assert (small.width, small.height, small.crop) == (150, 113, None)  # fit: as before
    assert (avatar.width, avatar.height) == (256, 256)
    assert (og.width, og.height, og.format) == (1200, 630, "jpeg")
    assert og.crop == Crop(x=0, y=454, width=4032, height=2117)  # centred, source pixels
    decoded = pyvips.Image.new_from_buffer(og.data, "")
    assert (decoded.width, decoded.height) == (1200, 630)
    assert {thumb.kind for thumb in result.thumbnails} == {"image"}


def test_a_small_original_keeps_the_boxs_aspect_and_is_never_upscaled(
        engine: LocalEngine, corpus: Path) -> None:
    _, avatar, og = render(engine, corpus / "images/camera/Canon_40D.jpg", JOB).thumbnails
    assert (avatar.width, avatar.height) == (68, 68)  # the original is 100x68
    assert (avatar.crop.width, avatar.crop.height) == (68, 68)  # placed by its interest
    assert (og.width, og.height) == (100, 52)  # 1200:630 inside 100x68
    assert og.crop == Crop(x=0, y=8, width=100, height=52)


def test_the_decode_covers_a_cover_box_larger_than_every_fit_box() -> None:
    sizes = ThumbnailSize.parse_list("small:150x150,og:1200x630:cover")
    box = largest_box(4032, 3024, sizes)
    assert (box.width, box.height) == (1200, 900)  # 1200 wide covers 1200x630
    assert largest_box(4032, 3024, ThumbnailSize.parse_list("a:150x150,b:480x480")).name == "b"
    assert encode.scale_for(100, 68, largest_box(100, 68, sizes)) == 1  # as stored


def halves(path: Path) -> Path:
    """1600x900: red left half, blue right half."""
    xyz = pyvips.Image.xyz(1600, 900)
    left = xyz[0] < 800
    image = left.ifthenelse([255, 0, 0], [0, 0, 255]).cast("uchar")
    image.copy(interpretation="srgb").write_to_file(str(path))
    return path


def test_the_focus_moves_the_crop(engine: LocalEngine, tmp_path: Path) -> None:
    path = halves(tmp_path / "halves.png")
    [left] = render(engine, path, [SQUARE], Focus(0.0, 0.5)).thumbnails
    [right] = render(engine, path, [SQUARE], Focus(1.0, 0.5)).thumbnails
    [middle] = render(engine, path, [SQUARE]).thumbnails
    assert left.crop == Crop(x=0, y=0, width=900, height=900)
    assert right.crop == Crop(x=700, y=0, width=900, height=900)
    assert middle.crop == Crop(x=350, y=0, width=900, height=900)
    assert pixels(left)[:, :200, 0].min() > 240  # the red half
    assert pixels(right)[:, -200:, 2].min() > 240  # the blue half


def test_a_smart_crop_contains_a_small_bright_subject_near_an_edge(
        engine: LocalEngine, tmp_path: Path) -> None:
    rng = np.random.default_rng(14)
    canvas = rng.normal(60, 6, (900, 1600, 3)).clip(0, 255).astype(np.uint8)  # dull, textured
    yy, xx = np.mgrid[0:900, 0:1600]
    disc = (xx - 1500) ** 2 + (yy - 200) ** 2 < 45 ** 2  # 90 px, 50 px from the right edge
    canvas[disc] = (255, 200, 0)
    path = tmp_path / "subject.png"
    pyvips.Image.new_from_array(canvas, interpretation="srgb").write_to_file(str(path))
    [square, wide] = render(engine, path, [SMART_SQUARE, SMART_WIDE]).thumbnails
    for thumb in (square, wide):
        crop = thumb.crop
        assert crop.x <= 1455, thumb.size.name
        assert crop.x + crop.width >= 1545, thumb.size.name
        assert crop.y <= 155, thumb.size.name
        assert crop.y + crop.height >= 245, thumb.size.name
    assert square.crop.x == 700  # the centred window (350..1250) would have missed it
    shown = pixels(square)
    assert (shown[..., 2] < 40).sum() > 200  # the subject's yellow is in the thumbnail


def test_every_face_stays_inside_smart_crops(engine: LocalEngine, corpus: Path) -> None:
    for name in PHOTOS_WITH_FACES:
        upright = pyvips.Image.thumbnail(str(corpus / name), 480)  # thumbnail turns it upright
        faces = find_faces(upright.colourspace("b-w")[0].numpy().astype(np.uint8))
        assert faces, name
        result = render(engine, corpus / name, [SMART_SQUARE, SMART_WIDE])
        width, height = result.metadata["width"], result.metadata["height"]
        for thumb in result.thumbnails:
            assert thumb.crop is not None
            for face in faces:
                assert inside(face, thumb.crop, width, height), (name, thumb.size.name)


def test_faces_win_over_the_attention_centre(engine: LocalEngine, corpus: Path,
                                             tmp_path: Path) -> None:
    """A portrait at the left of a wide picture, a bright disc at the right: the square crop
    goes where the face is."""
    face = pyvips.Image.thumbnail(str(corpus / "images/formats/png/hopper.png"), 600,
                                  size="force")[:3]
    canvas = pyvips.Image.black(2400, 600, bands=3) + 40
    xyz = pyvips.Image.xyz(2400, 600)
    disc = ((xyz[0] - 2250) ** 2 + (xyz[1] - 300) ** 2) < 80 ** 2
    canvas = disc.ifthenelse([255, 230, 0], canvas).cast("uchar").insert(face, 0, 0)
    path = tmp_path / "face-and-disc.png"
    canvas.copy(interpretation="srgb").write_to_file(str(path))
    [square] = render(engine, path, [SMART_SQUARE]).thumbnails
    small = pyvips.Image.thumbnail(str(path), 480).colourspace("b-w")[0]
    [found] = find_faces(small.numpy())
    assert inside(found, square.crop, 2400, 600)
    assert square.crop.x < 300  # the disc alone would have pulled it to the right edge


def test_the_crop_is_recorded_in_upright_source_pixels(engine: LocalEngine,
                                                       corpus: Path) -> None:
    """Landscape_6.jpg is stored 1200x1800 with EXIF orientation 6 (upright 1800x1200);
    Landscape_0.jpg is the same picture stored upright."""
    rotated = corpus / "images/orientation/Landscape_6.jpg"
    [thumb] = render(engine, rotated, [SQUARE], Focus(0.0, 0.5)).thumbnails
    assert thumb.crop == Crop(x=0, y=0, width=1200, height=1200)
    [thumb] = render(engine, rotated, [ThumbnailSize.parse("og:1200x630:cover")],
                     Focus(0.75, 0.25)).thumbnails
    assert thumb.crop == Crop(x=0, y=0, width=1800, height=945)
    [thumb] = render(engine, rotated, [SQUARE], Focus(0.75, 0.5)).thumbnails
    assert thumb.crop == Crop(x=600, y=0, width=1200, height=1200)
    reference = pyvips.Image.new_from_file(str(corpus / "images/orientation/Landscape_0.jpg"))
    window = reference.extract_area(600, 0, 1200, 1200).thumbnail_image(256)
    difference = np.abs(pixels(thumb).astype(int) - window.numpy().astype(int)).mean()
    assert difference < 6  # the same part of the picture (JPEG noise aside)


def test_the_pillow_path_crops_alike(engine: LocalEngine, corpus: Path) -> None:
    path = corpus / "images/formats/heic/iphone_13_pro_max.HEIC"  # 3024x4032 upright
    [small, og] = render(engine, path, ThumbnailSize.parse_list(
        "small:150x150,og:1200x630:cover")).thumbnails
    assert (small.width, small.height) == (113, 150)
    assert (og.width, og.height) == (1200, 630)
    assert og.crop == Crop(x=0, y=1222, width=3024, height=1588)


def test_a_video_frame_crops_alike(engine: LocalEngine, corpus: Path) -> None:
    videos = sorted((corpus / "videos").rglob("*.mp4"))
    if not videos:
        pytest.skip("no MP4 in the corpus")
    result = render(engine, videos[0], [SQUARE, SMART_WIDE])
    width, height = result.metadata["width"], result.metadata["height"]
    for thumb in result.thumbnails:
        assert thumb.kind == "image"
        assert thumb.crop is not None
        assert thumb.crop.x + thumb.crop.width <= width
        assert thumb.crop.y + thumb.crop.height <= height
        assert thumb.width * thumb.size.height == pytest.approx(
            thumb.height * thumb.size.width, rel=0.02)


def test_the_interest_is_found_once_per_job(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = encode.interest_of
    monkeypatch.setattr(encode, "interest_of", lambda image: calls.append(1) or real(image))
    base = pyvips.Image.xyz(800, 600)[0].cast("uchar").bandjoin([128, 60]).copy(
        interpretation="srgb")
    sizes = ThumbnailSize.parse_list("a:64x64:smart,b:256x256:smart,c:640x360:smart,d:100x100")
    render_sizes(base, sizes, OutputSpec(), framing=Framing(1600, 1200))
    assert len(calls) == 1
    render_sizes(base, ThumbnailSize.parse_list("a:64x64:cover,d:100x100"), OutputSpec())
    assert len(calls) == 1  # no smart size: no attention, no faces


def test_opencv_loads_only_for_smart_sizes(tmp_path: Path) -> None:
    path = halves(tmp_path / "halves.png")
    without_smart, with_smart = modules_loaded(
        ["cv2"], Step([path], "a:64x64:cover,b:99x99"), Step([path], "a:64x64:smart"))
    assert without_smart == {"cv2": False}
    assert with_smart["cv2"]


def test_hdr_gain_maps_are_cropped_with_the_picture() -> None:
    from media_worker.engines.color.signal import Signal, hdr_renditions

    y, x = np.mgrid[0:480, 0:640] / np.array([480, 640])[:, None, None]
    code = np.stack([0.45 + 0.0 * x, 0.45 + 0.0 * y, 0.45 + 0.0 * x], axis=-1)
    code[:, :160] = 0.9  # a 4,000-nit band on the left quarter only
    sdr, hdr = hdr_renditions(code.astype(np.float32), Signal(transfer="pq", primaries="bt2020"))
    largest = pyvips.Image.new_from_array(sdr, interpretation="srgb")
    output = OutputSpec(format=ThumbnailFormat.JPEG, quality=90, hdr_output="gainmap")
    left, right = (render_sizes(largest, [SQUARE], output, hdr=hdr,
                                framing=Framing(640, 480, Focus(fx, 0.5)))[0]
                   for fx in (0.0, 1.0))
    assert left.crop == Crop(x=0, y=0, width=480, height=480)
    assert right.crop == Crop(x=160, y=0, width=480, height=480)
    shown_left = pyvips.Image.uhdrload_buffer(left.data).uhdr2scRGB().numpy()
    shown_right = pyvips.Image.uhdrload_buffer(right.data).uhdr2scRGB().numpy()
    band = 256 * 160 // 480  # the bright band's width in the left thumbnail
    assert shown_left[:, : band - 8].mean() > 4 * shown_left[:, band + 8:].mean()
    # the right crop has no band: its gain map is flat, not the uncropped picture's
    assert shown_right.max() < 2 * shown_right.mean()
