"""Make the ThumbHash test vectors with the reference implementation itself.

    .venv/bin/python tests/data/thumbhash/make_vectors.py

Writes the input pictures (PNG, at most 100x100, made here from corpus files and by formula)
and `vectors.json`: for each, the hash Evan Wallace's `thumbhash.js` (npm `thumbhash`, fetched
with `npm pack` into a temporary folder) gives, and the RGBA its decoder paints from it; and
the SHA-256 of every cosine the encoder and decoder ask `Math.cos` for (pictures of 1 to 100
pixels a side, frequencies 0 to 7, as float64 little-endian). Needs Node (20 here), npm and
the corpus (../shared/corpus or MEDIA_WORKER_CORPUS).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pyvips

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
CORPUS = Path(os.environ.get("MEDIA_WORKER_CORPUS", REPO.parent / "shared" / "corpus"))
PACKAGE = "thumbhash@0.1.1"
# name -> (corpus file, fitted box): landscape and portrait, opaque and with alpha
FROM_CORPUS = {
    "landscape-opaque": ("images/camera/prairie_falcon.jpg", 100),
    "portrait-opaque": ("images/orientation/Portrait_0.jpg", 100),
    "square-alpha": ("images/formats/avif/plum-blossom-large.profile0.8bpc.yuv420.alpha-full.avif",
                     100),
    "landscape-alpha": ("images/formats/webp/lossy_alpha.webp", 100),
    "small-landscape-opaque": ("images/formats/heic/xiaomi.heic", 24),
}
NODE = """
import { rgbaToThumbHash, thumbHashToRGBA } from "./package/thumbhash.js";
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
const out = {};
for (const [name, v] of Object.entries(JSON.parse(readFileSync(0, "utf8")))) {
  const hash = rgbaToThumbHash(v.w, v.h, Buffer.from(v.rgba, "base64"));
  const painted = thumbHashToRGBA(hash);
  out[name] = {hash: Buffer.from(hash).toString("base64"), w: painted.w, h: painted.h,
               rgba: Buffer.from(painted.rgba).toString("base64")};
}
const cosines = [];
for (let n = 1; n <= 100; n++) for (let c = 0; c < 8; c++) for (let i = 0; i < n; i++)
  cosines.push(Math.cos(Math.PI / n * c * (i + 0.5)), Math.cos(Math.PI / n * (i + 0.5) * c));
const digest = createHash("sha256").update(new Uint8Array(new Float64Array(cosines).buffer));
process.stdout.write(JSON.stringify({vectors: out, cosines_sha256: digest.digest("hex")}));
"""


def main() -> None:
    pictures = {**{name: _corpus_picture(path, box) for name, (path, box) in FROM_CORPUS.items()},
                **_made_pictures()}
    for name, rgba in pictures.items():
        image = pyvips.Image.new_from_array(rgba, interpretation="srgb")
        image.pngsave(str(HERE / f"{name}.png"), compression=9, keep=0)
    inputs = {name: {"w": rgba.shape[1], "h": rgba.shape[0],
                     "rgba": base64.b64encode(rgba.tobytes()).decode()}
              for name, rgba in pictures.items()}
    outputs = _reference(inputs)
    vectors = {"made_by": f"tests/data/thumbhash/make_vectors.py with npm {PACKAGE} on Node",
               "cosines_sha256": outputs["cosines_sha256"],
               "vectors": {name: {"input": f"{name}.png", **outputs["vectors"][name]}
                           for name in pictures}}
    (HERE / "vectors.json").write_text(json.dumps(vectors, indent=1) + "\n")


def _corpus_picture(relative: str, box: int) -> np.ndarray:
    path = CORPUS / relative
    if path.suffix.lower() == ".heic":
        from PIL import Image
        from pillow_heif import register_heif_opener

        register_heif_opener()
        with Image.open(path) as opened:
            opened.thumbnail((box * 8, box * 8))
            image = pyvips.Image.new_from_array(np.asarray(opened.convert("RGB")),
                                                interpretation="srgb")
        image = image.thumbnail_image(box, height=box)
    else:
        image = pyvips.Image.thumbnail(str(path), box, height=box)
    if not image.hasalpha():
        image = image.bandjoin(255)
    return _array(image.colourspace("srgb").cast("uchar"))


def _made_pictures() -> dict[str, np.ndarray]:
    """Made by integer formulas (no floating point to drift): a portrait gradient with a
    half-transparent disc and a transparent corner, a wide strip, a 1x1 pixel, a picture that
    is transparent everywhere; and pictures flat along a direction, whose AC terms there are
    rounding noise: alpha and blue varying across only, one colour, a gradient down only with
    alpha, a checkerboard."""
    ys, xs = np.mgrid[0:90, 0:60]
    portrait = np.stack([xs * 4, ys * 2, 255 - ys * 2, np.full_like(xs, 255)], axis=-1)
    portrait[(xs - 30) ** 2 + (ys - 45) ** 2 < 400, 3] = 128
    portrait[(xs < 15) & (ys < 15), 3] = 0
    ys, xs = np.mgrid[0:10, 0:100]
    strip = np.stack([xs * 2, (xs * ys) % 256, np.full_like(xs, 40), np.full_like(xs, 255)],
                     axis=-1)
    ys, xs = np.mgrid[0:40, 0:50]
    fading = np.stack([np.full_like(xs, 200), np.full_like(xs, 30), xs * 5, xs * 5], axis=-1)
    return {"portrait-alpha-made": portrait.astype(np.uint8),
            "wide-strip-made": strip.astype(np.uint8),
            "one-pixel": np.array([[[10, 200, 30, 255]]], dtype=np.uint8),
            "all-transparent": np.zeros((20, 30, 4), dtype=np.uint8),
            "fading-alpha-made": fading.astype(np.uint8),
            **_flat_pictures()}


def _flat_pictures() -> dict[str, np.ndarray]:
    ys, xs = np.mgrid[0:48, 0:64]
    flat = np.zeros((30, 20, 4), dtype=np.uint8) + np.array([40, 120, 200, 255], np.uint8)
    down = np.stack([ys * 5, ys * 2, 255 - ys * 5, 255 - ys * 3], axis=-1)
    checks = np.where(((xs // 8) + (ys // 8)) % 2, 230, 20)
    board = np.stack([checks, checks, checks, np.full_like(xs, 255)], axis=-1)
    return {"flat-opaque-made": flat, "gradient-down-alpha-made": down.astype(np.uint8),
            "checkerboard-made": board.astype(np.uint8)}


def _array(image: pyvips.Image) -> np.ndarray:
    return np.ndarray(buffer=image.write_to_memory(), dtype=np.uint8,
                      shape=(image.height, image.width, image.bands)).copy()


def _reference(inputs: dict) -> dict:
    with tempfile.TemporaryDirectory(prefix="thumbhash-ref-") as scratch:
        subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=scratch, check=True,
                       capture_output=True)
        tarball = next(Path(scratch).glob("thumbhash-*.tgz"))
        subprocess.run(["tar", "xzf", tarball.name], cwd=scratch, check=True)
        (Path(scratch) / "make.mjs").write_text(NODE)
        done = subprocess.run(["node", "make.mjs"], cwd=scratch, check=True,
                              input=json.dumps(inputs), capture_output=True, text=True)
    return json.loads(done.stdout)


if __name__ == "__main__":
    main()
