"""Crop windows of cover and smart sizes: the box's aspect, the focus, the faces kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyvips

from media_worker.engines.framing import Box, crop_window, output_size
from media_worker.renditions import Focus
from media_worker.types import Crop, ThumbnailSize

SQUARE = ThumbnailSize.parse("sq:256x256:cover")
WIDE = ThumbnailSize.parse("og:1200x630:cover")


def test_a_cover_window_is_the_largest_of_the_boxs_aspect_centred() -> None:
    assert crop_window(4000, 3000, SQUARE) == Crop(x=500, y=0, width=3000, height=3000)
    window = crop_window(4000, 3000, WIDE)
    assert (window.width, window.height) == (4000, 2100)
    assert window.y == 450


def test_the_focus_point_moves_the_window_as_far_as_the_edges_allow() -> None:
    assert crop_window(4000, 3000, SQUARE, centre=Focus(0.9, 0.5)).x == 1000  # at the edge
    assert crop_window(4000, 3000, SQUARE, centre=Focus(0.45, 0.5)).x == 300


def test_the_window_slides_to_keep_every_face() -> None:
    faces = [Box(0.02, 0.4, 0.12, 0.55), Box(0.3, 0.4, 0.4, 0.55)]
    window = crop_window(4000, 3000, SQUARE, centre=Focus(0.7, 0.5), faces=faces)
    for face in faces:
        assert window.x <= face.left * 4000
        assert window.x + window.width >= face.right * 4000


def test_faces_too_far_apart_for_the_window_centre_it_on_them() -> None:
    faces = [Box(0.0, 0.1, 0.1, 0.2), Box(0.9, 0.1, 1.0, 0.2)]
    window = crop_window(4000, 1000, SQUARE, faces=faces)
    assert window.x == 1500  # centred between them


def test_a_cover_thumbnail_is_exactly_the_box_or_the_crop_never_upscaled() -> None:
    assert output_size(Crop(x=0, y=0, width=3000, height=3000), SQUARE) == (256, 256)
    assert output_size(Crop(x=0, y=0, width=100, height=100), SQUARE) == (100, 100)


def _faces_in(path: Path) -> list[Box]:
    from media_worker.engines.faces import find_faces

    small = pyvips.Image.thumbnail(str(path), 480)
    grey = small.colourspace("b-w")[0]
    pixels = np.ndarray(buffer=grey.write_to_memory(), dtype=np.uint8,
                        shape=(grey.height, grey.width))
    return find_faces(pixels)


def test_no_face_where_none_is_seen(corpus: Path) -> None:
    # a man seen from behind: the wet rocks at his feet once passed for a face
    assert _faces_in(corpus / "images/orientation/Portrait_1.jpg") == []


def test_the_face_detector_finds_the_face_of_a_portrait(corpus: Path) -> None:
    faces = _faces_in(corpus / "images/formats/jpeg/craft-beer.jpg")
    assert len(faces) == 1
    face = faces[0]
    assert 0 <= face.left < face.right <= 1
    assert 0 <= face.top < face.bottom <= 1


def test_a_picture_without_faces_has_none() -> None:
    from media_worker.engines.faces import find_faces

    assert find_faces(np.full((300, 400), 128, dtype=np.uint8)) == []
