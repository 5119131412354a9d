"""Commands that find near-duplicates by perceptual hash: similar, duplicates (docs/media.md,
"Perceptual hashes"). They only read."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import Progress, TaskID

from media_worker.cli.common import fail, operator_session
from media_worker.cli.root import app
from media_worker.repository.port import PerceptualIndex, SimilarMedia
from media_worker.similarity import hash_bits
from media_worker.types import MediaRecord, MediaStatus

if TYPE_CHECKING:  # numpy: see `duplicates`
    from media_worker.duplicates import Member

PANEL = "Inspect"
BATCH = 10_000  # hashes read per statement by `duplicates`
# `duplicates` compares hashes sharing one of max_distance + 1 chunks: past this the chunks
# are so short that nearly every pair shares one (docs/media.md, "Perceptual hashes").
MAX_GROUP_DISTANCE = 10
HEX16 = re.compile(r"[0-9a-fA-F]{16}")


@app.command(rich_help_panel=PANEL)
def similar(
    media_id: Annotated[str, typer.Argument(
        metavar="ID", help="The media whose near-duplicates to list.")],
    max_distance: Annotated[int, typer.Option(
        min=0, max=64, help="At most this many of the 64 bits of the perceptual hash differ. "
                            "The same photo re-encoded or resized stays within 6; different "
                            "photos are rarely within 10.")] = 8,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List READY media whose perceptual hash is near ID's, nearest first.

    Within --max-distance bits of 64, then by id: distance, id, width x height, key."""
    with operator_session("similar") as (_settings, components):
        record = components.repository.get(media_id)
        if record is None:
            fail(f"no media with id {media_id}")
        bits = _hash_of(record)
        found = components.repository.perceptual_index().similar(
            bits, max_distance, exclude=media_id, limit=limit)
    if as_json:
        typer.echo(json.dumps({"id": media_id, "phash": f"{bits:016x}",
                               "maxDistance": max_distance,
                               "similar": [_similar_json(item) for item in found]}))
        return
    _print_similar(media_id, max_distance, found)


@app.command(rich_help_panel=PANEL)
def duplicates(
    max_distance: Annotated[int, typer.Option(
        min=0, max=MAX_GROUP_DISTANCE,
        help="Link two media when at most this many bits of their perceptual hashes "
             "differ; groups are what these links connect.")] = 4,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print JSON (and no progress bar).")] = False,
) -> None:
    """Group the whole library's READY media into near-duplicate groups.

    Two media are linked when their hashes are within --max-distance; a group is every media
    linked to it directly or through others (so two members may be farther apart: each
    member's distance to the group's first is shown). Largest groups first."""
    # Imported here: numpy would otherwise load in every worker process, which imports the
    # CLI to run but never groups the library.
    from media_worker.duplicates import chunks, near_duplicate_groups

    console = Console(stderr=True)
    with Progress(console=console, transient=True,
                  disable=as_json or not console.is_terminal) as bar:
        with operator_session("duplicates") as (_settings, components):
            hashes = list(_read(components.repository.perceptual_index(), bar))
        task = bar.add_task("comparing", total=len(chunks(max_distance)))
        groups = near_duplicate_groups(hashes, max_distance,
                                       steps=lambda passes: _advancing(passes, bar, task))
    if as_json:
        typer.echo(json.dumps({"maxDistance": max_distance, "hashed": len(hashes),
                               "groups": [[_member_json(m) for m in g] for g in groups]}))
        return
    _print_groups(groups, len(hashes), max_distance)


def _hash_of(record: MediaRecord) -> int:
    """The row's hash, or a readable failure saying why it has none."""
    value = (record.metadata or {}).get("phash")
    if not (isinstance(value, str) and HEX16.fullmatch(value)):
        fail(_no_hash(record))
    return hash_bits(value)


def _no_hash(record: MediaRecord) -> str:
    if record.status is not MediaStatus.READY:
        return (f"media {record.id} has no perceptual hash yet: it is {record.status.value} "
                "(a hash comes with READY)")
    return (f"media {record.id} has no perceptual hash: a flat picture has none, and a row "
            "READY before the worker computed them gets one when it is processed again")


def _read(index: PerceptualIndex, bar: Progress) -> Iterator[tuple[str, int]]:
    task = bar.add_task("reading hashes", total=index.count())
    for batch in index.batches(BATCH):
        yield from batch
        bar.advance(task, len(batch))


def _advancing(passes: Iterable[int], bar: Progress, task: TaskID) -> Iterator[int]:
    for step in passes:
        yield step
        bar.advance(task)


def _similar_json(item: SimilarMedia) -> dict[str, object]:
    return {"id": item.id, "distance": item.distance, "key": item.key, "width": item.width,
            "height": item.height}


def _member_json(member: Member) -> dict[str, object]:
    return {"id": member.id, "distance": member.distance}


def _print_similar(media_id: str, max_distance: int, found: list[SimilarMedia]) -> None:
    """One line per media (distance, id, size, key): never wrapped, so ids stay whole."""
    if not found:
        typer.echo(f"no READY media within {max_distance} bits of {media_id}")
        return
    for item in found:
        size = f"{item.width}x{item.height}" if item.width and item.height else "-"
        typer.echo(f"{item.distance:>2}  {item.id}  {size:<11}  {item.key}")


def _print_groups(groups: list[list[Member]], hashed: int, max_distance: int) -> None:
    for number, group in enumerate(groups, start=1):
        typer.echo(f"group {number}: {len(group)} media")
        for member in group:
            typer.echo(f"  {member.distance:>2}  {member.id}")
    grouped = sum(len(group) for group in groups)
    typer.echo(f"{len(groups)} group{'s' if len(groups) != 1 else ''} of near-duplicates "
               f"({grouped} media) among {hashed} hashed READY media, within {max_distance} "
               "bits")
