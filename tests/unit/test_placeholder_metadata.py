"""The placeholders and perceptual hash a render leaves in the row's metadata (PLACEHOLDERS)."""

from __future__ import annotations

from pathlib import Path

import pytest

from media_worker.engines.local import LocalEngine
from media_worker.engines.phash import hamming
from media_worker.engines.placeholders.of_thumbnails import facts_source
from media_worker.engines.port import OutputSpec, RenderedThumbnail, SourceMedia
from media_worker.samples import make_samples
from media_worker.types import Crop, ThumbnailSize

SIZES = ThumbnailSize.parse_list("small:150x150,large:1280x1280")


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    samples = make_samples(tmp_path_factory.mktemp("samples"))
    return next(path for path in samples if path.suffix == ".jpg")


def metadata(path: Path, sizes: list[ThumbnailSize] = SIZES, **output: object) -> dict:
    engine = LocalEngine(max_pixels=10**8, max_video_seconds=60)
    spec = OutputSpec(**output)  # type: ignore[arg-type]
    return engine.render(SourceMedia(path, "b", "k"), sizes, spec).metadata


def test_a_render_gives_every_placeholder_and_a_perceptual_hash_by_default(photo: Path) -> None:
    facts = metadata(photo)
    assert facts["placeholder"]["type"] == "blurhash"
    assert facts["thumbhash"]
    assert facts["dominantColor"].startswith("#")
    assert 1 <= len(facts["palette"]) <= 5
    assert len(facts["phash"]) == 16


def test_placeholders_leaves_out_what_it_does_not_name(photo: Path) -> None:
    facts = metadata(photo, placeholders=frozenset({"thumbhash"}))
    assert "thumbhash" in facts
    assert "phash" in facts
    assert not {"placeholder", "dominantColor", "palette"} & set(facts)


def test_a_photos_perceptual_hash_does_not_depend_on_the_sizes(corpus: Path) -> None:
    photo = corpus / "images" / "camera" / "Canon_40D.jpg"
    other = ThumbnailSize.parse_list("tiny:96x96,huge:2048x2048")
    assert hamming(metadata(photo)["phash"], metadata(photo, other)["phash"]) <= 2


def thumb(name: str, width: int, height: int, crop: Crop | None = None) -> RenderedThumbnail:
    return RenderedThumbnail(ThumbnailSize(name=name, width=width, height=height), width,
                             height, "webp", "image/webp", b"", crop=crop)


def test_facts_come_from_the_smallest_whole_picture_big_enough_for_them() -> None:
    pictures = [thumb("icon", 48, 36), thumb("small", 150, 113), thumb("large", 1280, 960)]
    assert facts_source(pictures).size.name == "small"


def test_facts_come_from_the_largest_whole_picture_when_none_is_big_enough() -> None:
    assert facts_source([thumb("icon", 48, 36), thumb("badge", 80, 60)]).size.name == "badge"


def test_facts_come_from_a_crop_only_when_every_size_is_one() -> None:
    square = thumb("square", 256, 256, Crop(x=0, y=0, width=960, height=960))
    assert facts_source([square, thumb("small", 150, 113)]).size.name == "small"  # whole
    assert facts_source([square]).size.name == "square"


def test_the_blurhash_and_the_facts_share_one_decode_of_their_thumbnail(
    photo: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the default sizes the smallest thumbnail is the facts' source too: decoded once."""
    from media_worker.engines.placeholders import of_thumbnails

    engine = LocalEngine(max_pixels=10**8, max_video_seconds=60)
    thumbnails = engine.render(SourceMedia(photo, "b", "k"), SIZES,
                               OutputSpec(placeholders=frozenset())).thumbnails
    decoded: list[str] = []
    real = of_thumbnails.decoded_thumbnail
    monkeypatch.setattr(of_thumbnails, "decoded_thumbnail",
                        lambda thumb: decoded.append(thumb.size.name) or real(thumb))
    facts = of_thumbnails.placeholder_metadata(thumbnails, frozenset(
        {"blurhash", "thumbhash", "colors"}))
    assert {"placeholder", "thumbhash", "palette", "phash"} <= set(facts)
    assert decoded == ["small"]
