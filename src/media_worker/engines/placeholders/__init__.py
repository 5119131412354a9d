"""Placeholders an app paints while the real thumbnail loads, and the colours of a picture.

`blurhash.py` the BlurHash of the smallest thumbnail; `thumbhash.py` Evan Wallace's ThumbHash
(keeps alpha and the aspect ratio, which BlurHash cannot); `colors.py` the dominant colour and
a small palette; `pixels.py` the small RGBA copy the last two read.
"""
