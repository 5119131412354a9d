"""ThumbHash: Evan Wallace's placeholder (https://evanw.github.io/thumbhash/), which unlike
BlurHash keeps alpha and the picture's aspect ratio in a hash of about 25 bytes.

Our own numpy port of the reference `thumbhash.js` rather than the PyPI `thumbhash` package:
that one reads the alpha channel's DC term as a tuple (an operator-precedence slip, so every
picture with transparency raises) and rounds with Python's round-half-to-even where the
reference uses JavaScript's `Math.round` (half up), so even its opaque hashes can differ.
This port keeps the reference's exact arithmetic so its hashes are byte for byte the
reference's on Node (tests/unit/test_thumbhash.py checks vectors made by the reference
itself): every DCT sum is accumulated in the reference's order, one pixel after the other
(`_column_sums`, never numpy's pairwise `sum`), products are grouped as the reference groups
them, rounding is half up, and the cosines are V8's to the last bit (jscos.py). Exactness
matters more than it seems: where a picture does not change along one direction its AC terms
there are rounding noise, which the reference stretches to its full 4-bit range, so those
last bits decide nibbles. The sums of every channel and frequency are made at once, as the
columns of one array: one pass of numpy over the pixels rather than one per term (the whole
hash in about two thirds of the time summing term by term took).
"""

from __future__ import annotations

import base64
import math
from functools import cache

import numpy as np
import pyvips

from media_worker.engines.placeholders.jscos import js_cos
from media_worker.engines.placeholders.pixels import small_rgba

MAX_SIDE = 100  # the reference's limit: larger inputs only cost more
# The side of the copy thumbhash_of hashes: near enough to the reference's 100 px for the
# test pictures to paint as their 100 px copies do, at a fraction of the cost; a smaller copy
# visibly drifts (docs/media.md, "Placeholders").
SIDE = 64


def thumbhash_of(image: pyvips.Image) -> str:
    """The ThumbHash of `image` (any size: its copy of at most SIDE x SIDE is hashed), base64
    as apps pass it to the reference decoders (`metadata.thumbhash`)."""
    return base64.b64encode(rgba_to_thumbhash(small_rgba(image, SIDE))).decode("ascii")


def rgba_to_thumbhash(rgba: np.ndarray) -> bytes:
    """The reference's `rgbaToThumbHash`: an (h, w, 4) uint8 array, RGB not premultiplied,
    at most 100x100, to the hash bytes."""
    h, w = rgba.shape[:2]
    if w > MAX_SIDE or h > MAX_SIDE:
        raise ValueError(f"{w}x{h} doesn't fit in {MAX_SIDE}x{MAX_SIDE}")
    pixels = rgba.reshape(-1, 4).astype(np.float64)
    alpha = pixels[:, 3] / 255
    average, total_alpha = _average(pixels, alpha)
    has_alpha = total_alpha < w * h
    l_limit = 5 if has_alpha else 7  # fewer luminance terms when alpha takes room
    lx = max(1, _round(l_limit * w / max(w, h)))
    ly = max(1, _round(l_limit * h / max(w, h)))
    lum, yb, rg = _lpq(pixels, alpha, average)
    channels = [(lum, max(3, lx), max(3, ly)), (yb, 3, 3), (rg, 3, 3)]
    if has_alpha:
        channels.append((alpha, 5, 5))
    (l_dc, l_ac, l_scale), (p_dc, p_ac, p_scale), (q_dc, q_ac, q_scale), *a_terms = (
        _encode_channels(channels, w, h))
    landscape = w > h
    header24 = (_round(63 * l_dc) | (_round(31.5 + 31.5 * p_dc) << 6)
                | (_round(31.5 + 31.5 * q_dc) << 12) | (_round(31 * l_scale) << 18)
                | (int(has_alpha) << 23))
    header16 = ((ly if landscape else lx) | (_round(63 * p_scale) << 3)
                | (_round(63 * q_scale) << 9) | (int(landscape) << 15))
    head = [header24 & 255, (header24 >> 8) & 255, header24 >> 16,
            header16 & 255, header16 >> 8]
    factors = [*l_ac, *p_ac, *q_ac]
    if has_alpha:
        [(a_dc, a_ac, a_scale)] = a_terms
        head.append(_round(15 * a_dc) | (_round(15 * a_scale) << 4))
        factors += a_ac
    return bytes(head) + _nibbles([_round(15 * f) for f in factors])


def _average(pixels: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, float]:
    """The alpha-weighted average colour (0..1 per channel) and the sum of alpha."""
    columns = np.empty((len(alpha), 4))
    np.multiply((alpha / 255)[:, None], pixels[:, :3], out=columns[:, :3])
    columns[:, 3] = alpha
    *sums, total = _column_sums(columns).tolist()  # the reference's four sums, in one loop
    colour = np.array(sums)
    return (colour / total if total else colour), total


def _lpq(pixels: np.ndarray, alpha: np.ndarray, average: np.ndarray
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Luminance, yellow-blue and red-green, each pixel composited over the average colour
    (so transparent areas do not drag the colours towards black)."""
    kept, scaled = 1 - alpha, alpha / 255  # average * (1 - alpha) + alpha / 255 * value
    r, g, b = (average[c] * kept + scaled * pixels[:, c] for c in range(3))
    return (r + g + b) / 3, (r + g) / 2 - b, r - g


def _encode_channels(channels: list[tuple[np.ndarray, int, int]], w: int, h: int
                     ) -> list[tuple[float, list[float], float]]:
    """For each (channel, nx, ny), the DC term, the AC terms normalised to 0..1 and their
    scale, for the triangle of frequencies `cx * ny < nx * (ny - cy)`, in the reference's
    order. Every channel's terms are summed together: numpy adds row after row of one
    (pixels, terms) array, all terms at once, the costly part; each term is a column."""
    tables = [_encoder_table(w, h, nx, ny) for _channel, nx, ny in channels]
    columns = np.empty((h * w, sum(sum(counts) for _a, _d, counts in tables)))
    by_term = columns.T.reshape(-1, h, w)  # the same memory, term by term
    start = 0
    for (channel, _nx, _ny), (across, down, counts) in zip(channels, tables, strict=True):
        # channel * fx (once per horizontal frequency), then * fy, as the reference groups
        # the product; terms in the reference's order (cy, then cx from 0)
        by_x = channel.reshape(1, h, w) * across[:, None, :]
        for cy, count in enumerate(counts):
            np.multiply(by_x[:count], down[cy][None, :, None],
                        out=by_term[start:start + count])
            start += count
    sums = (_column_sums(columns) / (w * h)).tolist()
    found, start = [], 0
    for _across, _down, counts in tables:
        found.append(_normalised(sums[start:start + sum(counts)]))
        start += sum(counts)
    return found


def _normalised(coefficients: list[float]) -> tuple[float, list[float], float]:
    dc, ac = coefficients[0], coefficients[1:]
    scale = max((abs(f) for f in ac), default=0.0)
    if scale:
        ac = [0.5 + 0.5 / scale * f for f in ac]
    return dc, ac, scale


@cache
def _encoder_table(w: int, h: int, nx: int, ny: int
                   ) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """The encoder's cosines of the horizontal frequencies (nx, w) and of the vertical ones
    (ny, h), and for each cy how many cx (from 0) the triangle `cx * ny < nx * (ny - cy)`
    keeps."""
    across = np.stack([_encoder_cosines(w, cx) for cx in range(nx)])
    down = np.stack([_encoder_cosines(h, cy) for cy in range(ny)])
    counts = tuple(sum(1 for cx in range(nx) if cx * ny < nx * (ny - cy)) for cy in range(ny))
    across.flags.writeable = down.flags.writeable = False
    return across, down, counts


@cache
def _encoder_cosines(size: int, frequency: int) -> np.ndarray:
    """cos(PI / size * frequency * (i + 0.5)), grouped as the reference's encoder groups it."""
    step = math.pi / size * frequency
    return np.array([js_cos(step * (i + 0.5)) for i in range(size)])


@cache
def _decoder_cosines(size: int, frequency: int) -> np.ndarray:
    """cos(PI / size * (i + 0.5) * frequency), grouped as the reference's decoder groups it."""
    return np.array([js_cos(math.pi / size * (i + 0.5) * frequency) for i in range(size)])


def _column_sums(columns: np.ndarray) -> np.ndarray:
    """Each column of a (values, columns) array summed top to bottom, one addition at a
    time, as the reference's loops add. numpy's `sum` adds pairwise (which rounds
    differently) along the axis that is fast in memory, but along axis 0 of a C-ordered
    array of several columns it adds row after row (numpy.sum, Notes): that is the quick way
    for many columns, cumsum along each column's own row for a few (where numpy's reduction
    would pay its cost per row for little work)."""
    if columns.shape[1] >= 8 and columns.flags.c_contiguous:
        return np.add.reduce(columns, axis=0)
    return np.cumsum(np.ascontiguousarray(columns.T), axis=1)[:, -1]


def _nibbles(values: list[int]) -> bytes:
    """4-bit values packed two to a byte, the first in the low nibble."""
    packed = bytearray((len(values) + 1) // 2)
    for index, value in enumerate(values):
        packed[index >> 1] |= value << ((index & 1) << 2)
    return bytes(packed)


def _round(value: float) -> int:
    """JavaScript's `Math.round`: to the nearest integer, halves up (Python's `round` goes to
    the even neighbour)."""
    floor = math.floor(value)
    return floor + 1 if value - floor >= 0.5 else floor



def thumbhash_to_rgba(thumbhash: bytes) -> np.ndarray:
    """The reference's `thumbHashToRGBA`: the placeholder an app would paint, at most 32x32,
    as an (h, w, 4) uint8 array, RGB not premultiplied (for tests and docs/)."""
    header24 = thumbhash[0] | (thumbhash[1] << 8) | (thumbhash[2] << 16)
    header16 = thumbhash[3] | (thumbhash[4] << 8)
    has_alpha, landscape = bool(header24 >> 23), bool(header16 >> 15)
    l_long = 5 if has_alpha else 7
    lx = max(3, l_long if landscape else header16 & 7)
    ly = max(3, header16 & 7 if landscape else l_long)
    nibbles = _unpacked(thumbhash[6 if has_alpha else 5:])
    l_ac, nibbles = _factors(nibbles, lx, ly, ((header24 >> 18) & 31) / 31)
    p_ac, nibbles = _factors(nibbles, 3, 3, ((header16 >> 3) & 63) / 63 * 1.25)
    q_ac, nibbles = _factors(nibbles, 3, 3, ((header16 >> 9) & 63) / 63 * 1.25)
    ratio = aspect_ratio(thumbhash)
    w = _round(32 if ratio > 1 else 32 * ratio)
    h = _round(32 / ratio if ratio > 1 else 32)
    fx = [_decoder_cosines(w, c) for c in range(max(lx, 5 if has_alpha else 3))]
    fy = [_decoder_cosines(h, c) for c in range(max(ly, 5 if has_alpha else 3))]
    lum = _inverse(((header24 & 63) / 63, l_ac), fx, fy, grouped=False)
    yb = _inverse((((header24 >> 6) & 63) / 31.5 - 1, p_ac), fx, fy, grouped=True)
    rg = _inverse((((header24 >> 12) & 63) / 31.5 - 1, q_ac), fx, fy, grouped=True)
    if has_alpha:
        a_ac, _ = _factors(nibbles, 5, 5, (thumbhash[5] >> 4) / 15)
        alpha = _inverse(((thumbhash[5] & 15) / 15, a_ac), fx, fy, grouped=False)
    else:
        alpha = np.ones((h, w))
    b = lum - 2 / 3 * yb
    r = (3 * lum - b + rg) / 2
    g = r - rg
    rgba = np.stack([r, g, b, alpha], axis=-1)
    return np.maximum(0, 255 * np.minimum(1, rgba)).astype(np.uint8)  # truncates, as JS does


def aspect_ratio(thumbhash: bytes) -> float:
    """The reference's `thumbHashToApproximateAspectRatio`: width over height, as the hash
    keeps it (the luminance terms' ratio, 1:7 to 7:1)."""
    l_long = 5 if thumbhash[2] & 0x80 else 7
    l_short = thumbhash[3] & 7
    return l_long / l_short if thumbhash[4] & 0x80 else l_short / l_long


def _unpacked(packed: bytes) -> list[int]:
    return [(byte >> shift) & 15 for byte in packed for shift in (0, 4)]


def _factors(nibbles: list[int], nx: int, ny: int, scale: float
             ) -> tuple[list[tuple[int, int, float]], list[int]]:
    """The AC terms of one channel as (cx, cy, factor), and the nibbles left after them."""
    frequencies = [(cx, cy) for cy in range(ny) for cx in range(0 if cy else 1, nx)
                   if cx * ny < nx * (ny - cy)]
    terms = [(cx, cy, (nibble / 7.5 - 1) * scale)
             for (cx, cy), nibble in zip(frequencies, nibbles, strict=False)]
    return terms, nibbles[len(frequencies):]


def _inverse(channel: tuple[float, list[tuple[int, int, float]]], fx: list[np.ndarray],
             fy: list[np.ndarray], *, grouped: bool) -> np.ndarray:
    """One channel back to pixels, terms added in the reference's order; `grouped`: the
    reference multiplies the two cosines first for P and Q, the factor first for L and A."""
    dc, terms = channel
    values = np.full((len(fy[0]), len(fx[0])), dc)
    for cx, cy, factor in terms:
        fy2 = (fy[cy] * 2)[:, None]
        if grouped:
            values = values + factor * (fx[cx][None, :] * fy2)
        else:
            values = values + (factor * fx[cx])[None, :] * fy2
    return values
