"""Coding-independent code points (ITU-T H.273): the numbers that HEIF/AVIF `nclx`, PNG `cICP`
and the ICC v4.4 `cicp` tag use to say what a picture's colours mean, named as the row's
`metadata.hdr` names them."""

from __future__ import annotations

# ColourPrimaries. 2 is "unspecified": a decoder assumes BT.709 / sRGB, and so does the worker.
PRIMARIES = {
    1: "bt709", 2: "bt709", 4: "bt470m", 5: "bt601", 6: "bt601", 7: "smpte240m", 8: "film",
    9: "bt2020", 10: "xyz", 11: "dci-p3", 12: "p3", 22: "ebu3213",
}
# TransferCharacteristics: only PQ and HLG are HDR; every other curve is shown as SDR.
TRANSFERS = {16: "pq", 18: "hlg"}
# MatrixCoefficients (how Y'CbCr was made from R'G'B'); 2 is unspecified.
MATRICES = {
    0: "identity", 1: "bt709", 4: "fcc", 5: "bt601", 6: "bt601", 7: "smpte240m", 8: "ycgco",
    9: "bt2020nc", 10: "bt2020c", 11: "smpte2085", 12: "chroma-nc", 13: "chroma-c",
    14: "ictcp",
}


def primaries_name(code: int) -> str:
    return PRIMARIES.get(code, "other")


def transfer_name(code: int) -> str:
    return TRANSFERS.get(code, "sdr")


def matrix_name(code: int) -> str | None:
    return MATRICES.get(code)
