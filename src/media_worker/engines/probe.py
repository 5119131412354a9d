"""What an original is, from its header: a picture's size, orientation, alpha and pages; a
video's stream, size at display aspect, duration, codec and frame rate; and the limits on them.

One module for both engines, so they cannot drift apart: the local engine reads these before it
decodes, the imagor engine instead of decoding (to enforce the limits, fill the row's metadata
and know what size the service must answer). PyAV is imported by the video functions only, on
the first video: FFmpeg's libraries add to the memory of every decoder process, which a worker
that only ever sees photos should not pay.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

import pyvips
from PIL import Image

from media_worker.engines.capture import Capture
from media_worker.engines.display import DisplayTransform, display_transform
from media_worker.engines.exif_facts import capture_of_pillow, capture_of_vips
from media_worker.engines.isobmff import BoxSource, video_sample_entries
from media_worker.engines.sniff import MediaType
from media_worker.engines.video_details import VideoDetails, video_details
from media_worker.errors import CorruptMediaError, LimitExceededError, UnsupportedMediaError

# Formats the libvips build of pyvips-binary loads itself.
VIPS_FORMATS = frozenset({"jpeg", "png", "gif", "webp", "tiff", "avif", "svg"})
# Pillow's name for each format it may decode: the only one `Image.open` is allowed to try,
# so the bytes are never handed to a decoder the sniffer did not choose.
PILLOW_NAMES = {
    "heic": "HEIF", "bmp": "BMP", "ico": "ICO", "avif": "AVIF", "jxl": "JXL",
    "jpeg": "JPEG", "png": "PNG", "gif": "GIF", "tiff": "TIFF", "webp": "WEBP",
}
ORIENTATION_SWAPS = frozenset({5, 6, 7, 8})  # EXIF orientations that turn by a quarter
EXIF_ORIENTATION = 0x0112  # the EXIF tag
# MAX_HEADER_PIXELS' default: past today's largest phone photos (200 MP) with room to spare,
# while a header claiming gigapixels is refused before any work.
MAX_HEADER_PIXELS = 1_000_000_000
# Packets read for the first frame's display matrix: past a GOP's worth of undecodable packets
# the stream is left as coded (0°).
FIRST_FRAME_PACKETS = 60


class NoDecoderError(UnsupportedMediaError):
    """The video stream's codec has no decoder in this FFmpeg build (another may have one)."""


def configure_libvips() -> None:
    """Loaders libvips marks untrusted (MATLAB, FITS, …) never see an upload, whatever the
    sniffer let through. SVG is among them but wanted: it is loaded from memory only, so it
    cannot reach files beside it. Every job reads a different file, so libvips' operation
    cache never hits; it would only hold decoded pixels of past jobs (tens of MB per 24 MP
    photo): memory must be bounded by the configuration, not by the last inputs."""
    pyvips.block_untrusted_set(True)
    pyvips.operation_block_set("VipsForeignLoadSvg", False)
    pyvips.cache_set_max(0)
    pyvips.cache_set_max_mem(0)


# --- still images ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageHeader:
    """A picture as its header describes it; `width` x `height` as stored (not upright)."""

    width: int
    height: int
    orientation: int = 1
    has_alpha: bool = False
    pages: int = 1
    capture: Capture = field(default_factory=Capture)  # taken when, with what, where (EXIF)

    @property
    def upright(self) -> tuple[int, int]:
        """The size as shown, after the EXIF orientation."""
        if self.orientation in ORIENTATION_SWAPS:
            return self.height, self.width
        return self.width, self.height


def libvips_loads(media_type: MediaType) -> bool:
    # An AVIF image *sequence* (brand avis) has no libvips loader in pyvips-binary.
    return media_type.format in VIPS_FORMATS and media_type.brand != "avis"


def vips_source(path: Path, media_type: MediaType) -> str | bytes:
    """SVG is loaded from memory: from a file, librsvg would also read the files it links to
    (`<image href="secret.png">` next to it), and a thumbnail could show them."""
    return path.read_bytes() if media_type.format == "svg" else str(path)


def vips_header(source: str | bytes) -> pyvips.Image:
    """Opening with sequential access reads the header only; pixels are decoded later. One
    page by default, so a GIF's height is its first frame's, not the strip's."""
    if isinstance(source, bytes):
        return pyvips.Image.new_from_buffer(source, "", access="sequential")
    return pyvips.Image.new_from_file(source, access="sequential")


def header_of_vips(image: pyvips.Image) -> ImageHeader:
    orientation = int(image.get("orientation")) if image.get_typeof("orientation") else 1
    pages = int(image.get("n-pages")) if image.get_typeof("n-pages") else 1
    return ImageHeader(image.width, image.height, _valid_orientation(orientation),
                       bool(image.hasalpha()), pages, capture_of_vips(image))


def open_with_pillow(path: Path, media_type: MediaType) -> Image.Image:
    """The file opened (header only) by the one Pillow plugin its sniffed type names."""
    register_pillow_plugins()
    return Image.open(path, formats=[PILLOW_NAMES[media_type.format]])


def header_of_pillow(image: Image.Image) -> ImageHeader:
    orientation = image.getexif().get(EXIF_ORIENTATION, 1)
    return ImageHeader(image.width, image.height,
                       _valid_orientation(orientation if isinstance(orientation, int) else 1),
                       image.has_transparency_data, getattr(image, "n_frames", 1),
                       capture_of_pillow(image))


def read_image_header(path: Path, media_type: MediaType) -> ImageHeader:
    """The header by libvips where it has a loader, else (or where it fails) by Pillow.
    Raises CorruptMediaError when neither can read it."""
    if libvips_loads(media_type):
        try:
            return header_of_vips(vips_header(vips_source(path, media_type)))
        except pyvips.Error as exc:
            failure = str(exc.detail or exc.message or "").strip()
    else:
        failure = "no loader"
    if media_type.format in PILLOW_NAMES:
        try:
            with open_with_pillow(path, media_type) as opened:
                return header_of_pillow(opened)
        except Exception as exc:  # fuzzed files make Pillow raise anything (TypeError, …)
            failure = str(exc) or type(exc).__name__
    raise CorruptMediaError(f"cannot read the {media_type.format.upper()} header: {failure}")


def check_pixels(width: int, height: int, max_pixels: int | None) -> None:
    """Refuse, from the header alone, a picture bigger than MAX_PIXELS (decompression bombs)."""
    if max_pixels is not None and width * height > max_pixels:
        raise LimitExceededError(
            f"image is {width}x{height} = {width * height} pixels, over the limit of "
            f"{max_pixels} (MAX_PIXELS)")


def check_header_pixels(width: int, height: int, max_header_pixels: int | None) -> None:
    """Refuse a header bigger than MAX_HEADER_PIXELS, for the decodes that stream or tile and
    so are not bounded by MAX_PIXELS on the header: what they hold stays small, but their
    work grows with every pixel the header claims."""
    if max_header_pixels is not None and width * height > max_header_pixels:
        raise LimitExceededError(
            f"image is {width}x{height} = {width * height} pixels, over the limit of "
            f"{max_header_pixels} (MAX_HEADER_PIXELS)")


def check_held_pixels(width: int, height: int, held: int, max_pixels: int | None,
                      how: str) -> None:
    """MAX_PIXELS for a decode that streams or tiles (`how`): it bounds the `held` pixels the
    decode keeps at once, as it bounds the whole picture of a decode that cannot stream."""
    if max_pixels is not None and held > max_pixels:
        raise LimitExceededError(
            f"image is {width}x{height}; decoded {how} it would hold {held} pixels at once, "
            f"over the limit of {max_pixels} (MAX_PIXELS)")


def image_metadata(media_type: MediaType, header: ImageHeader, *,
                   gps: bool = False) -> dict[str, Any]:
    """What the row's `metadata` says about a still image; width/height are upright. The
    position only with `gps` (METADATA_GPS=keep)."""
    width, height = header.upright
    picture = {"kind": "image", "format": media_type.format, "mimeType": media_type.mime_type,
               "width": width, "height": height, "orientation": header.orientation,
               "hasAlpha": header.has_alpha, "pages": header.pages}
    return picture | header.capture.to_metadata(gps=gps)


@cache
def register_pillow_plugins() -> None:
    """pillow-heif (HEIC/HEIF) and, when installed, the JPEG XL plugin register with Pillow.

    libheif decodes the tiles of a HEIC in 4 threads by default; a worker already runs one
    job per core, so the extra threads only add overhead (measured: docs/performance.md)."""
    from pillow_heif import options, register_heif_opener

    options.DECODE_THREADS = 1
    register_heif_opener()
    jxl_plugin_loaded()


@cache
def jxl_plugin_loaded() -> bool:
    """Whether `pillow-jxl-plugin` is installed (importing it registers the JXL format)."""
    try:
        import pillow_jxl  # noqa: F401
    except ImportError:
        return False
    return True


def _valid_orientation(value: int) -> int:
    return value if 1 <= value <= 8 else 1


# --- video ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class VideoFacts:
    """A video stream as its container describes it; `width` x `height` coded."""

    width: int
    height: int
    sample_aspect: Fraction
    duration: float  # seconds; 0 when the container does not say
    codec: str
    frame_rate: float | None
    has_audio: bool
    details: VideoDetails = field(default_factory=VideoDetails)  # bitrate, audio, capture

    @property
    def display_size(self) -> tuple[int, int]:
        """The coded size stretched to the display aspect of non-square pixels."""
        return display_size(self.width, self.height, self.sample_aspect)


def video_stream(container: Any, media_type: MediaType, path: BoxSource) -> Any:
    """The first video stream FFmpeg has a decoder for (PyAV gives the others no codec
    context: Dolby Vision AV1 under `dav1` before FFmpeg 7.1, Canon's `CRAW`), set to decode
    with FFmpeg's own threads."""
    if not container.streams.video:
        what = "audio-only file" if container.streams.audio else "no streams"
        raise UnsupportedMediaError(
            f"unsupported media: no video stream in this {media_type.format.upper()} ({what})")
    decodable = [s for s in container.streams.video if s.codec_context is not None]
    if not decodable:
        entries = video_sample_entries(path)
        codec = f" {entries[0]!r}" if entries else ""
        raise NoDecoderError(f"unsupported codec{codec}: FFmpeg has no decoder for the video "
                             f"stream of this {media_type.format.upper()}")
    stream = decodable[0]
    stream.thread_type = "AUTO"
    return stream


def video_facts(container: Any, stream: Any) -> VideoFacts:
    context = stream.codec_context
    rate = stream.guessed_rate or stream.average_rate
    return VideoFacts(
        width=context.width, height=context.height, sample_aspect=_sample_aspect(stream),
        duration=stream_duration(container, stream),
        codec=context.codec.canonical_name or context.codec.name,
        frame_rate=round(float(rate), 3) if rate else None,
        has_audio=bool(container.streams.audio), details=video_details(container, stream))


def check_video_limits(facts: VideoFacts, max_pixels: int | None,
                       max_seconds: float | None) -> None:
    pixels = facts.width * facts.height
    if max_pixels is not None and pixels > max_pixels:
        raise LimitExceededError(
            f"video is {facts.width}x{facts.height} = {pixels} pixels per frame, over the "
            f"limit of {max_pixels} (MAX_PIXELS)")
    if max_seconds is not None and facts.duration > max_seconds:
        raise LimitExceededError(
            f"video lasts {facts.duration:.0f} s, over the limit of {max_seconds:g} s "
            "(MAX_VIDEO_SECONDS)")


def first_frame_transform(container: Any, stream: Any) -> DisplayTransform:
    """The display transform of the first decodable frame; none when no frame decodes."""
    import av

    try:
        for count, packet in enumerate(container.demux(stream)):
            if count >= FIRST_FRAME_PACKETS:
                break
            try:
                frames = packet.decode()
            except av.FFmpegError:
                continue
            if frames:
                return display_transform(frames[0])
    except av.FFmpegError:  # the demuxer gave up (truncated file): what was read stands
        pass
    return DisplayTransform()


def video_metadata(media_type: MediaType, facts: VideoFacts, *, width: int, height: int,
                   transform: DisplayTransform, gps: bool = False) -> dict[str, Any]:
    """What the row's `metadata` says about a video; width/height as shown (upright). The
    position only with `gps` (METADATA_GPS=keep). `durationMs`, `fps` and `videoCodec`
    repeat `duration`, `frameRate` and `codec` under the names the API reads; the first
    names stay for the readers that already use them."""
    return {
        "kind": "video", "format": media_type.format, "mimeType": media_type.mime_type,
        "width": width, "height": height, "duration": round(facts.duration, 3),
        "codec": facts.codec, "frameRate": facts.frame_rate,
        "rotation": transform.rotation, "mirrored": transform.mirrored,
        "hasAudio": facts.has_audio, "durationMs": round(facts.duration * 1000),
        "fps": facts.frame_rate, "videoCodec": facts.codec,
    } | facts.details.to_metadata(gps=gps)


def display_size(width: int, height: int, sar: Fraction) -> tuple[int, int]:
    """Stretch (never squeeze) the coded size to the display aspect of non-square pixels."""
    if sar > 1:
        return max(1, round(width * sar)), height
    if sar < 1:
        return width, max(1, round(height / sar))
    return width, height


def _sample_aspect(stream: Any) -> Fraction:
    sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
    return Fraction(sar) if sar and Fraction(sar) > 0 else Fraction(1)


def stream_duration(container: Any, stream: Any) -> float:
    """Seconds: the stream's own duration, else the container's, else 0."""
    import av

    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return 0.0
