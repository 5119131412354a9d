"""Faces, for `smart` crops: OpenCV's frontal-face Haar cascade on a small grey copy.

Why this detector: its model ships inside the `opencv-python-headless` wheel (4.x; 5.0 no
longer bundles the cascades), so nothing is downloaded at run time, it needs no GPU and no
deep-learning runtime, and on a copy a few hundred pixels wide it costs milliseconds, once per
job. It finds upright frontal faces; profiles and tiny faces are left to libvips' attention.
OpenCV loads only in a decoder that renders a `smart` size.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

from media_worker.engines.framing import Box

# The cascade's cost grows with the pixels it scans at every scale: 120 ms CPU at 480 px wide
# with 1.1 steps and 20 px faces, 23 ms at 320 px with 1.2 steps and 24 px faces (bench 10c),
# still finding the corpus's faces. A face narrower than 1/13 of a 4:3 picture is left to
# libvips' attention (which weighs skin tones): it rarely decides where a crop goes.
DETECTION_PIXELS = 320 * 240  # the copy's area (encode.INTEREST_PIXELS)
MIN_FACE_PIXELS = 24  # the cascade's training window is 20 px
CASCADE = "haarcascade_frontalface_alt2.xml"  # fewer false positives than "default"
SCALE_STEP = 1.2
# Overlapping detections a face needs. 5 (OpenCV's usual) took wet rocks below a man seen from
# behind (orientation/Portrait_*.jpg) and a letter of pil_sample_cmyk.jpg for faces; at 8 both
# go and the corpus's real faces (craft-beer.jpg, hopper.*) stay.
NEIGHBOURS = 8


@cache
def _cascade() -> Any:
    import cv2

    classifier = cv2.CascadeClassifier(cv2.data.haarcascades + CASCADE)
    if classifier.empty():
        raise RuntimeError(f"OpenCV's {CASCADE} is missing from its package")
    return classifier


def find_faces(grey: np.ndarray) -> list[Box]:
    """Faces in an 8-bit grey (H, W) picture, as fractions of it, largest first."""
    height, width = grey.shape[:2]
    if min(width, height) < MIN_FACE_PIXELS:
        return []
    found = _cascade().detectMultiScale(grey, scaleFactor=SCALE_STEP, minNeighbors=NEIGHBOURS,
                                        minSize=(MIN_FACE_PIXELS, MIN_FACE_PIXELS))
    boxes = [Box(x / width, y / height, (x + w) / width, (y + h) / height)
             for x, y, w, h in (found if len(found) else [])]
    return sorted(boxes, key=lambda box: (box.right - box.left) * (box.bottom - box.top),
                  reverse=True)
