"""How often two different corpus pictures come within a pHash distance: `.venv/bin/python -m
bench.phash_pairs [--max-distance 10]`.

Every still under the corpus's `images/` is rendered as a job renders it (the in-process
engine, one `fit` size as the largest thumbnail, upright), and hashed from that thumbnail
(engines/phash.py). Every pair of distinct pictures is compared; the histogram of their
distances and the share within `--max-distance` (the false-match rate) are printed, with
every such pair named. Files no decoder accepts (most of `malformed/`, the refused bombs)
and flat pictures (no hash) are listed and left out.

Distinct means not one of the FAMILIES below: files the corpus holds as the same source
picture in several formats, orientations or crops (its MANIFEST names their common origin or
says so in its notes; the damaged `broken_data_stream.png` is Pillow's `hopper` with its
bottom rows garbled; the last family was found by looking at the closest pair). Those
pairs are near-duplicates by design: their largest distance is printed beside them, as a
check that they are found, not counted as false matches.
"""

from __future__ import annotations

import argparse
import fnmatch
import itertools
import sys
from collections import Counter

import pyvips

from bench.common import CORPUS, MAX_PIXELS
from media_worker.config import ThumbnailFormat
from media_worker.engines.local import LocalEngine
from media_worker.engines.phash import PerceptualHash, hamming, phash_of
from media_worker.engines.port import OutputSpec, SourceMedia
from media_worker.errors import PermanentError
from media_worker.types import ThumbnailSize

FAMILIES = {  # name -> globs of corpus paths holding the same picture
    "orientation Landscape (EXIF 1-8 and none)": ["images/orientation/Landscape_*"],
    "orientation Portrait (EXIF 1-8 and none)": ["images/orientation/Portrait_*"],
    "fox (AVIF bit depths, subsampling, monochrome)": ["images/formats/avif/fox.*"],
    "kimono (AVIF irot/imir, and a clap crop)": ["images/formats/avif/kimono.*"],
    "hopper (Pillow's test picture in 8 formats, grey, icon, damaged)": [
        "images/formats/*/hopper*", "images/malformed/broken_data_stream.png"],
    "iss634 (APNG, GIF, WebP)": ["images/formats/*/iss634.*"],
    "pil123 (RGBA, palette)": ["images/formats/png/pil123*"],
    "seine (AVIF SDR and PQ base with gain maps)": ["images/hdr/seine_*"],
    # Pillow's EXIF test chart, in the PNG stored upside down (orientation 3, which libvips
    # does not apply to PNG): found as the closest pair once these families were left out.
    "Pillow's EXIF test chart (AVIF, PNG)": ["images/formats/avif/pillow-exif.avif",
                                            "images/formats/png/exif_orientation.png"],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.phash_pairs", description=__doc__)
    parser.add_argument("--max-distance", type=int, default=10,
                        help="a pair this close or closer is a match (default 10)")
    parser.add_argument("--largest", type=int, default=1280,
                        help="the largest thumbnail's box the hash is read from (default 1280)")
    args = parser.parse_args(argv)
    if not (CORPUS / "MANIFEST.tsv").is_file():
        print(f"media corpus not found at {CORPUS} (set MEDIA_WORKER_CORPUS)", file=sys.stderr)
        return 2
    hashes = hash_corpus(args.largest)
    report(hashes, args.max_distance)
    return 0


def stills() -> list[str]:
    """The MANIFEST's paths under images/, in its order."""
    rows = (CORPUS / "MANIFEST.tsv").read_text().splitlines()[1:]
    return [row.split("\t")[0] for row in rows if row.startswith("images/")]


def hash_corpus(largest: int) -> dict[str, PerceptualHash | None]:
    """Each decodable still's hash (None: flat); files the engine refuses are reported."""
    engine = LocalEngine(max_pixels=MAX_PIXELS, max_video_seconds=60)
    size = [ThumbnailSize.parse(f"largest:{largest}x{largest}")]
    output = OutputSpec(format=ThumbnailFormat.PNG)  # lossless: the hash sees the thumbnail
    hashes: dict[str, PerceptualHash | None] = {}
    refused = []
    for relative in stills():
        try:
            result = engine.render(SourceMedia(CORPUS / relative, "b", "k"), size, output)
        except PermanentError as exc:
            refused.append(f"{relative} ({type(exc).__name__})")
            continue
        thumbnail = pyvips.Image.new_from_buffer(result.thumbnails[0].data, "")
        hashes[relative] = phash_of(thumbnail.copy_memory())
    print(f"{len(hashes) + len(refused)} stills under {CORPUS / 'images'}: {len(hashes)} "
          f"rendered, {len(refused)} refused by the engine (not counted):")
    for line in refused:
        print(f"  {line}")
    return hashes


def family_of(relative: str) -> str | None:
    for name, patterns in FAMILIES.items():
        if any(fnmatch.fnmatch(relative, pattern) for pattern in patterns):
            return name
    return None


def report(hashes: dict[str, PerceptualHash | None], max_distance: int) -> None:
    flat = [relative for relative, value in hashes.items() if value is None]
    hashed = {relative: value for relative, value in hashes.items() if value is not None}
    print(f"\n{len(flat)} flat pictures get no hash (not counted): {', '.join(flat)}")
    distinct, within = [], Counter()
    for (a, ha), (b, hb) in itertools.combinations(hashed.items(), 2):
        distance = hamming(ha, hb)
        family = family_of(a)
        if family is not None and family == family_of(b):
            within[family] = max(within[family], distance)
        else:
            distinct.append((distance, a, b))
    print("\nsame picture (excluded), the largest distance within each family:")
    for name in FAMILIES:
        print(f"  {within.get(name, '-'):>3}  {name}")
    histogram = Counter(distance for distance, _, _ in distinct)
    print(f"\n{len(hashed)} hashed pictures, {len(distinct)} pairs of distinct pictures; "
          "distance: pairs")
    print("  " + "  ".join(f"{d}:{histogram[d]}" for d in range(65) if histogram[d]))
    matches = sorted(pair for pair in distinct if pair[0] <= max_distance)
    rate = len(matches) / len(distinct) if distinct else 0.0
    print(f"\nfalse matches (distinct pictures within {max_distance}): {len(matches)} of "
          f"{len(distinct)} pairs = {rate:.4%}")
    for distance, a, b in matches:
        print(f"  {distance:>2}  {a}  {b}")
    print("\nthe 10 closest distinct pairs:")
    for distance, a, b in sorted(distinct)[:10]:
        print(f"  {distance:>2}  {a}  {b}")


if __name__ == "__main__":
    sys.exit(main())
