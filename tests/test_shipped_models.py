"""The shipped checkpoint, used through the command line on real scenes it was never trained on."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cli_helpers import invoke, json_lines
from conftest import DATA, scene_path, scenes

from hsicodec.checkpoints import read_manifest
from hsicodec.io import open_scene

CAVE_EVAL = DATA / "cave" / "feathers.tif"  # 256 x 256 x 31
ABU_EVAL = scene_path(next(s for s in scenes("eval") if s["id"] == "abu_beach_2"))  # 100 x 100 x 193, AVIRIS


def test_models_lists_the_shipped_model_as_the_default() -> None:
    result = invoke("models", "--json")
    assert result.exit_code == 0, result.stderr
    [listed] = json_lines(result.stdout)
    assert listed == read_manifest()[0].to_json() and listed["arch"] == "wavelet-pyramid"
    text = invoke("models").stdout
    assert text.startswith(f"* {listed['name']}") and "D 0.001 to 0.2" in text
    table = invoke("models", "--markdown").stdout.splitlines()
    assert table[0].startswith("| model |") and table[2].startswith(f"| {listed['name']} | wavelet-pyramid |")
    both = invoke("models", "--json", "--markdown")
    [line] = both.stderr.splitlines()
    assert both.exit_code == 2 and line.startswith("hsicodec: usage error: ") and "alternatives" in line


@pytest.mark.parametrize("scene, rate, above_mean", [(CAVE_EVAL, 0.4, 10.0), (ABU_EVAL, 2.0, 5.0)])
def test_a_scene_of_any_sensor_decodes_to_what_verify_measured(scene: Path, rate: float, above_mean: float,
                                                               tmp_path: Path) -> None:
    packed, restored = tmp_path / "scene.hsic", tmp_path / "scene.hdr"
    done = invoke("compress", scene, "-r", rate, "-o", packed, "--verify", "--json", "-q")
    assert done.exit_code == 0, done.stderr
    [record] = json_lines(done.stdout)
    assert invoke("decompress", packed, "-o", restored, "-q").exit_code == 0
    with open_scene(scene) as source, open_scene(restored) as decoded:
        assert decoded.shape == source.shape and decoded.dtype == source.dtype
        original, cube = (r.read(0, 0, *r.shape[:2]).astype(np.float64) for r in (source, decoded))
    peak = original.max() - original.min()
    mean_spectrum = original.reshape(-1, original.shape[2]).mean(axis=0)
    psnr = 10 * np.log10(peak**2 / np.mean((original - cube) ** 2))
    baseline = 10 * np.log10(peak**2 / np.mean((original - mean_spectrum) ** 2))
    assert psnr == pytest.approx(record["psnr"], abs=0.01)
    assert psnr > baseline + above_mean  # it codes the scene, not just its mean spectrum
