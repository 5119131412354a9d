"""Bench 18 (`--only documents`): camera RAW and PDF jobs against the command-line tools and
the JPEG job of the same pixels (issue 16, "Speed").

- **18a RAW via the embedded preview**: `LocalEngine.render` of a DNG whose embedded JPEG
  preview is full size (the preview path) against the same job on that preview saved as a
  JPEG file (the same bytes): the preview path's cost over an ordinary JPEG is LibRaw opening
  the DNG and handing the preview over, and the RAW's EXIF read (the DNG carries a camera's
  Exif IFD; the preview is decoded as a JPEG file is, at its DCT shrink-on-load scale).
  Target ≤ 1.2×.
- **18b RAW demosaiced**: the same DNG without a preview decoded as the engine decodes it
  (rawpy's half-size `postprocess` with the camera's white balance into sRGB 8-bit, in this
  process) against `dcraw_emu -h -w -Z -` (Debian `libraw-bin`: the same decode, written as a
  PPM to /dev/null) on the same file: the same work on both sides. Target ≤ 1.2×. The whole
  job (`LocalEngine.render`: the decode, then the sizes, their encodes and the placeholders)
  is reported beside it without a target, and so are the corpus's RAW files LibRaw decodes
  (those that stock LibRaw refuses or that are cut are named and skipped).
- **18c PDF page 1**: `LocalEngine.render` of every corpus PDF that renders against
  `pdftoppm -r DPI -f 1 -l 1 -png -cropbox` (Debian `poppler-utils`), DPI being the
  resolution our render drew the page at for the largest size. Target ≤ 1.0×.

The DNGs are made once per run in the bench's temporary directory by the test helpers
(tests/unit/raw_fixtures.py: a corpus photo upscaled to 12 MP, or 12 and 24 MP in a full run,
mosaiced to RGGB in linear light, written by pidng). Every figure is a median of wall time
over the repetitions, interleaved (ours, the anchor, ours, …) so load from other processes
weighs on both alike; the tools' figure includes their process start-up, ours runs in this
process after a warm-up (as in a decoder process that has seen a RAW or a PDF before). CPU
medians (ours: this process, every thread; the tools': the child's) are noted beside.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyvips

from bench.common import (
    CORPUS,
    MAX_PIXELS,
    SIZES,
    Inputs,
    Report,
    Row,
    Skip,
    Target,
    interleaved_timings,
    local_engine,
    median,
    seconds,
    timed,
    timed_command,
)
from media_worker.engines.encode import largest_box
from media_worker.engines.local import LocalEngine
from media_worker.engines.port import OutputSpec, SourceMedia

PREVIEW_TARGET = Target("<=", 1.2)
DEMOSAIC_TARGET = Target("<=", 1.2)
PDF_TARGET = Target("<=", 1.0)
# Corpus RAW files, tried in turn: those LibRaw decodes are benched too.
RAW_SUFFIXES = (".dng", ".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf", ".rw2", ".pef",
                ".gpr")


def documents_bench(inputs: Inputs, reps: int, report: Report) -> None:
    missing = [tool for tool in ("dcraw_emu", "pdftoppm") if not shutil.which(tool)]
    scratch = Path(tempfile.mkdtemp(prefix="bench-documents-", dir=inputs.workdir))
    engine = local_engine()
    try:
        _raw_benches(inputs, reps, report, engine, scratch, dcraw="dcraw_emu" not in missing)
        if "pdftoppm" in missing:
            report.note("18c skipped: pdftoppm is not installed (scripts/ensure-tools.sh "
                        "--bench: Debian poppler-utils)")
        else:
            _pdf_bench(inputs, reps, report, engine, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if missing:
        raise Skip(f"{', '.join(missing)} not installed (scripts/ensure-tools.sh --bench)")


# --- RAW ------------------------------------------------------------------------------------
def _raw_benches(inputs: Inputs, reps: int, report: Report, engine: LocalEngine,
                 scratch: Path, *, dcraw: bool) -> None:
    for pixels in (12e6,) if inputs.quick else (12e6, 24e6):
        with_preview, without, jpeg, size = _dngs(inputs, pixels, scratch)
        case = f"DNG {size[0]}x{size[1]} ({size[0] * size[1] / 1e6:.0f} MP)"
        times = interleaved_timings({
            "preview": _ours(engine, with_preview),
            "jpeg": _ours(engine, jpeg),
        }, reps)
        _check_source(engine, with_preview, "embedded-preview")
        report.add(Row("18a RAW via embedded preview (wall)", f"{case}, full-size preview",
                       f"{seconds(median(times['preview'].wall))} DNG",
                       f"{seconds(median(times['jpeg'].wall))} JPEG of the preview",
                       median(times["preview"].wall) / median(times["jpeg"].wall),
                       PREVIEW_TARGET))
        report.note(f"18a {case}: CPU {seconds(median(times['preview'].cpu))} DNG vs "
                    f"{seconds(median(times['jpeg'].cpu))} JPEG "
                    f"({median(times['preview'].cpu) / median(times['jpeg'].cpu):.2f}×)")
        _check_source(engine, without, "demosaic")
        if dcraw:
            _demosaic_row(engine, without, f"{case}, no preview", reps=reps, report=report,
                          scratch=scratch)
    if dcraw:
        _corpus_raws(inputs, engine, reps, report, scratch)
    else:
        report.note("18b skipped: dcraw_emu is not installed (scripts/ensure-tools.sh --bench: "
                    "Debian libraw-bin)")


def _dngs(inputs: Inputs, pixels: float, scratch: Path) -> tuple[Path, Path, Path,
                                                                  tuple[int, int]]:
    """A DNG with a full-size embedded JPEG preview, the same without, and that preview as a
    JPEG file (the very bytes embedded)."""
    from tests.unit.raw_fixtures import _jpeg, make_dng

    started = time.perf_counter()
    picture = pyvips.Image.new_from_file(str(inputs._upscaled(pixels)))[:3].copy_memory()
    picture = picture.crop(0, 0, picture.width - picture.width % 2,
                           picture.height - picture.height % 2).copy_memory()
    label = f"{round(pixels / 1e6)}mp"
    jpeg = scratch / f"preview-{label}.jpg"
    jpeg.write_bytes(_jpeg(picture, None))
    with_preview = make_dng(scratch / f"with-preview-{label}.dng", picture, preview=picture)
    without = make_dng(scratch / f"no-preview-{label}.dng", picture)
    print(f"  made the {label} DNGs in {time.perf_counter() - started:.0f} s", flush=True)
    return with_preview, without, jpeg, (picture.width, picture.height)


def _demosaic_row(engine: LocalEngine, dng: Path, case: str, *, reps: int, report: Report,
                  scratch: Path) -> None:
    times = interleaved_timings({
        "ours": _ours(engine, dng),
        "decode": _decode_only(dng),
        "dcraw": _tool(["dcraw_emu", "-h", "-w", "-Z", "-", str(dng)], cwd=scratch),
    }, reps)
    decode, dcraw = median(times["decode"].wall), median(times["dcraw"].wall)
    job = median(times["ours"].wall)
    report.add(Row("18b RAW demosaiced (wall)", case, f"{seconds(decode)} decode",
                   f"{seconds(dcraw)} dcraw_emu -h", decode / dcraw, DEMOSAIC_TARGET))
    report.add(Row("18b whole job (wall)", case,
                   f"{seconds(job)} job (+3 encodes, placeholders, pHash)",
                   f"{seconds(dcraw)} dcraw_emu -h", job / dcraw))
    report.note(f"18b {case}: CPU {seconds(median(times['ours'].cpu))} job, "
                f"{seconds(median(times['decode'].cpu))} rawpy half-size decode alone, "
                f"{seconds(median(times['dcraw'].cpu))} dcraw_emu -h")


def _corpus_raws(inputs: Inputs, engine: LocalEngine, reps: int, report: Report,
                 scratch: Path) -> None:
    """The corpus's RAW files LibRaw decodes, benched like the DNG; the others named."""
    import rawpy

    refused = []
    for relative in sorted(inputs.manifest):
        path = CORPUS / relative
        if path.suffix.lower() not in RAW_SUFFIXES or not path.is_file():
            continue
        try:
            with rawpy.imread(str(path)) as raw:
                if int(raw.postprocess(half_size=True, output_bps=8).max()) <= 3:
                    raise ValueError("decodes to all black")
            engine.render(SourceMedia(path, "bench", path.name), SIZES, OutputSpec())
        except Exception as exc:
            refused.append(f"{relative} ({type(exc).__name__})")
            continue
        _demosaic_row(engine, path, relative, reps=reps, report=report, scratch=scratch)
    if refused:
        report.note("18b corpus RAW files not benched (LibRaw or the engine refuses them, as "
                    "their README expects): " + ", ".join(refused))


def _check_source(engine: LocalEngine, dng: Path, expected: str) -> None:
    result = engine.render(SourceMedia(dng, "bench", dng.name), SIZES, OutputSpec())
    if result.metadata.get("rawSource") != expected:
        raise RuntimeError(f"{dng.name} took the {result.metadata.get('rawSource')} path, "
                           f"not {expected}")


# --- PDF ------------------------------------------------------------------------------------
def _pdf_bench(inputs: Inputs, reps: int, report: Report, engine: LocalEngine,
               scratch: Path) -> None:
    import pypdfium2 as pdfium

    from media_worker.engines.pdf import page_pixels, render_scale

    pdfs = sorted(relative for relative in inputs.manifest
                  if relative.startswith("documents/pdf/") and relative.endswith(".pdf"))
    ratios = []
    for relative in pdfs:
        path = inputs.corpus_file(relative)
        document = pdfium.PdfDocument(str(path))
        try:
            width_pt, height_pt = document[0].get_size()
        finally:
            document.close()
        width, height = page_pixels(width_pt, height_pt)
        dpi = render_scale(width_pt, height_pt, largest_box(width, height, SIZES),
                           MAX_PIXELS) * 72
        times = interleaved_timings({
            "ours": _ours(engine, path),
            "pdftoppm": _tool(["pdftoppm", "-r", f"{dpi:.3f}", "-f", "1", "-l", "1", "-png",
                               "-cropbox", str(path), str(scratch / "page")], cwd=scratch),
        }, reps)
        ours, anchor = median(times["ours"].wall), median(times["pdftoppm"].wall)
        ratios.append(ours / anchor)
        report.add(Row("18c PDF page 1 (wall)", f"{path.name} at {dpi:.0f} dpi",
                       f"{seconds(ours)} job", f"{seconds(anchor)} pdftoppm",
                       ours / anchor, PDF_TARGET))
        report.note(f"18c {path.name}: CPU {seconds(median(times['ours'].cpu))} job vs "
                    f"{seconds(median(times['pdftoppm'].cpu))} pdftoppm")


# --- measuring ------------------------------------------------------------------------------
def _ours(engine: LocalEngine, path: Path) -> Callable[[], tuple[float, float]]:
    source = SourceMedia(path, "bench", path.name)
    return lambda: timed(lambda: engine.render(source, SIZES, OutputSpec()))


def _decode_only(path: Path) -> Callable[[], tuple[float, float]]:
    """LibRaw's half-size decode as the engine asks for it, nothing after it."""
    import rawpy

    def decode() -> None:
        with rawpy.imread(str(path)) as raw:
            raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8,
                            output_color=rawpy.ColorSpace.sRGB)
    return lambda: timed(decode)


def _tool(args: list[str], *, cwd: Path) -> Callable[[], tuple[float, float]]:
    return lambda: timed_command(args, cwd=cwd)
