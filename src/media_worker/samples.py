"""Sample media made by the project itself, for the demo and for tests that need no corpus.

An arrow pointing up makes orientation mistakes visible at a glance: the JPEG is stored rotated
with EXIF orientation 6, so a correct thumbnail shows the arrow pointing up again.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
from PIL import Image, ImageDraw

ORIENTATION_TAG = 0x0112


def make_samples(directory: Path) -> list[Path]:
    """Write the samples into `directory` (created if needed); returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    return [
        rotated_jpeg(directory / "arrow-exif-orientation-6.jpg"),
        transparent_png(directory / "badge-transparent.png"),
        animated_gif(directory / "spinner.gif"),
        short_video(directory / "moving-square.mp4"),
    ]


def arrow(size: tuple[int, int] = (1600, 1200)) -> Image.Image:
    """A landscape picture with a red arrow pointing up and a blue bar along the bottom."""
    image = Image.new("RGB", size, (235, 235, 220))
    draw = ImageDraw.Draw(image)
    width, height = size
    draw.polygon([(width // 2, height // 10), (width // 3, height // 2),
                  (2 * width // 3, height // 2)], fill=(200, 30, 30))
    draw.rectangle([width // 2 - width // 20, height // 2, width // 2 + width // 20,
                    height * 8 // 10], fill=(200, 30, 30))
    draw.rectangle([0, height * 9 // 10, width, height], fill=(30, 60, 200))
    return image


def rotated_jpeg(path: Path) -> Path:
    """The arrow stored turned 90° anticlockwise, with EXIF orientation 6 to undo it."""
    stored = arrow().transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = 6
    stored.save(path, "JPEG", quality=90, exif=exif)
    return path


def transparent_png(path: Path) -> Path:
    """A green disc on a fully transparent background."""
    image = Image.new("RGBA", (800, 600), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse([150, 50, 650, 550], fill=(40, 170, 80, 255))
    image.save(path, "PNG")
    return path


def animated_gif(path: Path) -> Path:
    """Eight frames of a rotating bar."""
    frames = []
    for step in range(8):
        frame = Image.new("RGB", (400, 300), (250, 250, 250))
        draw = ImageDraw.Draw(frame)
        draw.rectangle([50 + step * 30, 100, 110 + step * 30, 200], fill=(20, 20, 160))
        frames.append(frame)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return path


def short_video(path: Path, seconds: int = 2, fps: int = 24) -> Path:
    """A 640x360 H.264 clip of a square moving across a gradient (encoded with PyAV)."""
    with av.open(str(path), mode="w") as container:
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        stream.time_base = Fraction(1, fps)
        for index in range(seconds * fps):
            picture = Image.linear_gradient("L").resize((640, 360)).convert("RGB")
            ImageDraw.Draw(picture).rectangle(
                [20 + index * 10, 130, 120 + index * 10, 230], fill=(230, 120, 20))
            frame = av.VideoFrame.from_image(picture)
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path
