"""Storyboards, as video players use them for scrubbing previews: tiles laid out on sprite
sheets of at most 10 x 10, and a WebVTT file whose cues point at each tile
(`storyboard-N.jpg#xywh=x,y,w,h`), the convention of video.js, JW Player, Mux and others."""

from __future__ import annotations

from dataclasses import dataclass

MAX_COLUMNS = 10
MAX_ROWS = 10


@dataclass(frozen=True)
class TilePlace:
    """Where one tile goes: its sheet, and its rectangle on that sheet."""

    sheet: int
    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class SheetLayout:
    """How many tiles, how many columns and rows per sheet, and each tile's place."""

    tile_width: int
    tile_height: int
    count: int

    @property
    def columns(self) -> int:
        return max(1, min(MAX_COLUMNS, self.count))

    @property
    def per_sheet(self) -> int:
        return self.columns * MAX_ROWS

    @property
    def sheets(self) -> int:
        return max(1, -(-self.count // self.per_sheet))

    def rows_on(self, sheet: int) -> int:
        """Rows used on `sheet` (the last one may be partly filled)."""
        on_sheet = min(self.per_sheet, self.count - sheet * self.per_sheet)
        return max(1, -(-on_sheet // self.columns))

    def place(self, index: int) -> TilePlace:
        sheet, within = divmod(index, self.per_sheet)
        row, column = divmod(within, self.columns)
        return TilePlace(sheet, column * self.tile_width, row * self.tile_height,
                         self.tile_width, self.tile_height)


def webvtt(layout: SheetLayout, times: list[float], duration: float,
           sheet_name: str = "storyboard-{sheet}.jpg") -> str:
    """The WebVTT text: one cue per tile, from its time to the next tile's (the last to the
    end of the video), pointing at the tile's rectangle on its sheet (a relative URL, so the
    files can be served from wherever the thumbnails are)."""
    lines = ["WEBVTT", ""]
    for index, start in enumerate(times):
        end = times[index + 1] if index + 1 < len(times) else max(duration, start + 0.001)
        place = layout.place(index)
        lines += [f"{_timestamp(start)} --> {_timestamp(end)}",
                  f"{sheet_name.format(sheet=place.sheet)}"
                  f"#xywh={place.x},{place.y},{place.width},{place.height}", ""]
    return "\n".join(lines)


def _timestamp(seconds: float) -> str:
    milliseconds = round(seconds * 1000)
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{whole:02d}.{millis:03d}"
