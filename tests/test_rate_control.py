"""`compress -r`: one quantisation step D, chosen so that each file lands at the requested rate."""
from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import assert_one_line_error, invoke, json_lines
from conftest import scene_path, scenes

from hsicodec.checkpoints import find_model, load_coder
from hsicodec.codec import compress_scene
from hsicodec.container import HsicReader
from hsicodec.io import open_scene
from hsicodec.rate_control import MAX_STEP, SAMPLE_TILES, STEPS_PER_OCTAVE, laplace_bits, sample_tiles
from hsicodec.verify import verify_file

RATES = (0.2, 0.4, 1.0, 2.0, 4.0)
LARGE_EVAL = [s for s in scenes("eval") if s["shape_hwb"][0] * s["shape_hwb"][1] >= 256 * 256]


def test_the_sample_spreads_over_the_grid_within_its_memory() -> None:
    assert sample_tiles(5, 100) == [0, 1, 2, 3, 4]
    spread = sample_tiles(1000, 100)
    assert len(spread) == 32 and spread[0] == 0 and spread[-1] == 999
    assert len(sample_tiles(1000, 4 * 224 * 512 * 512)) == 1  # a 512 x 512 tile of 224 float32 bands: 235 MB


@pytest.mark.parametrize("entry", LARGE_EVAL, ids=[s["id"] for s in LARGE_EVAL])
def test_every_rate_lands_within_5_percent_and_quality_rises_to_4_bpp(entry: dict, tmp_path: Path) -> None:
    path = scene_path(entry)
    quality = []
    for rate in RATES:
        out = tmp_path / f"{rate}.hsic"
        done = invoke("compress", path, "-r", rate, "-o", out, "--verify", "--json", "-q")
        assert done.exit_code == 0, done.output
        [record] = json_lines(done.stdout)
        assert abs(record["bpp"] - rate) <= 0.05 * rate and "warnings" not in record, (rate, record)
        with HsicReader(out) as reader:
            assert reader.header.step == record["step"] and reader.header.components == record["planes"]
            assert reader.metadata["target_bpp"] == rate
        quality.append(record["psnr"])
    assert all(b > a + 1.0 for a, b in zip(quality, quality[1:])), quality


def test_the_size_found_is_the_file_s_when_every_tile_is_sampled(tmp_path: Path) -> None:
    """The search codes the sample at each step it tries, and the file takes the sampled tiles' words."""
    entry = find_model()
    with open_scene(scene_path(LARGE_EVAL[0])) as reader:
        choice = compress_scene(reader, tmp_path / "a.hsic", entry, load_coder(entry), 0.8, tile_size=128)
    assert choice.reachable and len(choice.tiles) == 4
    assert choice.predicted_bytes == (tmp_path / "a.hsic").stat().st_size


def test_a_scene_of_more_tiles_than_the_sample_lands_near_the_rate_and_decodes(tmp_path: Path) -> None:
    """The tiles left out of the sample are coded in the writing pass, at the step the sample chose."""
    entry, out = find_model(), tmp_path / "a.hsic"
    coder = load_coder(entry)
    with open_scene(scene_path(LARGE_EVAL[1])) as reader:
        choice = compress_scene(reader, out, entry, coder, 1.0, tile_size=32)  # 64 tiles
        assert len(choice.tiles) == SAMPLE_TILES
        assert 8 * out.stat().st_size / (256 * 256) == pytest.approx(1.0, rel=0.05)
        assert verify_file(out, reader, coder)["psnr"] > 40


def test_the_model_s_laplacian_entropy_is_that_of_rounded_laplacian_values() -> None:
    rng = np.random.default_rng(0)
    for scale in (0.05, 0.3, 1.0, 4.0, 40.0):
        values = np.round(rng.laplace(0.0, scale, 400_000))
        _, counts = np.unique(values, return_counts=True)
        empirical = -(counts / counts.sum() * np.log2(counts / counts.sum())).sum()
        assert float(laplace_bits(torch.tensor([scale]))) == pytest.approx(empirical, abs=0.01, rel=0.01)


def test_an_unreachable_rate_is_written_as_near_as_possible_with_a_warning(tmp_path: Path) -> None:
    small = next(s for s in scenes("eval") if s["id"].startswith("enmap_potsdam"))  # 32x32x224
    out = tmp_path / "tiny.hsic"
    done = invoke("compress", scene_path(small), "-r", 0.2, "-o", out, "--json", "-q")
    assert done.exit_code == 0
    [record] = json_lines(done.stdout)
    assert record["step"] == MAX_STEP and record["bpp"] > 0.2
    warning = record["warnings"][0]
    assert "out of reach on 32 x 32 pixels" in warning and "side information" in warning
    assert f"wrote {record['bpp']:.3f} bpp" in warning and "hsicodec: warning:" in done.stderr
    assert invoke("decompress", out, "-o", tmp_path / "tiny.tif", "-q").exit_code == 0


def test_a_rerun_with_another_rate_does_not_skip_the_existing_file(tmp_path: Path) -> None:
    path, out = scene_path(LARGE_EVAL[0]), tmp_path / "scene.hsic"
    assert invoke("compress", path, "-r", 0.4, "-o", out, "-q").exit_code == 0
    again = invoke("compress", path, "-r", 0.4, "-o", out, "-q", "--json")
    assert json_lines(again.stdout)[0]["status"] == "skipped"
    other = invoke("compress", path, "-r", 0.6, "-o", out, "-q")
    assert other.exit_code == 1 and "another model or rate" in other.stderr


def test_bad_rates_and_a_damaged_step_are_one_line_errors(tmp_path: Path) -> None:
    path, out = scene_path(LARGE_EVAL[0]), tmp_path / "scene.hsic"
    for bad in ("0", "-1", "abc"):
        refused = invoke("compress", path, "-r", bad, "-o", out, "-q")
        assert refused.exit_code == 2 and "--rate" in refused.stderr and not out.exists()
    assert invoke("compress", path, "-r", 0.4, "-o", out, "-q").exit_code == 0
    data = bytearray(out.read_bytes())
    (size,) = struct.unpack_from("<I", data, 12)
    struct.pack_into("<d", data, 16 + size - 24, float("nan"))  # the step, before the value range (lo, hi)
    struct.pack_into("<I", data, 16 + size, zlib.crc32(bytes(data[:16 + size])))
    out.write_bytes(bytes(data))
    restored = tmp_path / "restored.tif"
    failed = invoke("decompress", out, "-o", restored, "-f", "gtiff", "-q")
    assert failed.exit_code == 1 and not restored.exists()
    assert_one_line_error(failed.stderr)
    assert "step" in failed.stderr


def test_info_shows_the_requested_rate_the_step_and_the_planes(tmp_path: Path) -> None:
    path = scene_path(LARGE_EVAL[0])
    out = tmp_path / "scene.hsic"
    assert invoke("compress", path, "-r", 0.3, "-o", out, "-q").exit_code == 0
    [shown] = json_lines(invoke("info", out, "--json").stdout)
    assert shown["target_bpp"] == 0.3 and (STEPS_PER_OCTAVE * math.log2(shown["step"])).is_integer()
    assert 0 < shown["planes"] <= shown["bands"]
    assert "asked for 0.3 bpp" in invoke("info", out).stdout
