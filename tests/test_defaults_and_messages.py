"""What a user is told: the default rate, which model -r uses, threads, and one-line usage errors."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from cli_helpers import REPO, digest, invoke, json_lines
from conftest import scene_path, scenes

from hsicodec.cli.compress import DEFAULT_RATE
from hsicodec.container import HsicReader

CAVE_EVAL = next(s for s in scenes("eval") if s["id"] == "cave_feathers")  # 256 x 256 x 31
ENMAP_EVAL = next(s for s in scenes("eval") if s["id"] == "enmap_potsdam_192_128")  # 32 x 32 x 224


def test_compress_without_a_rate_codes_at_the_default_rate(tmp_path) -> None:
    out = tmp_path / "feathers.hsic"
    done = invoke("compress", scene_path(CAVE_EVAL), "-o", out, "--json", "-q")
    assert done.exit_code == 0, done.stderr
    [record] = json_lines(done.stdout)
    with HsicReader(out) as reader:
        assert reader.metadata["target_bpp"] == DEFAULT_RATE
    assert record["bpp"] == pytest.approx(DEFAULT_RATE, rel=0.05)
    assert f"[default: {DEFAULT_RATE};" in " ".join(invoke("compress", "--help").stdout.split())


def test_threads_option_and_environment_set_the_threads_and_leave_the_file_the_same(tmp_path, monkeypatch) -> None:
    before = torch.get_num_threads()
    try:
        files = {}
        for threads in (1, 2):
            monkeypatch.setenv("HSICODEC_THREADS", str(threads))
            files[threads] = tmp_path / f"t{threads}.hsic"
            assert invoke("compress", scene_path(CAVE_EVAL), "-r", "0.4", "-o", files[threads], "-q").exit_code == 0
            assert torch.get_num_threads() == threads
        assert digest(files[1]) == digest(files[2])
        assert invoke("compress", scene_path(CAVE_EVAL), "--threads", "0").exit_code == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("args, says", [
    ([], "Missing argument 'INPUTS...'"),
    (["x.hdr", "-r", "-1"], "Invalid value for '-r' / '--rate'"),
    (["x.hdr", "--bogus"], "No such option '--bogus'"),
])
def test_a_usage_error_is_one_line_with_exit_status_2(args: list[str], says: str) -> None:
    done = subprocess.run([sys.executable, "-m", "hsicodec", "compress", *args], capture_output=True, text=True,
                          cwd=REPO)
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("hsicodec: usage error: ") and says in line and "compress --help" in line


@pytest.mark.parametrize("command, says", [("info", "the file's description as one JSON object"),
                                           ("models", "one JSON object per model"),
                                           ("train", "the exported model's manifest entry as one JSON object"),
                                           ("compress", "one JSON object per file")])
def test_json_help_says_what_each_command_prints(command: str, says: str) -> None:
    assert says in " ".join(invoke(command, "--help").stdout.split())
