"""Animated originals (GIF, animated WebP, APNG, animated AVIF) and the sizes that keep their
animation: `probe.py` tells an animation from a still by its header, `frames.py` decodes the
frames a job keeps (once), `resize.py` frames and resizes every frame of a size in a few
libvips operations, `encode.py` writes animated WebP or GIF with the timing and loop kept.
"""
