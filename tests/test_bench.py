"""`hsicodec bench` on a real scene: our model and both JPEG 2000 baselines at matched rates."""
from __future__ import annotations

import csv
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from cli_helpers import assert_one_line_error, invoke
from conftest import scene_path, scenes
from hsicodec.bench import (BAND_MEANS, BRACKET_FACTORS, FLOOR, FLOOR_MARGIN_DB, Point, at_rate, band_means_point,
                            bracketing_rates, gaps, plot_styles, read_csv)
from hsicodec.baselines import ANCHORS
from hsicodec.checkpoints import find_model

ABU = scene_path(next(s for s in scenes("eval") if s["id"] == "abu_beach_2"))


def test_bench_writes_csv_markdown_and_plots_at_matched_rates(tmp_path: Path) -> None:
    model = find_model().name
    report = tmp_path / "report"
    result = invoke("bench", ABU, "-o", report, "-m", model, "--rates", "1", "--rates", "2", "-q")
    assert result.exit_code == 0, result.stderr
    with (report / "results.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    stepped = {float(r["target_bpp"]): r for r in rows if r["method"] == f"{model} -r"}  # -m NAME -r RATE
    assert set(stepped) == {1.0, 2.0} and {r["model"] for r in stepped.values()} == {model}
    our_rates = {float(r["bpp"]) for r in stepped.values()}
    assert {r["method"] for r in rows} >= set(ANCHORS)
    for baseline in ("PCA + JPEG 2000", "PCA + JPEG XL", "3-D SPERR"):  # band-wise JPEG 2000's floor is 1.2 bpp
        curve = [r for r in rows if r["method"] == baseline]
        asked = {float(r["target_bpp"]) for r in curve}
        assert {1.0, 2.0, *(round(b, 4) for b in our_rates)} <= asked  # the two rates and ours, then brackets
        reached = [float(r["bpp"]) for r in curve]
        for our_bpp in our_rates:
            matched = min(reached, key=lambda b: abs(b - our_bpp))
            assert abs(matched - our_bpp) < 0.05 * our_bpp
            assert min(reached) <= our_bpp <= max(reached), (baseline, our_bpp, sorted(reached))
        high, low = (max(curve, key=lambda r: float(r["bpp"])), min(curve, key=lambda r: float(r["bpp"])))
        assert float(high["psnr"]) > float(low["psnr"])
    points = read_csv(report / "results.csv")
    assert [p.method for p in points] == [r["method"] for r in rows]
    assert next(p for p in points if p.method == f"{model} -r").bpp == float(stepped[1.0]["bpp"])
    [means] = [p for p in points if p.method == BAND_MEANS]
    assert 10 < means.psnr < 40  # each band's mean: abu-beach-2 at 28.15 dB
    text = (report / "report.md").read_text()
    assert f"| {model} -r |" in text and "ΔPSNR vs PCA + JPEG 2000" in text
    for name in ("rd_psnr.png", "rd_sam.png"):
        assert matplotlib.image.imread(report / name).shape[0] > 100
    again = invoke("bench", ABU, "-o", report, "-m", model, "-q")
    assert again.exit_code == 1 and "--overwrite" in again.stderr
    assert_one_line_error(again.stderr)


def test_every_curve_of_a_plot_has_a_colour_of_its_own() -> None:
    methods = ["hsicodec -r", "JPEG 2000", "PCA + JPEG 2000", "mine -r", "theirs -r"]
    styles = plot_styles(methods * 2)
    assert len({styles[m]["color"] for m in methods}) == 5
    assert {styles[m]["linestyle"] for m in ("JPEG 2000", "PCA + JPEG 2000")} == {"--"}
    assert plot_styles(methods[::-1]) == styles  # the same style in every panel and report
    assert plot_styles([BAND_MEANS])[BAND_MEANS]["label"] == FLOOR


def test_no_gap_is_taken_against_a_baseline_point_below_the_band_means_floor() -> None:
    ours = Point("s", "hsicodec -r", "m", 0.4, 0.4, 30.0, 0.9, 5.0)
    failing = Point("s", "JPEG 2000", "", 0.3, 0.3, 12.0, 0.2, 40.0)  # below sending the band means
    means_only = Point("s", "PCA + JPEG 2000", "", 0.3, 0.3, 15.0 + FLOOR_MARGIN_DB / 2, 0.5, 20.0)
    working = [Point("s", method, "", 0.6, 0.6, 32.0, 0.95, 4.0) for method in ("JPEG 2000", "PCA + JPEG 2000")]
    [row] = [r for r in gaps([ours, failing, means_only, *working]) if r["method"] == "hsicodec -r"]
    assert row["matched vs JPEG 2000"] == row["matched vs PCA + JPEG 2000"] == 1  # without the floor, both match
    floor = Point("s", BAND_MEANS, "", 0.01, 0.01, 15.0, 0.5, 20.0)
    [row] = [r for r in gaps([ours, failing, means_only, *working, floor]) if r["method"] == "hsicodec -r"]
    assert row["matched vs JPEG 2000"] == row["matched vs PCA + JPEG 2000"] == 0 and row["scenes"] == 1


def test_the_band_means_floor_is_each_bands_mean_over_its_valid_samples() -> None:
    cube = np.zeros((4, 4, 2), np.uint16)
    cube[..., 0], cube[..., 1] = np.arange(16).reshape(4, 4), 7
    cube[0, 0] = 65535  # nodata, kept as it is
    point = band_means_point("s", cube, 65535)
    valid = np.arange(1, 16)
    expected = 10 * np.log10(np.ptp(valid) ** 2 / np.mean((valid - valid.mean()) ** 2 / 2))
    assert point.method == BAND_MEANS and point.bpp == 32 * 2 / 16
    assert point.psnr == pytest.approx(expected, rel=1e-6)


def test_bench_refuses_a_rate_that_is_not_positive_as_a_usage_error(tmp_path: Path) -> None:
    for rate in ("0", "-1", "abc"):
        done = invoke("bench", ABU, "-o", tmp_path / "report", "--rates", rate)
        assert done.exit_code == 2 and "--rates" in done.stderr and "Traceback" not in done.output
        assert not (tmp_path / "report").exists()


def test_matched_rate_interpolates_in_log_bpp_and_never_extrapolates() -> None:
    curve = [Point("s", "b", "", 1, 1.0, 30.0, 0.9, 5.0), Point("s", "b", "", 4, 4.0, 40.0, 0.95, 2.0)]
    assert at_rate(curve, 2.0, "psnr") == 35.0  # halfway in log(bpp)
    assert at_rate(curve, 0.5, "psnr") != at_rate(curve, 0.5, "psnr")  # NaN below the curve


def test_a_baseline_is_asked_again_just_outside_the_rates_of_ours_its_curve_misses() -> None:
    factor = BRACKET_FACTORS[0]
    assert bracketing_rates([0.199, 0.4, 1.01], [0.198, 0.4, 1.02], factor) == [round(0.198 * factor, 4),
                                                                               round(1.02 / factor, 4)]
    assert bracketing_rates([0.19, 1.1], [0.198, 0.4, 1.02], factor) == []  # every rate of ours spanned
    assert bracketing_rates([], [0.2], factor) == []


def test_bench_rows_of_compress_r_land_at_their_rates(tmp_path: Path) -> None:
    cave = scene_path(next(s for s in scenes("eval") if s["id"] == "cave_feathers"))
    report = tmp_path / "report"
    result = invoke("bench", cave, "-o", report, "--rates", "0.3", "--rates", "0.8", "-q")
    assert result.exit_code == 0, result.stderr
    with (report / "results.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    controlled = {float(r["target_bpp"]): r for r in rows if r["method"] == "hsicodec -r"}
    assert set(controlled) == {0.3, 0.8}
    for rate, row in controlled.items():
        assert abs(float(row["bpp"]) - rate) < 0.05 * rate and row["model"] == find_model().name
    assert float(controlled[0.8]["psnr"]) > float(controlled[0.3]["psnr"])
    assert "| hsicodec -r |" in (report / "report.md").read_text()
