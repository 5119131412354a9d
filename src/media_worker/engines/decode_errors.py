"""How a decoder's failure reads in the row's `error`: one line, the decoder's own words, no
scratch-file path (it means nothing to the reader of the row)."""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from media_worker.engines.sniff import MediaType, sniff

if TYPE_CHECKING:
    import pyvips

MAX_DETAIL_CHARS = 200  # a row's error is read in a list of jobs, not as a log


def decode_error(media_type: MediaType, detail: str, path: Path) -> str:
    """`cannot decode FORMAT: <the decoder's words>`."""
    return _cannot_decode(media_type.format.upper(), detail, path)


def unexpected_error(path: Path | None, exc: BaseException) -> str:
    """`cannot decode FORMAT: <ExceptionType> at <file:line>: <its words>` for an exception a
    decoder process raised that no code path translated (a fuzzed file reaching a branch of a
    library binding nobody expected). It is about these bytes, so it reads as a decode failure;
    the type and the place tell a developer where to look."""
    try:
        what = sniff(path).format.upper() if path is not None else "this file"
    except Exception:  # naming the format is a courtesy, never a second failure
        what = "this file"
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    words = str(exc)
    return _cannot_decode(what, f"{type(exc).__name__}{where}" + (f": {words}" if words else ""),
                          path)


def vips_detail(exc: pyvips.Error) -> str:
    """libvips' own words: the first line of its error buffer, else pyvips' summary."""
    for line in (exc.detail or "").splitlines():
        if line.strip():
            return line.strip()
    return exc.message or "unknown libvips error"


def ffmpeg_message(exc: Any) -> str:
    """FFmpeg's words without the errno number and the file name PyAV appends."""
    return str(getattr(exc, "strerror", None) or exc)


def _cannot_decode(what: str, detail: str, path: Path | None) -> str:
    """`path` None: an original read in place, which has no scratch path to hide."""
    if path is not None:
        for spelling in (f"{path}: ", f" '{path}'", f' "{path}"', f"'{path}'", f'"{path}"'):
            detail = detail.replace(spelling, "")
        detail = detail.replace(str(path), "the file")
    detail = " ".join(detail.split())
    return f"cannot decode {what}: {detail[:MAX_DETAIL_CHARS]}"
