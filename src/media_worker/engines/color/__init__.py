"""Colour at thumbnail size: what a picture's signal is (HDR or not, which gamut), and how an
HDR signal becomes the SDR picture a phone would show (tone mapping, gamut mapping).

The maths is numpy on the already-shrunk picture, never on the original: a 1280 px thumbnail
is one to two million pixels whatever the source's size. Why not a colour library: the ones on
PyPI (colour-science) compute the same equations with far more overhead per call; the suite
checks these against colour-science's as an independent reference.
"""
