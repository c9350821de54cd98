"""Latent refinement: each tile's y tuned through G before coding, at the same rate, for less error."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import invoke, json_lines
from conftest import scene_path, scenes

from hsicodec.checkpoints import find_model, load_model
from hsicodec.codec import pad_to_stride, plane_weights, scene_statistics
from hsicodec.container import PlaneGroup, tile_rects
from hsicodec.frontend import fit_front_end
from hsicodec.io import open_scene
from hsicodec.klt import SpectralStats
from hsicodec.latent_coding import LatentCoder
from hsicodec.latent_refinement import REFINE_ITERATIONS, refine

FEATHERS = scene_path(next(s for s in scenes("eval") if s["id"] == "cave_feathers"))  # 256x256x31
MODEL = "hificse-klt16-1.0"


@pytest.fixture(scope="module")
def coder() -> LatentCoder:
    return LatentCoder(load_model(find_model(MODEL)), torch.device("cpu"))


@pytest.fixture(scope="module")
def feathers_planes() -> np.ndarray:
    with open_scene(FEATHERS) as reader:
        front = fit_front_end(scene_statistics(reader, tile_rects(*reader.shape[:2], 256)), "klt", 16)
        return pad_to_stride(front.planes(reader.read(0, 0, *reader.shape[:2])))


def weighted_error(coder: LatentCoder, planes: np.ndarray, y_hat: np.ndarray, weights: np.ndarray) -> float:
    rebuilt = coder.synthesise([y_hat])[0]
    return float((weights[:, None, None] * (rebuilt - planes) ** 2).sum())


@pytest.mark.parametrize("step", [1.0, 2.5])
def test_refinement_lowers_a_real_tiles_error_without_raising_its_estimated_bits(
        coder: LatentCoder, feathers_planes: np.ndarray, step: float) -> None:
    weights = np.ones(len(feathers_planes), np.float32)
    latents = coder.analyse(feathers_planes)
    refined = refine(coder, latents, feathers_planes, weights, step, iterations=20)
    assert refined.error_after < 0.95 * refined.error_before  # more than 0.2 dB
    assert refined.bits_after <= refined.bits_before
    np.testing.assert_array_equal(refined.latents.z_symbols, latents.z_symbols)  # the side stream is E's
    # what it reports is what the decoder rebuilds from the coded symbols, and E's own error before
    before = weighted_error(coder, feathers_planes, coder.dequantise(latents, step), weights)
    after = weighted_error(coder, feathers_planes, coder.dequantise(refined.latents, step), weights)
    assert before == pytest.approx(refined.error_before, rel=1e-3)
    assert after == pytest.approx(refined.error_after, rel=1e-3)
    coded = [len(coder.code(a, step).y_words) for a in (latents, refined.latents)]
    assert coded[1] <= 1.01 * coded[0]  # the range coder agrees with the estimate


def test_zero_iterations_codes_the_encoders_own_latents(coder: LatentCoder, feathers_planes: np.ndarray) -> None:
    latents = coder.analyse(feathers_planes)
    refined = refine(coder, latents, feathers_planes, np.ones(16, np.float32), 1.0, iterations=0)
    assert refined.latents is latents and refined.error_after == refined.error_before


def test_only_the_planes_that_reach_the_scene_count(coder: LatentCoder, feathers_planes: np.ndarray) -> None:
    stats = SpectralStats(31)
    stats.update(np.random.default_rng(0).normal(size=(500, 31)))
    kept = np.ones(16, bool)
    kept[3] = kept[9] = False
    front = fit_front_end(stats, "klt", 16, kept=kept)
    np.testing.assert_array_equal(plane_weights(front, PlaneGroup(0, 16, 1.0, 1.0), 16), kept)
    np.testing.assert_array_equal(plane_weights(front, PlaneGroup(2, 2, 2.0, 3.0), 16), [1, 0] + [0] * 14)
    np.testing.assert_array_equal(plane_weights(fit_front_end(stats, "bands", 31), PlaneGroup(0, 31, 1.0, 1.0), 31),
                                  np.ones(31))
    # refinement measures the planes of weight 1 only, and never makes them worse
    only_first = np.eye(16, dtype=np.float32)[0]
    latents = coder.analyse(feathers_planes)
    refined = refine(coder, latents, feathers_planes, only_first, 1.0, iterations=5)
    assert refined.error_before == pytest.approx(
        weighted_error(coder, feathers_planes, coder.dequantise(latents), only_first), rel=1e-3)
    assert weighted_error(coder, feathers_planes, coder.dequantise(refined.latents), only_first) <= (
        refined.error_before * (1 + 1e-3))


def test_compress_refines_by_default_at_the_same_rate_and_the_file_decodes_better(tmp_path: Path) -> None:
    records = {}
    for iterations in (0, REFINE_ITERATIONS):
        out = tmp_path / f"refine-{iterations}.hsic"
        result = invoke("compress", FEATHERS, "-r", 0.4, "-o", out, "--verify", "--json", "--refine", iterations)
        assert result.exit_code == 0, result.output
        [records[iterations]] = json_lines(result.stdout)
    assert records[REFINE_ITERATIONS]["bpp"] == pytest.approx(records[0]["bpp"], rel=0.03)
    assert records[REFINE_ITERATIONS]["psnr"] > records[0]["psnr"] + 0.1
    assert invoke("compress", FEATHERS, "-r", 0.4, "-o", tmp_path / "default.hsic", "-q").exit_code == 0
    assert (tmp_path / "default.hsic").read_bytes() == (tmp_path / f"refine-{REFINE_ITERATIONS}.hsic").read_bytes()


def test_a_negative_refine_count_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke("compress", FEATHERS, "--refine", -1, "-o", tmp_path / "x.hsic")
    assert result.exit_code == 2 and not (tmp_path / "x.hsic").exists()
