"""JavaScript's `Math.cos` as Node's V8 computes it: fdlibm's algorithm (Sun's, 1993), so a
ThumbHash's cosines are the reference's to the last bit.

Why not numpy's or libm's cosine: both are as accurate, but a last bit may differ, and where a
picture does not change along one direction its AC terms there are nothing but those bits,
which the ThumbHash encoder stretches to its full 4-bit range (thumbhash.py). Only what the
encoder and decoder need is here: arguments from 0 to 2**19 * pi/2, the range fdlibm reduces
with its "medium" Cody-Waite steps (a ThumbHash asks for at most 7 pi). Plain Python floats,
evaluated in fdlibm's order, are IEEE doubles rounded operation by operation as its C is.
"""

from __future__ import annotations

import struct

_INVPIO2 = 6.36619772367581382433e-01
_PIO2_1 = 1.57079632673412561417e+00  # first 33 bits of pi/2
_PIO2_1T = 6.07710050650619224932e-11  # pi/2 - _PIO2_1
_PIO2_2 = 6.07710050630396597660e-11  # second 33 bits of pi/2
_PIO2_2T = 2.02226624879595063154e-21
_PIO2_3 = 2.02226624871116645580e-21  # third 33 bits of pi/2
_PIO2_3T = 8.47842766036889956997e-32
# high words of n * pi/2 for n = 1..32: where a quick reduction could cancel
_NPIO2_HW = (
    0x3FF921FB, 0x400921FB, 0x4012D97C, 0x401921FB, 0x401F6A7A, 0x4022D97C, 0x4025FDBB,
    0x402921FB, 0x402C463A, 0x402F6A7A, 0x4031475C, 0x4032D97C, 0x40346B9C, 0x4035FDBB,
    0x40378FDB, 0x403921FB, 0x403AB41B, 0x403C463A, 0x403DD85A, 0x403F6A7A, 0x40407E4C,
    0x4041475C, 0x4042106C, 0x4042D97C, 0x4043A28C, 0x40446B9C, 0x404534AC, 0x4045FDBB,
    0x4046C6CB, 0x40478FDB, 0x404858EB, 0x404921FB,
)
_C = (4.16666666666666019037e-02, -1.38888888888741095749e-03, 2.48015872894767294178e-05,
      -2.75573143513906633035e-07, 2.08757232129817482790e-09, -1.13596475577881948265e-11)
_S = (-1.66666666666666324348e-01, 8.33333333332248946124e-03, -1.98412698298579493134e-04,
      2.75573137070700676789e-06, -2.50507602534068634195e-08, 1.58969099521155010221e-10)
_MEDIUM = 0x413921FB  # high word of 2**19 * pi/2


def js_cos(x: float) -> float:
    """`Math.cos(x)` of Node's V8 for 0 <= x <= 2**19 * pi/2."""
    high = _high_word(x)
    if high > _MEDIUM or x < 0:
        raise ValueError(f"js_cos covers 0 to 2**19 * pi/2, not {x!r}")
    if high <= 0x3FE921FB:  # |x| <= pi/4: no reduction
        return _kernel_cos(x, 0.0)
    n, y0, y1 = _rem_pio2(x, high)
    quadrant = n & 3
    if quadrant == 0:
        return _kernel_cos(y0, y1)
    if quadrant == 1:
        return -_kernel_sin(y0, y1)
    if quadrant == 2:
        return -_kernel_cos(y0, y1)
    return _kernel_sin(y0, y1)


def _rem_pio2(x: float, high: int) -> tuple[int, float, float]:
    """x - n * pi/2 as y0 + y1 (fdlibm's __ieee754_rem_pio2, x >= 0), and n."""
    if high < 0x4002D97C:  # x < 3pi/4: n = 1
        z = x - _PIO2_1
        if high != 0x3FF921FB:
            y0 = z - _PIO2_1T
            return 1, y0, (z - y0) - _PIO2_1T
        z -= _PIO2_2  # near pi/2: 33 + 33 + 53 bits of pi
        y0 = z - _PIO2_2T
        return 1, y0, (z - y0) - _PIO2_2T
    n = int(x * _INVPIO2 + 0.5)
    fn = float(n)
    r = x - fn * _PIO2_1
    w = fn * _PIO2_1T
    y0 = r - w
    if not (n < 32 and high != _NPIO2_HW[n - 1]):
        exponent = high >> 20
        if exponent - ((_high_word(y0) >> 20) & 0x7FF) > 16:  # a second step: 118 bits
            t = r
            w = fn * _PIO2_2
            r = t - w
            w = fn * _PIO2_2T - ((t - r) - w)
            y0 = r - w
            if exponent - ((_high_word(y0) >> 20) & 0x7FF) > 49:  # a third: 151 bits
                t = r
                w = fn * _PIO2_3
                r = t - w
                w = fn * _PIO2_3T - ((t - r) - w)
                y0 = r - w
    return n, y0, (r - y0) - w


def _kernel_cos(x: float, y: float) -> float:
    """cos(x + y) for |x| <= pi/4 (fdlibm's __kernel_cos)."""
    ix = _high_word(x) & 0x7FFFFFFF
    if ix < 0x3E400000 and int(x) == 0:  # |x| < 2**-27
        return 1.0
    z = x * x
    r = z * (_C[0] + z * (_C[1] + z * (_C[2] + z * (_C[3] + z * (_C[4] + z * _C[5])))))
    if ix < 0x3FD33333:  # |x| < 0.3
        return 1.0 - (0.5 * z - (z * r - x * y))
    qx = 0.28125 if ix > 0x3FE90000 else _from_words(ix - 0x00200000, 0)  # x/4, rounded down
    hz = 0.5 * z - qx
    a = 1.0 - qx
    return a - (hz - (z * r - x * y))


def _kernel_sin(x: float, y: float) -> float:
    """sin(x + y) for |x| <= pi/4 (fdlibm's __kernel_sin, y used)."""
    ix = _high_word(x) & 0x7FFFFFFF
    if ix < 0x3E400000 and int(x) == 0:
        return x
    z = x * x
    v = z * x
    r = _S[1] + z * (_S[2] + z * (_S[3] + z * (_S[4] + z * _S[5])))
    return x - ((z * (0.5 * y - v * r) - y) - v * _S[0])


def _high_word(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0] >> 32


def _from_words(high: int, low: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", (high << 32) | low))[0]
