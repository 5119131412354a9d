"""`media-worker similar` and `duplicates` on the embedded default: a library of rows with
known hashes, and end to end from uploads (the PostgreSQL side of the search is in
tests/contract/test_phash_contract.py)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from PIL import Image

from media_worker.repository.port import NewMedia
from tests.integration.deployments import Deployment

BASE = 0xF0E1D2C3B4A59687
OTHER = 0x0123456789ABCDEF  # 32 bits from BASE


def flipped(value: int, bits: int, start: int = 0) -> int:
    """`value` with `bits` bits flipped, from bit `start` up."""
    return value ^ (((1 << bits) - 1) << start)


def library(deployment: Deployment, hashes: dict[str, int | None]) -> dict[str, str]:
    """READY rows with these hashes (None: none) under these names; their ids by name."""
    ids = {}
    with deployment.components() as components:
        repository = components.repository
        for name, value in hashes.items():
            media_id = str(uuid.uuid4())
            repository.insert(NewMedia(id=media_id, bucket="media", key=f"uploads/{name}.jpg"))
            claim = repository.claim(media_id, 300)
            assert claim is not None
            metadata = {"width": 640, "height": 480}
            if value is not None:
                metadata["phash"] = f"{value:016x}"
            assert repository.complete(claim, [], metadata)
            ids[name] = media_id
    return ids


def as_json(deployment: Deployment, *args: str) -> dict:
    result = deployment.command(*args, "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no progress bar with --json
    return json.loads(result.stdout)


def test_similar_lists_nearest_first_within_the_distance(
    embedded_deployment: Deployment,
) -> None:
    ids = library(embedded_deployment, {
        "photo": BASE, "resized": flipped(BASE, 1), "recompressed": flipped(BASE, 3, 20),
        "cropped": flipped(BASE, 9), "other": OTHER, "flat": None})
    answer = as_json(embedded_deployment, "similar", ids["photo"])
    assert answer["phash"] == f"{BASE:016x}"
    assert answer["maxDistance"] == 8
    assert [(m["id"], m["distance"]) for m in answer["similar"]] == [
        (ids["resized"], 1), (ids["recompressed"], 3)]
    assert answer["similar"][0] == {"id": ids["resized"], "distance": 1,
                                    "key": "uploads/resized.jpg", "width": 640, "height": 480}
    wider = as_json(embedded_deployment, "similar", ids["photo"], "--max-distance", "9")
    assert [m["id"] for m in wider["similar"]][-1] == ids["cropped"]

    text = embedded_deployment.command("similar", ids["photo"], "--max-distance", "1")
    assert text.returncode == 0, text.stderr
    assert ids["resized"] in text.stdout
    assert "uploads/resized.jpg" in text.stdout
    assert ids["recompressed"] not in text.stdout

    unknown = embedded_deployment.command("similar", "no-such-id")
    assert (unknown.returncode, unknown.stderr.strip()) == (
        1, "media-worker: no media with id no-such-id")
    unhashed = embedded_deployment.command("similar", ids["flat"])
    assert unhashed.returncode == 1
    assert f"media {ids['flat']} has no perceptual hash" in unhashed.stderr


def test_duplicates_groups_what_links_connect(embedded_deployment: Deployment) -> None:
    hashes = {
        "a": BASE, "a-copy": BASE, "a-near": flipped(BASE, 2),
        # a chain: each link within 4 bits, its ends 8 apart
        "b": OTHER, "b-1": flipped(OTHER, 4), "b-2": flipped(flipped(OTHER, 4), 4, 30),
        "single": 0x5555AAAA5555AAAA, "flat": None}
    ids = library(embedded_deployment, hashes)
    names = {media_id: name for name, media_id in ids.items()}
    answer = as_json(embedded_deployment, "duplicates")
    assert (answer["maxDistance"], answer["hashed"]) == (4, 7)
    groups = [[names[m["id"]] for m in group] for group in answer["groups"]]
    assert sorted(map(sorted, groups)) == [["a", "a-copy", "a-near"], ["b", "b-1", "b-2"]]
    for group in answer["groups"]:  # members by id, each with its distance to the first
        assert [m["id"] for m in group] == sorted(m["id"] for m in group)
        first = hashes[names[group[0]["id"]]]
        for member in group:
            assert member["distance"] == (first ^ hashes[names[member["id"]]]).bit_count()
    exact = as_json(embedded_deployment, "duplicates", "--max-distance", "0")
    assert [{m["id"] for m in g} for g in exact["groups"]] == [{ids["a"], ids["a-copy"]}]
    text = embedded_deployment.command("duplicates")
    assert text.returncode == 0, text.stderr
    assert "2 groups of near-duplicates (6 media) among 7 hashed READY media" in text.stdout


def test_a_reencoded_and_resized_upload_is_found_end_to_end(
    embedded_deployment: Deployment, corpus: Path, tmp_path: Path,
) -> None:
    photo = corpus / "images" / "camera" / "DSCN0010.jpg"
    copy = tmp_path / "copy.jpg"
    with Image.open(photo) as original:
        original.resize((original.width // 2, original.height // 2),
                        Image.Resampling.LANCZOS).save(copy, quality=60)
    other = corpus / "images" / "camera" / "prairie_falcon.jpg"
    first, second, different = embedded_deployment.enqueue(photo, copy, other)
    embedded_deployment.drain()
    answer = as_json(embedded_deployment, "similar", first)
    assert [m["id"] for m in answer["similar"]] == [second]
    assert answer["similar"][0]["distance"] <= 6
    assert different not in {m["id"] for m in answer["similar"]}
