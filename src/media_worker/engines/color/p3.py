"""THUMBNAIL_COLOR=keep-p3: Display P3 originals keep their gamut, tagged with a compact profile.

The profile is libvips' built-in `p3` (480 bytes, Display P3: P3 primaries, D65 white, the
sRGB curve; licensed CC0, as its copyright tag says), so nothing is shipped beside the code.
The decoders convert P3 originals to it (ICC transform, or a plain tag where the pixels are
P3 already), and encode.py keeps an ICC profile in a thumbnail only when it is exactly this
one: every other thumbnail stays sRGB with no metadata at all.
"""

from __future__ import annotations

from functools import cache

import pyvips

P3_PROFILE = "p3"  # libvips' built-in profile name (import_profile / export_profile / …)
ICC_FIELD = "icc-profile-data"


@cache
def p3_profile_bytes() -> bytes:
    """The built-in profile itself, as libvips embeds it."""
    return bytes(pyvips.Operation.call("profile_load", P3_PROFILE))


def carries_p3(image: pyvips.Image) -> bool:
    """Whether `image` is tagged with the keep-p3 profile (and only then keeps it)."""
    return bool(image.get_typeof(ICC_FIELD)) and image.get(ICC_FIELD) == p3_profile_bytes()
