"""`compress -r`: the latent step is chosen so that each file lands at the requested rate."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import assert_one_line_error, invoke, json_lines
from conftest import scene_path, scenes

from hsicodec.checkpoints import find_model, load_model
from hsicodec.codec import compress_scene
from hsicodec.container import HsicReader
from hsicodec.io import open_scene
from hsicodec.latent_coding import LatentCoder
from hsicodec.rate_control import MAX_STEP, MIN_STEP, sample_tiles, step_grid

PAPER_RUNGS = (0.2, 0.4, 0.6, 0.8, 1.0)
LARGE_EVAL = [s for s in scenes("eval") if s["shape_hwb"][0] * s["shape_hwb"][1] >= 256 * 256]


def test_step_grid_and_tile_sample() -> None:
    grid = step_grid()
    assert grid[0] == MIN_STEP and grid[-1] == MAX_STEP and np.all(np.diff(grid) > 0)
    assert sample_tiles(5) == [0, 1, 2, 3, 4]
    spread = sample_tiles(1000)
    assert len(spread) == 32 and spread[0] == 0 and spread[-1] == 999


@pytest.mark.parametrize("entry", LARGE_EVAL, ids=[s["id"] for s in LARGE_EVAL])
def test_every_paper_rung_lands_within_a_quarter_of_the_request(entry: dict, tmp_path: Path) -> None:
    """On the eval scenes of at least 256x256: within +-25% (the promise); within 5% where no warning."""
    path = scene_path(entry)
    results = []
    for rate in PAPER_RUNGS:
        out = tmp_path / f"{rate}.hsic"
        done = invoke("compress", path, "-r", rate, "-o", out, "--verify", "--json", "-q")
        assert done.exit_code == 0, done.output
        [record] = json_lines(done.stdout)
        assert abs(record["bpp"] - rate) <= 0.25 * rate, (rate, record)
        assert "warnings" in record or abs(record["bpp"] - rate) <= 0.05 * rate, (rate, record)
        with HsicReader(out) as reader:
            assert reader.header.latent_step == record["latent_step"]
            assert reader.metadata["target_bpp"] == rate
        results.append(record["psnr"])
    assert results[-1] > results[0] + 1.0  # five times the bits buy quality


def test_file_size_is_predicted_exactly_when_every_tile_is_sampled(tmp_path: Path) -> None:
    entry = find_model("hificse-klt16-0.4")
    coder = LatentCoder(load_model(entry), torch.device("cpu"))
    with open_scene(scene_path(LARGE_EVAL[0])) as reader:
        choice = compress_scene(reader, tmp_path / "a.hsic", entry, coder, tile_size=64, target_bpp=0.8,
                                refine_iterations=0)
        refined = compress_scene(reader, tmp_path / "b.hsic", entry, coder, tile_size=64, target_bpp=0.8)
    assert choice.reachable and choice.predicted_bytes == (tmp_path / "a.hsic").stat().st_size
    assert refined == choice and (tmp_path / "b.hsic").stat().st_size <= 1.01 * choice.predicted_bytes


def test_an_unreachable_rate_is_written_as_near_as_possible_with_a_warning(tmp_path: Path) -> None:
    small = next(s for s in scenes("eval") if s["id"].startswith("enmap_potsdam"))  # 32x32x224
    out = tmp_path / "tiny.hsic"
    done = invoke("compress", scene_path(small), "-r", 0.2, "-o", out, "--json", "-q")
    assert done.exit_code == 0
    [record] = json_lines(done.stdout)
    assert MIN_STEP < record["latent_step"] < MAX_STEP and record["bpp"] > 0.2  # not the coarsest: see NEAR_SMALLEST
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


def test_bad_rates_and_a_damaged_step_or_gain_are_one_line_errors(tmp_path: Path) -> None:
    path, out = scene_path(LARGE_EVAL[0]), tmp_path / "scene.hsic"
    for bad in ("0", "-1", "abc"):
        refused = invoke("compress", path, "-r", bad, "-o", out, "-q")
        assert refused.exit_code == 2 and "--rate" in refused.stderr and not out.exists()
    assert invoke("compress", path, "-r", 0.4, "-o", out, "-q").exit_code == 0
    good = out.read_bytes()
    (size,) = struct.unpack_from("<I", good, 12)
    for field, at in (("latent_step", 16 + size - 16), ("plane_gain", 16 + size - 8)):  # the last two fields
        data = bytearray(good)
        struct.pack_into("<d", data, at, float("nan"))
        struct.pack_into("<I", data, 16 + size, zlib.crc32(bytes(data[:16 + size])))
        out.write_bytes(bytes(data))
        restored = tmp_path / "restored.tif"
        failed = invoke("decompress", out, "-o", restored, "-f", "gtiff", "-q")
        assert failed.exit_code == 1 and not restored.exists()
        assert_one_line_error(failed.stderr)
        assert field in failed.stderr


def test_info_shows_the_requested_rate_and_the_step(tmp_path: Path) -> None:
    path = scene_path(LARGE_EVAL[0])
    stepped, plain = tmp_path / "stepped.hsic", tmp_path / "plain.hsic"
    assert invoke("compress", path, "-r", 0.3, "-o", stepped, "-q").exit_code == 0
    assert invoke("compress", path, "-m", find_model(rate=0.3).name, "-o", plain, "-q").exit_code == 0
    [shown] = json_lines(invoke("info", stepped, "--json").stdout)
    assert shown["target_bpp"] == 0.3 and shown["latent_step"] in step_grid()
    assert "asked for 0.3 bpp" in invoke("info", stepped).stdout
    [shown] = json_lines(invoke("info", plain, "--json").stdout)
    assert shown["target_bpp"] is None and shown["latent_step"] == 1.0
