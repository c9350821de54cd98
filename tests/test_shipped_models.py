"""The shipped checkpoints: the klt rate ladders and the CAVE `bands` pair, used through the command line."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_one_line_error, invoke, json_lines
from conftest import DATA

from hsicodec.io import open_scene

LADDER = (0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 4.0)
CAVE_PAIR = ("hificse-cave31-0.4", "hific3d-cave31-0.4")
CAVE_EVAL = DATA / "cave" / "feathers.tif"  # 256 x 256 x 31, never trained on
ENMAP_EVAL = DATA / "scenes" / "enmap_potsdam_192_64" / "enmap_potsdam_tile_192_64.tif"  # 224 bands


def _listed() -> dict[str, dict]:
    result = invoke("models", "--json")
    assert result.exit_code == 0, result.stderr
    return {m["name"]: m for m in json_lines(result.stdout)}


def test_models_lists_the_three_klt_ladders_and_the_cave_pair_with_measured_figures() -> None:
    listed = _listed()
    for arch in ("hific", "hificse", "hific3d"):
        rungs = [m for m in listed.values() if m["arch"] == arch and m["front_end"] == "klt"]
        assert sorted(m["target_bpp"] for m in rungs) == list(LADDER), arch
        assert all(m["metrics"]["curve"] for m in rungs), arch
    for name in CAVE_PAIR:
        entry = listed[name]
        assert (entry["front_end"], entry["channels"]) == ("bands", 31)
        own_sensor = {"cave_fake_and_real_peppers", "cave_feathers", "cave_real_and_fake_apples", "cave_sponges"}
        assert set(entry["metrics"]["eval"]) == own_sensor  # measured on its sensor's eval scenes only
        assert entry["metrics"]["curve"]  # measured under rate control, like the klt models


@pytest.mark.parametrize("name", CAVE_PAIR)
def test_a_cave_bands_model_codes_a_cave_scene_at_the_requested_rate(name: str, tmp_path: Path) -> None:
    packed, restored = tmp_path / "feathers.hsic", tmp_path / "feathers.hdr"
    done = invoke("compress", CAVE_EVAL, "-m", name, "-r", 0.4, "-o", packed, "--verify", "--json", "-q")
    assert done.exit_code == 0, done.stderr
    [record] = json_lines(done.stdout)
    assert record["model"] == name and abs(record["bpp"] - 0.4) <= 0.25 * 0.4, record
    assert invoke("decompress", packed, "-o", restored, "-q").exit_code == 0
    with open_scene(CAVE_EVAL) as source, open_scene(restored) as decoded:
        assert decoded.shape == source.shape and decoded.dtype == source.dtype
        original, cube = (r.read(0, 0, *r.shape[:2]).astype(np.float64) for r in (source, decoded))
    peak = original.max() - original.min()
    mean_spectrum = original.reshape(-1, 31).mean(axis=0)
    psnr = 10 * np.log10(peak**2 / np.mean((original - cube) ** 2))
    baseline = 10 * np.log10(peak**2 / np.mean((original - mean_spectrum) ** 2))
    assert psnr == pytest.approx(record["psnr"], abs=0.01)
    assert psnr > baseline + 3.0  # it codes the scene, not just its mean spectrum


@pytest.mark.parametrize("name", CAVE_PAIR)
def test_a_cave_bands_model_refuses_another_sensor_in_one_line(name: str, tmp_path: Path) -> None:
    out = tmp_path / "enmap.hsic"
    done = invoke("compress", ENMAP_EVAL, "-m", name, "-o", out)
    assert done.exit_code == 1
    assert_one_line_error(done.stderr)
    assert "31-band" in done.stderr and "224 bands" in done.stderr
    assert not list(tmp_path.iterdir())


def test_rate_alone_never_picks_a_bands_model_for_a_cave_scene(tmp_path: Path) -> None:
    """-r picks among the klt models, which fit every sensor; a bands model is taken by name only."""
    done = invoke("compress", CAVE_EVAL, "-r", 0.4, "-o", tmp_path / "a.hsic", "--json", "-q")
    assert done.exit_code == 0, done.stderr
    assert _listed()[json_lines(done.stdout)[0]["model"]]["front_end"] == "klt"
