"""Grid HEICs decoded tile by tile (engines/images/heic_tiles.py): the pixels of libheif's
whole decode, turned as libheif turns them, within the limits; and the corpus' 200 MP Samsung
photo, which a whole decode cannot afford, inside the decode memory budget."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pillow_heif
import pytest
import pyvips
from PIL import Image

from media_worker.config import DEFAULT_SIZES, ThumbnailFormat
from media_worker.engines.images import heic_tiles
from media_worker.engines.images.libheif import Transform, library, open_primary
from media_worker.engines.images.pillow import render_with_pillow
from media_worker.engines.port import OutputSpec
from media_worker.engines.probe import EXIF_ORIENTATION, register_pillow_plugins
from media_worker.engines.sniff import sniff
from media_worker.errors import CorruptMediaError, LimitExceededError
from media_worker.types import ThumbnailSize
from tests.unit.test_fidelity import ssim

SIZES = ThumbnailSize.parse_list(DEFAULT_SIZES)
PNG = OutputSpec(ThumbnailFormat.PNG)  # lossless: the pictures are compared, not an encoder
WIDTH, HEIGHT, TILE = 360, 248, 64  # 6x4 tiles: the last column and row overhang
PHOTO_200MP = "images/hdr/200MP.heic"
# The decode memory budget's default (DECODE_MEMORY_MB): what one decode may add to its
# process. A whole decode of the 200 MP photo takes over 1.3 GB.
BUDGET_BYTES = 128 * 1024 * 1024
PEAK_BYTES = 256 * 1024 * 1024  # the decoder process, interpreter and libraries included

pytestmark = pytest.mark.skipif(library() is None, reason="libheif has no tile API here")


@pytest.fixture(scope="module")
def grids(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """One photo as grid HEICs, by EXIF orientation (which pillow-heif writes as irot/imir)."""
    register_pillow_plugins()
    folder = tmp_path_factory.mktemp("grids")
    photo = Image.open(corpus / "images/camera/prairie_falcon.jpg").convert("RGB")
    photo = photo.resize((WIDTH, HEIGHT))
    files = {}
    for orientation in (1, 2, 4, 6, 7, 8):
        exif = Image.Exif()
        exif[EXIF_ORIENTATION] = orientation
        files[orientation] = folder / f"grid-{orientation}.heic"
        photo.save(files[orientation], exif=exif.tobytes(), tile_size=TILE, quality=80)
    return files


def whole_decode(path: Path) -> Image.Image:
    return pillow_heif.open_heif(path).to_pillow()


def tiled(path: Path, factor: int) -> Image.Image:
    with open_primary(library(), path) as primary:  # type: ignore[arg-type]
        tiling, transforms = primary.tiling(), primary.transforms()
        phase = heic_tiles.block_phase(tiling, transforms, factor)
        reduced = heic_tiles.reduced_by_tiles(primary, tiling, factor, phase)
        return heic_tiles.transformed(reduced, transforms, factor)


def largest_difference(first: Image.Image, second: Image.Image) -> int:
    assert first.size == second.size
    return int(np.abs(np.asarray(first, np.int16) - np.asarray(second, np.int16)).max())


def test_a_grid_reduced_row_by_row_has_the_pixels_of_the_whole_decode_reduced(
        grids: dict[int, Path]) -> None:
    """3 divides neither the tile nor the picture: lines carry over from row to row and the
    last block of each side is partial, as in `Image.reduce` of the whole picture."""
    assert largest_difference(tiled(grids[1], 3), whole_decode(grids[1]).reduce(3)) <= 1


@pytest.mark.parametrize("orientation", [2, 4, 6, 7, 8])
def test_the_items_transformations_turn_the_reduced_picture_as_libheif_turns_it(
        grids: dict[int, Path], orientation: int) -> None:
    """Reduced by 3 before it is turned, the picture has the blocks of the upright one."""
    assert largest_difference(tiled(grids[orientation], 3),
                              whole_decode(grids[orientation]).reduce(3)) <= 1


def test_thumbnails_from_the_tiles_match_those_of_the_whole_decode(
        grids: dict[int, Path]) -> None:
    """Sizes the picture is reduced by 3 for, turned a quarter by its `irot`."""
    path, sizes = grids[6], ThumbnailSize.parse_list("s:60x60,m:100x100")
    options = {"max_pixels": 10**8, "budget": None}
    from_tiles = heic_tiles.render_tiled_heic(path, sniff(path), sizes, PNG,
                                              max_header_pixels=10**9, **options)
    whole = render_with_pillow(path, sniff(path), sizes, PNG, **options)
    assert from_tiles is not None
    assert from_tiles.metadata == whole.metadata
    for mine, theirs in zip(from_tiles.thumbnails, whole.thumbnails, strict=True):
        assert (mine.width, mine.height) == (theirs.width, theirs.height)
        assert ssim(pyvips.Image.new_from_buffer(mine.data, ""),
                    pyvips.Image.new_from_buffer(theirs.data, "")) >= 0.99


def test_a_clean_aperture_crop_is_scaled_to_the_reduced_picture() -> None:
    reduced = Image.new("RGB", (150, 100))
    cropped = heic_tiles.transformed(reduced, [Transform("crop", borders=(40, 0, 80, 20))], 4)
    assert cropped.size == (120, 95)


def test_a_picture_of_one_tile_is_left_to_the_whole_decode(tmp_path: Path) -> None:
    register_pillow_plugins()
    path = tmp_path / "single.heic"
    Image.new("RGB", (64, 48), (200, 30, 30)).save(path, quality=50)
    assert heic_tiles.render_tiled_heic(path, sniff(path), SIZES, OutputSpec(), max_pixels=10**8,
                                        max_header_pixels=10**9, budget=None) is None


def test_a_header_over_max_header_pixels_is_refused_before_any_tile_is_decoded(
        grids: dict[int, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A grid whose `ispe` and grid descriptor claim 33000x31000 (1.02 gigapixels)."""
    data = bytearray(grids[1].read_bytes())
    for old, new in ((struct.pack(">BBBBHH", 0, 0, 3, 5, WIDTH, HEIGHT),
                      struct.pack(">BBBBHH", 0, 0, 3, 5, 33000, 31000)),
                     (b"ispe\0\0\0\0" + struct.pack(">II", WIDTH, HEIGHT),
                      b"ispe\0\0\0\0" + struct.pack(">II", 33000, 31000))):
        assert data.count(old) == 1
        data[data.index(old):data.index(old) + len(old)] = new
    path = tmp_path / "absurd.heic"
    path.write_bytes(bytes(data))
    monkeypatch.setattr(heic_tiles.Primary, "decode_tile",
                        lambda *_: pytest.fail("a tile was decoded"))
    with pytest.raises(LimitExceededError, match=r"33000x31000.*MAX_HEADER_PIXELS"):
        heic_tiles.render_tiled_heic(path, sniff(path), SIZES, OutputSpec(), max_pixels=10**8,
                                     max_header_pixels=10**9, budget=None)


def test_a_grid_that_would_hold_more_than_max_pixels_is_refused(
        grids: dict[int, Path]) -> None:
    """A row of tiles and the reduced picture count, not the header."""
    path = grids[1]
    with pytest.raises(LimitExceededError, match=r"tile by tile.*MAX_PIXELS"):
        heic_tiles.render_tiled_heic(path, sniff(path), SIZES, OutputSpec(),
                                     max_pixels=WIDTH * TILE, max_header_pixels=10**9,
                                     budget=None)


def test_a_truncated_grid_fails_as_corrupt_with_libheifs_reason(
        grids: dict[int, Path], tmp_path: Path) -> None:
    path = tmp_path / "cut.heic"
    path.write_bytes(grids[1].read_bytes()[:4000])
    with pytest.raises(CorruptMediaError, match=r"cannot decode HEIC: .*end of file"):
        heic_tiles.render_tiled_heic(path, sniff(path), SIZES, OutputSpec(), max_pixels=10**8,
                                     max_header_pixels=10**9, budget=None)


# --- the 200 MP photo, in a process of its own: its peak memory is the decode's --------------
SCRIPT = """
import json, sys
from pathlib import Path
from media_worker.config import DEFAULT_SIZES, Settings
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, SourceMedia
from media_worker.types import ThumbnailSize

def status(field):
    return int(Path("/proc/self/status").read_text().split(field + ":")[1].split()[0]) * 1024

defaults = Settings.model_construct()
engine = LocalEngine(max_pixels=defaults.max_pixels, max_video_seconds=60,
                     max_header_pixels=defaults.max_header_pixels)
sizes = ThumbnailSize.parse_list(DEFAULT_SIZES)
warm, photo = (SourceMedia(Path(name), "b", "k") for name in sys.argv[1:])
engine.render(warm, sizes, OutputSpec())  # the libraries loaded, as in a decoder process
before = status("VmRSS")
result = engine.render(photo, sizes, OutputSpec())
print(json.dumps({"width": result.metadata["width"], "height": result.metadata["height"],
                  "thumbnails": [[t.width, t.height] for t in result.thumbnails],
                  "before": before, "peak": status("VmHWM")}))
"""


@pytest.fixture(scope="module")
def photo_200mp(corpus: Path, grids: dict[int, Path]) -> dict[str, object]:
    """The 200 MP photo rendered once with the default limits, in a fresh interpreter."""
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(grids[1]), str(corpus / PHOTO_200MP)],
                          capture_output=True, text=True, check=True, timeout=240)
    return json.loads(done.stdout.splitlines()[-1])


def test_a_200mp_photo_gives_its_thumbnails_at_its_upright_size(
        photo_200mp: dict[str, object]) -> None:
    """Coded 16320x12240 with `irot`: shown portrait."""
    assert (photo_200mp["width"], photo_200mp["height"]) == (12240, 16320)
    assert photo_200mp["thumbnails"] == [[113, 150], [360, 480], [960, 1280]]


def test_a_200mp_photo_decodes_within_the_decode_memory_budget(
        photo_200mp: dict[str, object]) -> None:
    before, peak = int(photo_200mp["before"]), int(photo_200mp["peak"])  # type: ignore[call-overload]
    assert peak - before < BUDGET_BYTES
    assert peak < PEAK_BYTES
