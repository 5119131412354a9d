"""Placeholders an app paints while the real thumbnail loads, and the colours of a picture.

`blurhash.py` the BlurHash of the smallest thumbnail; `thumbhash.py` Evan Wallace's ThumbHash
(keeps alpha and the aspect ratio, which BlurHash cannot), with `jscos.py` the cosines it
needs exactly as JavaScript computes them; `colors.py` the dominant colour and a small
palette; `pixels.py` the small RGBA copies those read; `facts.py` all of them (and the pHash,
engines/phash.py) as the row's `metadata` keys, from one read of the decoded picture.
"""
