"""The colour maths of the HDR path, checked against colour-science (an independent
implementation of the same standards) and against the properties the curves promise."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from media_worker.engines.color.gamut import conversion, to_bt709
from media_worker.engines.color.signal import Signal, hdr_to_sdr
from media_worker.engines.color.tonemap import CURVES, SDR_WHITE_NITS, bt2390, tone_map
from media_worker.engines.color.transfer import (
    hlg_to_nits,
    nits_to_pq,
    pq_to_nits,
    srgb_decode,
    srgb_encode,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import colour

CODES = np.linspace(0, 1, 101, dtype=np.float32)


def test_pq_matches_st2084() -> None:
    np.testing.assert_allclose(pq_to_nits(CODES), colour.models.eotf_ST2084(CODES),
                               rtol=1e-4, atol=1e-4)


def test_pq_round_trips() -> None:
    nits = np.array([0.01, 1, 100, 203, 1000, 4000, 10_000], dtype=np.float32)
    np.testing.assert_allclose(pq_to_nits(nits_to_pq(nits)), nits, rtol=1e-3)


def test_hlg_matches_bt2100_at_1000_nits() -> None:
    rgb = np.random.default_rng(7).random((64, 3)).astype(np.float32)
    expected = colour.models.eotf_BT2100_HLG(rgb, L_B=0, L_W=1000)
    np.testing.assert_allclose(hlg_to_nits(rgb), expected, rtol=2e-3, atol=1e-3)


def test_srgb_matches_iec_61966() -> None:
    np.testing.assert_allclose(srgb_encode(CODES), colour.models.eotf_inverse_sRGB(CODES),
                               atol=1e-5)
    np.testing.assert_allclose(srgb_decode(srgb_encode(CODES)), CODES, atol=1e-5)


@pytest.mark.parametrize(("source", "name"), [("bt2020", "ITU-R BT.2020"),
                                              ("p3", "Display P3")])
def test_gamut_matrices_match_colour_science(source: str, name: str) -> None:
    expected = colour.matrix_RGB_to_RGB(colour.RGB_COLOURSPACES[name],
                                        colour.RGB_COLOURSPACES["ITU-R BT.709"])
    np.testing.assert_allclose(conversion(source), expected, atol=2e-3)


def test_out_of_gamut_colours_keep_their_hue_and_luminance_instead_of_clipping() -> None:
    pure_bt2020_green = np.array([[0.0, 1.0, 0.0]], dtype=np.float32)
    mapped = to_bt709(pure_bt2020_green, "bt2020")
    assert mapped.min() >= 0
    luma = mapped @ np.array([0.2126, 0.7152, 0.0722])
    exact = pure_bt2020_green @ conversion("bt2020").T @ np.array([0.2126, 0.7152, 0.0722])
    np.testing.assert_allclose(luma, exact, rtol=1e-4)
    assert np.argmax(mapped) == 1  # still green


def test_bt2390_leaves_the_shadows_alone_and_lands_the_peak_on_sdr_white() -> None:
    dark = np.array([1.0, 5.0, 20.0], dtype=np.float32)
    np.testing.assert_allclose(bt2390(dark, 1000.0), dark, rtol=1e-3)
    assert bt2390(np.array([1000.0]), 1000.0)[0] == pytest.approx(SDR_WHITE_NITS, rel=1e-3)


@pytest.mark.parametrize("curve", CURVES)
def test_every_curve_is_monotonic_and_stays_in_range(curve: str) -> None:
    nits = np.linspace(0, 1000, 500, dtype=np.float32)
    rgb = np.repeat(nits[:, None], 3, axis=1)
    mapped = tone_map(rgb, curve, 1000.0)[:, 0]
    assert mapped.min() >= 0
    assert mapped.max() <= 1
    assert np.all(np.diff(mapped) >= -1e-6)


def test_tone_mapping_keeps_the_ratio_between_channels() -> None:
    orange = np.array([[800.0, 400.0, 100.0]], dtype=np.float32)
    mapped = tone_map(orange, "bt2390", 1000.0)[0]
    np.testing.assert_allclose(mapped / mapped[0], [1.0, 0.5, 0.125], rtol=1e-4)


def test_a_pq_grey_at_sdr_white_stays_near_white_and_black_stays_black() -> None:
    grey = np.full((1, 1, 3), float(nits_to_pq(np.float32(SDR_WHITE_NITS))), np.float32)
    black = np.zeros((1, 1, 3), np.float32)
    signal = Signal("pq", "bt2020")
    assert 200 <= int(hdr_to_sdr(grey, signal)[0, 0, 0]) <= 255
    assert int(hdr_to_sdr(black, signal).max()) == 0


@pytest.mark.parametrize("transfer", ["pq", "hlg"])
@pytest.mark.parametrize("curve", CURVES)
def test_the_tabulated_path_matches_the_exact_curves(transfer: str, curve: str) -> None:
    """hdr_renditions uses lookup tables; the exact functions give the same picture."""
    from media_worker.engines.color.signal import hdr_renditions

    signal = Signal(transfer, "bt2020")
    top = float(nits_to_pq(np.float32(signal.source_peak()))) if transfer == "pq" else 1.0
    code = (np.random.default_rng(3).random((64, 64, 3)) * top).astype(np.float32)
    sdr, hdr = hdr_renditions(code, signal, curve)
    nits = pq_to_nits(code) if transfer == "pq" else hlg_to_nits(code)
    linear = to_bt709(nits, "bt2020")
    exact = np.rint(srgb_encode(tone_map(linear, curve, signal.source_peak())) * 255)
    # Above the peak the exact curves clip channel by channel, the tables keep the hue.
    within = linear.max(axis=-1) <= signal.source_peak()
    difference = np.abs(sdr.astype(int) - exact.astype(int))[within]
    assert within.mean() > 0.5
    assert difference.max() <= 1
    assert difference.mean() < 0.05
    relative_error = np.abs(hdr.linear - linear / SDR_WHITE_NITS) / np.maximum(
        linear / SDR_WHITE_NITS, 1e-2)
    assert np.percentile(relative_error, 99) < 2e-3  # 16-bit codes; worst near black


def test_light_above_the_peak_lands_on_sdr_white_keeping_its_hue() -> None:
    from media_worker.engines.color.signal import hdr_renditions

    orange = np.array([[[4000.0, 2000.0, 500.0]]], dtype=np.float32)
    code = nits_to_pq(orange).astype(np.float32)
    sdr, _ = hdr_renditions(code, Signal("pq", "bt709", peak_nits=1000.0))
    red, green, blue = (int(v) for v in sdr[0, 0])
    assert red == 255
    assert 150 < green < 230  # half the light of red, in sRGB
    assert blue < green


@pytest.mark.parametrize("peak", [1.0, 80.0, 100.0])
def test_a_master_no_brighter_than_sdr_white_is_shown_as_it_is(peak: float) -> None:
    from media_worker.engines.color.signal import hdr_renditions

    nits = np.array([[[50.0, 50.0, 50.0], [100.0, 100.0, 100.0], [400.0, 400.0, 400.0]]],
                    dtype=np.float32)
    sdr, _ = hdr_renditions(nits_to_pq(nits).astype(np.float32),
                            Signal("pq", "bt709", peak_nits=peak))
    assert [int(v) for v in sdr[0, :, 0]] == [188, 255, 255]  # 50 nits is half of SDR white
