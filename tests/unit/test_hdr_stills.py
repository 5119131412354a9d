"""HDR and wide-gamut stills through the in-process engine (issue 13's quality bar for stills).

The reference is written here, apart from the engine's colour code: colour-science's PQ and HLG
EOTFs and RGB_to_RGB, BT.2390's EETF restated from the Recommendation, the same
brightest-channel tone mapping and constant-luminance gamut compression, all on the code values
the test decodes itself (libvips, 16-bit, upright, resized to the largest box). The engine's
thumbnail (lossless PNG) must be within mean ΔE2000 6 of it, with the standard deviation of L*
(contrast) and the mean chroma within 20%; a naive rendering (PQ code values shown as sRGB,
the issue's "grey and flat") must fail the same bar, so the bar can fail.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pillow_heif
import pytest
import pyvips
from PIL import Image, ImageCms

from media_worker.config import ThumbnailFormat
from media_worker.engines.color.containers import heif_colour, png_colour
from media_worker.engines.color.detect_still import detect_still
from media_worker.engines.color.icc import COLORANTS_D50, read_icc
from media_worker.engines.color.p3 import p3_profile_bytes
from media_worker.engines.color.signal import Signal
from media_worker.engines.images import pillow as pillow_path
from media_worker.engines.images import vips as vips_path
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, RenderResult, SourceMedia
from media_worker.engines.sniff import sniff
from media_worker.types import ThumbnailSize
from tests.unit.fresh_interpreter import Step, modules_loaded
from tests.unit.test_fidelity import ssim

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import colour

BOX = ThumbnailSize(name="large", width=1280, height=1280)
MEDIUM = ThumbnailSize(name="medium", width=480, height=480)
MAX_MEAN_DELTA_E = 6.0
MAX_RELATIVE_GAP = 0.20  # contrast (std of L*) and mean chroma against the reference
SDR_WHITE = 100.0
HLG_DISPLAY_PEAK = 1000.0
DEFAULT_PQ_PEAK = 1000.0

HDR_FILES = {  # corpus path: (transfer, primaries, peak the file states (MaxCLL))
    "images/formats/avif/10bit-HDR-P3-nclx.avif": ("pq", "p3", 712.0),
    "images/hdr/colors_wcg_hdr_rec2020.avif": ("pq", "bt2020", 506.0),
    "images/hdr/seine_hdr_gainmap_srgb.avif": ("pq", "bt709", 707.0),
}
GAIN_MAP_SDR_BASES = [  # the SDR base is the camera's SDR rendition: thumbnailed as it is
    "images/camera/ultraHDR.jpg",
    "images/hdr/apple_gainmap_new.jpg",
    "images/hdr/Ultra_HDR_Samples_Originals_05.jpg",
    "images/hdr/seine_sdr_gainmap_srgb.avif",
    "images/hdr/pug.heic",
    "images/formats/heic/iphone_13_pro_max.HEIC",
]
EXPECTED_HDR_METADATA = {  # as MANIFEST.tsv describes each file
    "images/formats/avif/10bit-HDR-P3-nclx.avif": ("pq", "p3", False),
    "images/hdr/colors_wcg_hdr_rec2020.avif": ("pq", "bt2020", False),
    "images/hdr/seine_hdr_gainmap_srgb.avif": ("pq", "bt709", True),
    "images/hdr/seine_sdr_gainmap_srgb.avif": ("sdr", "bt709", True),
    "images/camera/ultraHDR.jpg": ("sdr", "bt709", True),  # sRGB ICC
    "images/hdr/Ultra_HDR_Samples_Originals_05.jpg": ("sdr", "p3", True),
    "images/hdr/apple_gainmap_new.jpg": ("sdr", "p3", True),
    "images/hdr/pug.heic": ("sdr", "p3", True),
    "images/formats/heic/iphone_13_pro_max.HEIC": ("sdr", "p3", True),
    "images/formats/heic/IMG_5195.HEIC": ("sdr", "p3", False),
    "images/formats/heic/cat.hif": ("sdr", "bt709", False),  # 10-bit, nclx 1/13/5
    "images/formats/heic/RGBA_10__128x128.heif": ("sdr", "bt709", False),
    "images/formats/avif/fox.profile0.10bpc.yuv420.avif": ("sdr", "bt709", False),
    "images/formats/avif/fox.profile2.12bpc.yuv422.avif": ("sdr", "bt709", False),
    "images/formats/jxl/16bit-HDR-P3-nclx.jxl": ("sdr", "p3", False),  # sRGB transfer
    "images/formats/png/p3.png": ("sdr", "p3", False),
    "images/formats/jpeg/xmp_test.jpg": ("sdr", "adobe-rgb", False),
    "images/orientation/Landscape_0.jpg": ("sdr", "bt709", False),
}
SDR_FOLDERS = ("images/orientation", "images/camera", "images/formats", "images/hdr")
NOT_SDR = {*HDR_FILES, "images/hdr/200MP.heic"}  # 200 MP: issue 16


@pytest.fixture(scope="module")
def engine() -> LocalEngine:
    return LocalEngine(max_pixels=100_000_000, max_video_seconds=3600)


def render(engine: LocalEngine, path: Path, sizes: list[ThumbnailSize] | None = None,
           **options: object) -> RenderResult:
    output = OutputSpec(ThumbnailFormat.PNG, 80, **options)  # type: ignore[arg-type]
    return engine.render(SourceMedia(path, "media", path.name), sizes or [BOX], output)


def pixels(data: bytes) -> np.ndarray:
    image = pyvips.Image.new_from_buffer(data, "")
    if image.hasalpha():
        image = image.flatten(background=[255, 255, 255])
    return image.numpy()


# --- the reference, written apart from the engine -------------------------------------------
COLOURSPACES = {"bt709": "ITU-R BT.709", "p3": "Display P3", "bt2020": "ITU-R BT.2020"}


def decoded_code_values(path: Path, box: ThumbnailSize) -> np.ndarray:
    """The picture as coded (16-bit, top-aligned 10-bit samples), upright, resized to fit."""
    image = pyvips.Image.new_from_file(str(path))
    bits = int(image.get("bits-per-sample")) if image.get_typeof("bits-per-sample") else 16
    scale = min(box.width / image.width, box.height / image.height, 1.0)
    if scale < 1:
        image = image.resize(scale)
    return image.numpy()[..., :3].astype(np.float64) / (((1 << bits) - 1) << (16 - bits))


def eetf_bt2390(nits: np.ndarray, source_peak: float, target_peak: float) -> np.ndarray:
    """ITU-R BT.2390-4, section 5.4.1, with black at 0: the hermite knee in the PQ domain."""
    pq = colour.models.eotf_inverse_ST2084
    source = pq(source_peak)
    e1 = pq(nits) / source
    max_lum = pq(target_peak) / source
    ks = 1.5 * max_lum - 0.5
    t = np.clip((e1 - ks) / (1 - ks), 0, 1)
    p = ((2 * t**3 - 3 * t**2 + 1) * ks + (t**3 - 2 * t**2 + t) * (1 - ks)
         + (-2 * t**3 + 3 * t**2) * max_lum)
    e2 = np.where(e1 < ks, e1, p)
    return colour.models.eotf_ST2084(e2 * source)


def reference_sdr(code: np.ndarray, transfer: str, primaries: str,
                  peak: float | None) -> np.ndarray:
    """uint8 sRGB: EOTF, gamut to BT.709 (out-of-gamut pulled to grey at equal luminance),
    BT.2390 on the brightest channel (hue kept), sRGB OETF."""
    if transfer == "pq":
        nits = colour.models.eotf_ST2084(code)
        source_peak = peak or DEFAULT_PQ_PEAK
    else:
        nits = colour.models.eotf_BT2100_HLG(code, L_B=0, L_W=HLG_DISPLAY_PEAK)
        source_peak = HLG_DISPLAY_PEAK
    rgb = colour.RGB_to_RGB(nits, colour.RGB_COLOURSPACES[COLOURSPACES[primaries]],
                            colour.RGB_COLOURSPACES["ITU-R BT.709"])
    luminance = np.maximum(rgb @ np.array([0.2126, 0.7152, 0.0722]), 0)[..., None]
    lowest = rgb.min(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.where(lowest < 0, luminance / (luminance - lowest), 1.0)
    rgb = np.maximum(luminance + np.nan_to_num(fraction) * (rgb - luminance), 0)
    brightest = np.maximum(rgb.max(axis=-1, keepdims=True), 1e-6)
    mapped = eetf_bt2390(brightest, max(source_peak, SDR_WHITE), SDR_WHITE)
    relative = np.clip(rgb * mapped / brightest / SDR_WHITE, 0, 1)
    return np.rint(colour.models.eotf_inverse_sRGB(relative) * 255).astype(np.uint8)


def lab(srgb8: np.ndarray) -> np.ndarray:
    linear = colour.models.eotf_sRGB(srgb8[..., :3].astype(np.float64) / 255)
    xyz = colour.RGB_to_XYZ(linear, colour.RGB_COLOURSPACES["sRGB"])
    return colour.XYZ_to_Lab(xyz, colour.RGB_COLOURSPACES["sRGB"].whitepoint)


def quality_gaps(candidate: np.ndarray, reference: np.ndarray) -> tuple[float, float, float]:
    """Mean ΔE2000, and the relative gaps of std(L*) and of mean chroma."""
    assert candidate.shape[:2] == reference.shape[:2]
    a, b = lab(candidate), lab(reference)
    delta_e = float(np.mean(colour.delta_E(a, b, method="CIE 2000")))
    contrast = abs(a[..., 0].std() - b[..., 0].std()) / b[..., 0].std()
    chroma_a, chroma_b = (np.hypot(x[..., 1], x[..., 2]).mean() for x in (a, b))
    return delta_e, float(contrast), float(abs(chroma_a - chroma_b) / chroma_b)


def passes(gaps: tuple[float, float, float]) -> bool:
    delta_e, contrast, chroma = gaps
    return delta_e <= MAX_MEAN_DELTA_E and contrast <= MAX_RELATIVE_GAP \
        and chroma <= MAX_RELATIVE_GAP


# --- PQ / HLG stills ------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(HDR_FILES))
def test_hdr_corpus_still_matches_the_reference_tone_mapping(
        engine: LocalEngine, corpus: Path, name: str) -> None:
    transfer, primaries, peak = HDR_FILES[name]
    result = render(engine, corpus / name)
    thumbnail = pixels(result.thumbnails[0].data)
    code = decoded_code_values(corpus / name, BOX)
    reference = reference_sdr(code, transfer, primaries, peak)
    gaps = quality_gaps(thumbnail, reference)
    naive = np.rint(code * 255).astype(np.uint8)  # PQ shown as sRGB: what libvips gave
    naive_gaps = quality_gaps(naive, reference)
    print(f"\n{name}: ΔE {gaps[0]:.3f}, contrast gap {gaps[1]:.2%}, chroma gap {gaps[2]:.2%}"
          f" (naive: ΔE {naive_gaps[0]:.1f}, {naive_gaps[1]:.0%}, {naive_gaps[2]:.0%})")
    assert passes(gaps), gaps
    assert not passes(naive_gaps), "the bar cannot tell grey-and-flat"


def synthetic_hdr_heic(folder: Path, transfer: str, source: Path) -> Path:
    """A 10-bit HEIC made from a real photo: sRGB light with SDR white at 203 nits (BT.2408)
    and its highlights stretched towards 1,000 nits, in BT.2020, PQ- or HLG-coded, nclx-tagged
    (the corpus has no PQ or HLG HEIC)."""
    photo = pyvips.Image.thumbnail(str(source), 640).numpy()[..., :3] / 255
    linear = colour.models.eotf_sRGB(photo)
    nits = 203 * linear * (1 + 4 * linear**4)
    bt2020 = np.maximum(colour.RGB_to_RGB(nits, colour.RGB_COLOURSPACES["ITU-R BT.709"],
                                          colour.RGB_COLOURSPACES["ITU-R BT.2020"]), 0)
    if transfer == "pq":
        code, number = colour.models.eotf_inverse_ST2084(bt2020), 16
    else:
        with np.errstate(invalid="ignore"):  # colour evaluates both branches of its np.where
            code = colour.models.eotf_inverse_BT2100_HLG(bt2020, L_B=0, L_W=HLG_DISPLAY_PEAK)
        number = 18
    samples = (np.rint(np.clip(code, 0, 1) * 1023).astype(np.uint16) << 6)
    heif = pillow_heif.from_bytes("RGB;16", (samples.shape[1], samples.shape[0]),
                                  np.ascontiguousarray(samples).tobytes())
    heif.info["nclx_profile"] = {"color_primaries": 9, "transfer_characteristics": number,
                                 "matrix_coefficients": 9, "full_range_flag": 1}
    path = folder / f"synthetic-{transfer}.heic"
    heif.save(path, quality=-1)
    return path


@pytest.mark.parametrize("transfer", ["pq", "hlg"])
def test_pq_and_hlg_heic_take_the_pillow_path_at_full_depth(
        engine: LocalEngine, corpus: Path, tmp_path: Path, transfer: str) -> None:
    path = synthetic_hdr_heic(tmp_path, transfer, corpus / "images/camera/DSCN0010.jpg")
    result = render(engine, path)
    assert result.metadata["hdr"] == {"transfer": transfer, "primaries": "bt2020",
                                      "dolbyVision": None, "gainMap": False}
    heif = pillow_heif.open_heif(path, convert_hdr_to_8bit=False)
    code = np.asarray(heif)[..., :3].astype(np.float64) / (1023 << 6)  # no resize: 640 px
    reference = reference_sdr(code, transfer, "bt2020", None)
    gaps = quality_gaps(pixels(result.thumbnails[0].data), reference)
    print(f"\nsynthetic {transfer} HEIC: ΔE {gaps[0]:.3f}, contrast {gaps[1]:.2%}, "
          f"chroma {gaps[2]:.2%}")
    assert passes(gaps), gaps


def test_pq_png_tagged_by_cicp_is_tone_mapped(engine: LocalEngine, tmp_path: Path) -> None:
    """A 16-bit PNG whose cICP chunk says BT.2020 + PQ goes through the HDR path of libvips
    (which itself ignores cICP and would show the code values as sRGB)."""
    ramp = np.linspace(0, 0.8, 256)
    code = np.stack([*np.meshgrid(ramp, ramp)[::-1], np.full((256, 256), 0.5)], axis=-1)
    samples = np.rint(code * 65535).astype(np.uint16)
    plain = tmp_path / "plain.png"
    pyvips.Image.new_from_array(samples).copy(interpretation="rgb16").write_to_file(str(plain))
    tagged = tmp_path / "pq.png"
    tagged.write_bytes(with_cicp(plain.read_bytes(), (9, 16, 0, 1)))
    assert png_colour(tagged).nclx is not None
    result = render(engine, tagged)
    assert result.metadata["hdr"]["transfer"] == "pq"
    reference = reference_sdr(samples.astype(np.float64) / 65535, "pq", "bt2020", None)
    assert passes(quality_gaps(pixels(result.thumbnails[0].data), reference))
    assert render(engine, plain).metadata["hdr"]["transfer"] == "sdr"


def with_cicp(png: bytes, values: tuple[int, int, int, int]) -> bytes:
    """`png` with a cICP chunk after IHDR."""
    import zlib

    end_of_ihdr = 8 + 8 + 13 + 4
    body = b"cICP" + bytes(values)
    chunk = (4).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")
    return png[:end_of_ihdr] + chunk + png[end_of_ihdr:]


def test_hdr_path_keeps_alpha_and_orientation(engine: LocalEngine, tmp_path: Path) -> None:
    """A PQ picture (said by its ICC profile's cicp tag) with alpha and EXIF orientation 6
    comes out upright with its alpha, through the full-depth path."""
    code = np.zeros((40, 80, 4), dtype=np.uint16)
    code[..., 0] = int(0.6 * 65535)  # red
    code[:, :40, 3] = 65535  # left half opaque, right half transparent
    image = pyvips.Image.new_from_array(code).copy(interpretation="rgb16")
    image.set_type(pyvips.GValue.gint_type, "orientation", 6)
    image.set_type(pyvips.GValue.blob_type, "icc-profile-data", icc_with_cicp(9, 16))
    path = tmp_path / "pq.tif"
    image.write_to_file(str(path))
    result = render(engine, path)
    assert result.metadata["hdr"]["transfer"] == "pq"
    out = pyvips.Image.new_from_buffer(result.thumbnails[0].data, "")
    assert (out.width, out.height) == (40, 80)
    alpha = out.numpy()[..., 3]
    assert alpha[0].tolist() == [255] * 40  # opaque half on top once turned 90° clockwise
    assert alpha[-1].tolist() == [0] * 40
    assert out.numpy()[0, 0, 0] > 150


# --- gain-map stills: the SDR base, as it is ------------------------------------------------
def srgb_reference(path: Path, size: tuple[int, int]) -> np.ndarray:
    """The SDR base decoded by Pillow (pillow-heif for HEIF), converted from its ICC profile
    to sRGB by LittleCMS, resized with Lanczos: nothing of the engine's code."""
    pillow_heif.register_heif_opener()
    with Image.open(path) as opened:
        opened.seek(0)
        icc = opened.info.get("icc_profile")
        picture = opened.convert("RGB")
    if icc:
        picture = ImageCms.profileToProfile(
            picture, ImageCms.ImageCmsProfile(io.BytesIO(icc)),
            ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")), outputMode="RGB")
    from PIL import ImageOps

    picture = ImageOps.exif_transpose(picture)
    return np.asarray(picture.resize(size, Image.Resampling.LANCZOS))


@pytest.mark.parametrize("name", GAIN_MAP_SDR_BASES)
def test_gain_map_still_is_its_sdr_base(engine: LocalEngine, corpus: Path, name: str) -> None:
    result = render(engine, corpus / name, [MEDIUM])
    assert result.metadata["hdr"]["gainMap"] is True
    assert result.metadata["hdr"]["transfer"] == "sdr"
    thumbnail = pixels(result.thumbnails[0].data)
    reference = srgb_reference(corpus / name, (thumbnail.shape[1], thumbnail.shape[0]))
    gaps = quality_gaps(thumbnail, reference)
    print(f"\n{name}: ΔE {gaps[0]:.3f}, contrast gap {gaps[1]:.2%}, chroma gap {gaps[2]:.2%}")
    assert passes(gaps), gaps
    # The gain map applied (HDR light squeezed into SDR) would brighten the picture: the
    # thumbnail's mean lightness stays the base's.
    assert abs(lab(thumbnail)[..., 0].mean() - lab(reference)[..., 0].mean()) < 2


# --- metadata.hdr -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(EXPECTED_HDR_METADATA))
def test_metadata_hdr_says_what_the_manifest_says(engine: LocalEngine, corpus: Path,
                                                  name: str) -> None:
    transfer, primaries, gain_map = EXPECTED_HDR_METADATA[name]
    result = render(engine, corpus / name, [ThumbnailSize(name="tiny", width=64, height=64)])
    assert result.metadata["hdr"] == {"transfer": transfer, "primaries": primaries,
                                      "dolbyVision": None, "gainMap": gain_map}


def test_200mp_samsung_heic_signal_from_its_header(corpus: Path) -> None:
    """Too big to render today (issue 16); its header still reads as a gain-map SDR photo."""
    path = corpus / "images/hdr/200MP.heic"
    container = heif_colour(path)
    assert container.gain_map
    assert detect_still(path, sniff(path)).to_metadata() == {
        "transfer": "sdr", "primaries": "p3", "dolbyVision": None, "gainMap": True}


def test_heif_clli_is_the_tone_mapping_peak(corpus: Path) -> None:
    path = corpus / "images/formats/avif/10bit-HDR-P3-nclx.avif"
    signal = detect_still(path, sniff(path))
    assert signal == Signal("pq", "p3", "bt601", 712.0)


def test_icc_colorant_table_matches_bradford_adapted_primaries() -> None:
    d65, d50 = (colour.xy_to_XYZ(xy) for xy in ([0.3127, 0.3290], [0.3457, 0.3585]))
    bradford = colour.adaptation.matrix_chromatic_adaptation_VonKries(d65, d50, "Bradford")
    names = {"bt709": "ITU-R BT.709", "p3": "Display P3", "bt2020": "ITU-R BT.2020",
             "adobe-rgb": "Adobe RGB (1998)"}
    for name, expected in COLORANTS_D50.items():
        matrix = bradford @ colour.RGB_COLOURSPACES[names[name]].matrix_RGB_to_XYZ
        for column, want in zip(matrix.T, expected, strict=True):
            np.testing.assert_allclose(column[:2] / column.sum(), want, atol=2e-4)


def icc_with_cicp(primaries: int, transfer: int) -> bytes:
    """libvips' P3 profile with an ICC v4.4 `cicp` tag appended (its table grows by one entry,
    so every tag moves down 12 bytes)."""
    profile = p3_profile_bytes()
    tag = b"cicp" + bytes(4) + bytes([primaries, transfer, 0, 1])
    count = int.from_bytes(profile[128:132], "big")
    entries = bytearray(profile[132:132 + 12 * count])
    for index in range(count):
        offset = int.from_bytes(entries[index * 12 + 4:index * 12 + 8], "big") + 12
        entries[index * 12 + 4:index * 12 + 8] = offset.to_bytes(4, "big")
    body = profile[132 + 12 * count:]
    new_offset = 132 + 12 * (count + 1) + len(body)
    entries += b"cicp" + new_offset.to_bytes(4, "big") + len(tag).to_bytes(4, "big")
    rebuilt = profile[:128] + (count + 1).to_bytes(4, "big") + bytes(entries) + body + tag
    return len(rebuilt).to_bytes(4, "big") + rebuilt[4:]


def test_icc_cicp_tag_names_an_hdr_transfer() -> None:
    facts = read_icc(icc_with_cicp(9, 16))
    assert facts is not None
    assert (facts.primaries, facts.transfer) == ("bt2020", "pq")
    assert read_icc(icc_with_cicp(9, 18)).transfer == "hlg"  # type: ignore[union-attr]
    plain = read_icc(p3_profile_bytes())
    assert plain is not None
    assert (plain.primaries, plain.transfer) == ("p3", None)
    assert read_icc(b"not a profile") is None


# --- SDR stills: exactly today's pictures --------------------------------------------------
def sdr_corpus(corpus: Path) -> Iterator[Path]:
    for folder in SDR_FOLDERS:
        for path in sorted((corpus / folder).rglob("*")):
            name = path.relative_to(corpus).as_posix()
            if path.is_file() and name not in NOT_SDR:
                yield path


def test_sdr_corpus_stills_are_unchanged(engine: LocalEngine, corpus: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Every SDR still of the corpus gives today's thumbnail (SSIM ≥ 0.98 against the engine
    with HDR handling switched off); the PQ stills, for contrast, do not — so the comparison
    can fail."""
    files = list(sdr_corpus(corpus))
    current = {path: render(engine, path, [MEDIUM]) for path in files}
    hdr_paths = [corpus / name for name in HDR_FILES]
    current_hdr = {path: render(engine, path, [MEDIUM]) for path in hdr_paths}
    monkeypatch.setattr(vips_path, "detect_still", lambda *_a, **_k: Signal())
    monkeypatch.setattr(pillow_path, "detect_still", lambda *_a, **_k: Signal())
    changed = []
    for path in files:
        before = render(engine, path, [MEDIUM])
        score = ssim(*(pyvips.Image.new_from_buffer(r.thumbnails[0].data, "")
                       for r in (current[path], before)))
        if score < 0.98:
            changed.append(f"{path.relative_to(corpus)}: SSIM {score:.3f}")
    assert not changed, changed
    assert len(files) > 80
    for path in hdr_paths:
        before = render(engine, path, [MEDIUM])
        score = ssim(*(pyvips.Image.new_from_buffer(r.thumbnails[0].data, "")
                       for r in (current_hdr[path], before)))
        assert score < 0.98, f"{path.name}: tone mapping left SSIM at {score:.3f}"


HDR_MATHS = ["media_worker.engines.images.hdr", "media_worker.engines.color.tonemap"]


def test_sdr_stills_never_load_the_hdr_maths(corpus: Path) -> None:
    """SDR jobs pay nothing for HDR: its tone mapping is not even imported (a fresh
    interpreter; numpy itself loads for every picture's perceptual hash)."""
    names = ["images/camera/ultraHDR.jpg", "images/formats/heic/IMG_5195.HEIC",
             "images/formats/png/p3.png", "images/hdr/seine_sdr_gainmap_srgb.avif"]
    paths = [corpus / name for name in names if (corpus / name).exists()]
    [loaded] = modules_loaded(HDR_MATHS, Step(paths, color="keep-p3"))
    assert not any(loaded.values())


# --- THUMBNAIL_COLOR=keep-p3 ----------------------------------------------------------------
P3_ORIGINALS = ["images/formats/png/p3.png", "images/formats/heic/IMG_5195.HEIC",
                "images/hdr/apple_gainmap_new.jpg"]
SIZES = ThumbnailSize.parse_list("small:150x150,medium:480x480")


@pytest.mark.parametrize("name", P3_ORIGINALS)
@pytest.mark.parametrize("fmt", [ThumbnailFormat.PNG, ThumbnailFormat.WEBP,
                                 ThumbnailFormat.JPEG, ThumbnailFormat.AVIF])
def test_keep_p3_embeds_the_compact_profile_in_every_size(
        engine: LocalEngine, corpus: Path, name: str, fmt: ThumbnailFormat) -> None:
    path = corpus / name
    output = OutputSpec(fmt, 80, color="keep-p3")
    kept = engine.render(SourceMedia(path, "m", "k"), SIZES, output)
    converted = engine.render(SourceMedia(path, "m", "k"), SIZES, OutputSpec(fmt, 80))
    assert len(p3_profile_bytes()) < 600
    for p3_thumb, srgb_thumb in zip(kept.thumbnails, converted.thumbnails, strict=True):
        image = pyvips.Image.new_from_buffer(p3_thumb.data, "")
        plain = pyvips.Image.new_from_buffer(srgb_thumb.data, "")
        assert image.get("icc-profile-data") == p3_profile_bytes()
        assert not plain.get_typeof("icc-profile-data")
        for key in ("exif-data", "xmp-data"):
            assert not image.get_typeof(key)
        if fmt is ThumbnailFormat.PNG:  # lossless: the colours themselves can be compared
            # Shown through its profile, the P3 thumbnail looks like the sRGB one, and the
            # pixels are not the sRGB ones merely relabelled.
            shown = image.icc_transform("srgb").numpy()[..., :3]
            delta_e = colour.delta_E(lab(shown), lab(plain.numpy()), method="CIE 2000")
            relabelled = colour.delta_E(lab(image.numpy()), lab(plain.numpy()),
                                        method="CIE 2000")
            assert delta_e.mean() < 1.0, delta_e.mean()
            assert relabelled.mean() > delta_e.mean() + 0.5


@pytest.mark.parametrize("name", ["images/formats/jpeg/xmp_test.jpg",  # Adobe RGB
                                  "images/camera/ultraHDR.jpg",  # sRGB ICC
                                  "images/orientation/Landscape_0.jpg",  # untagged
                                  "images/formats/avif/10bit-HDR-P3-nclx.avif"])  # HDR
def test_keep_p3_leaves_every_other_original_as_srgb(engine: LocalEngine, corpus: Path,
                                                     name: str) -> None:
    path = corpus / name
    kept = render(engine, path, [MEDIUM], color="keep-p3")
    plain = render(engine, path, [MEDIUM])
    assert kept.thumbnails[0].data == plain.thumbnails[0].data
    assert not pyvips.Image.new_from_buffer(kept.thumbnails[0].data, "").get_typeof(
        "icc-profile-data")


@pytest.mark.parametrize("name", ["images/hdr/apple_gainmap_new.jpg", "images/camera/ultraHDR.jpg"])
def test_pillow_path_sees_jpeg_gain_maps_too(corpus: Path, name: str) -> None:
    """Pillow decodes JPEGs libvips gives up on; the gain map is still seen there (Ultra HDR's
    XMP on the primary, Apple's on the second MPF picture) and the base stays SDR."""
    path = corpus / name
    result = pillow_path.render_with_pillow(path, sniff(path), [MEDIUM], OutputSpec(),
                                            max_pixels=100_000_000, budget=None)
    assert result.metadata["hdr"]["gainMap"] is True
    assert result.metadata["hdr"]["transfer"] == "sdr"
