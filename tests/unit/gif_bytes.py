"""GIFs written byte by byte for the animation tests: a canvas of any size whose frames are
each one pixel, the shape of a GIF bomb (a few bytes a frame, a whole canvas decoded per
frame), made in a moment whatever the frame count."""

from __future__ import annotations

import struct
from pathlib import Path

PALETTE = bytes([0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 0, 255])  # black, white, red, blue


def one_pixel_frames_gif(path: Path, *, width: int, height: int, frames: int,
                         delay_ms: int = 40) -> Path:
    """`frames` frames of `width`x`height`: black, then each frame one white pixel more
    than the last (no two alike), every one `delay_ms` long, looping forever."""
    parts = [b"GIF89a", struct.pack("<HHBBB", width, height, 0xF1, 0, 0), PALETTE,
             b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00",
             b"\x21\xf9\x04\x00", struct.pack("<H", delay_ms // 10), b"\x00\x00",
             struct.pack("<BHHHHB", 0x2C, 0, 0, width, height, 0), _flat_lzw(width * height)]
    for index in range(frames - 1):
        x, y = index % width, (index // width) % height
        parts += [b"\x21\xf9\x04\x04", struct.pack("<H", delay_ms // 10), b"\x00\x00",
                  struct.pack("<BHHHHB", 0x2C, x, y, 1, 1, 0), _one_pixel_lzw(1)]
    parts.append(b"\x3b")
    path.write_bytes(b"".join(parts))
    return path


def _one_pixel_lzw(index: int) -> bytes:
    """LZW of one pixel at minimum code size 2: clear (4), the index, end (5), 3 bits each."""
    codes = 4 | (index << 3) | (5 << 6)
    return bytes([2, 2]) + struct.pack("<H", codes) + b"\x00"


def _flat_lzw(pixels: int) -> bytes:
    """LZW of `pixels` pixels of index 0, a clear code before every one (no dictionary
    growth, so every code stays 3 bits wide): big but trivially correct."""
    bits, count = 0, 0
    out = bytearray()
    for _ in range(pixels):
        for code in (4, 0):
            bits |= code << count
            count += 3
            while count >= 8:
                out.append(bits & 0xFF)
                bits >>= 8
                count -= 8
    bits |= 5 << count
    count += 3
    while count > 0:
        out.append(bits & 0xFF)
        bits >>= 8
        count -= 8
    blocks = bytearray([2])
    for start in range(0, len(out), 255):
        chunk = out[start:start + 255]
        blocks += bytes([len(chunk)]) + chunk
    return bytes(blocks) + b"\x00"
