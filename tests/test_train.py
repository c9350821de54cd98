"""`hsicodec train` on real scenes: it resumes, exports a model compress uses, and refuses what it cannot use."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from cli_helpers import assert_one_line_error, invoke, json_lines
from conftest import DATA, scene_path, scenes

from hsicodec.checkpoints import read_manifest

CAVE = DATA / "cave" / "feathers.tif"
ABU = scene_path(next(s for s in scenes("eval") if s["id"] == "abu_beach_2"))  # 100 x 100 x 193


def test_a_run_resumes_and_its_model_codes_a_scene(tmp_path: Path, monkeypatch) -> None:
    run = tmp_path / "run"
    first = invoke("train", CAVE, ABU, "-o", run, "--steps", "20", "--batch", "2", "-q")
    assert first.exit_code == 0, first.stderr
    again = invoke("train", CAVE, ABU, "-o", run, "--steps", "30", "--batch", "2", "-q", "--json")
    assert again.exit_code == 0, again.stderr
    [entry] = json_lines(again.stdout)
    assert entry == read_manifest(run)[0].to_json() and entry["name"] == "mine"
    with (run / "log.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == [20, 30]  # the second run went on from the first
    assert float(rows[1]["cpu_seconds"]) > float(rows[0]["cpu_seconds"]) > 0
    monkeypatch.setenv("HSICODEC_MODELS", str(run))
    packed = tmp_path / "scene.hsic"
    done = invoke("compress", ABU, "-m", "mine", "-r", "2", "-o", packed, "--verify", "--json", "-q")
    assert done.exit_code == 0, done.stderr
    [record] = json_lines(done.stdout)
    assert record["model"] == "mine" and record["psnr"] > 30
    assert invoke("decompress", packed, "-o", tmp_path / "back.tif", "-q").exit_code == 0


def test_scenes_smaller_than_the_crop_are_a_one_line_error(tmp_path: Path) -> None:
    done = invoke("train", ABU, "-o", tmp_path / "run", "--patch", "128", "-q")
    assert done.exit_code == 1
    assert_one_line_error(done.stderr)
    assert "lower --patch" in done.stderr and not (tmp_path / "run").exists()


def test_minutes_bounds_a_run_and_it_still_exports(tmp_path: Path) -> None:
    run = tmp_path / "run"
    done = invoke("train", CAVE, "-o", run, "--steps", "100000", "--minutes", "0.05", "--batch", "2", "-q", "--json")
    assert done.exit_code == 0, done.stderr
    with (run / "log.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert 0 < int(rows[-1]["step"]) < 100000
    assert read_manifest(run)[0].to_json() == json_lines(done.stdout)[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU machine has a GPU to train on")
def test_asking_for_a_gpu_where_there_is_none_is_a_one_line_error(tmp_path: Path) -> None:
    done = invoke("train", CAVE, "-o", tmp_path / "run", "--device", "cuda", "-q")
    assert done.exit_code == 1
    assert_one_line_error(done.stderr)
    assert "--device cuda" in done.stderr and not (tmp_path / "run").exists()


def test_an_unknown_model_to_start_from_is_a_one_line_error_and_leaves_no_run_folder(tmp_path: Path) -> None:
    done = invoke("train", CAVE, "-o", tmp_path / "run", "--init", "no-such-model", "-q")
    assert done.exit_code == 1
    assert_one_line_error(done.stderr)
    assert "no-such-model" in done.stderr and not (tmp_path / "run").exists()
