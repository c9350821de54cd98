"""Folder batches on Dask: a local cluster (-j) and an existing one (--scheduler), on loopback."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from dask.distributed import LocalCluster

from cli_helpers import assert_one_line_error, digest, run_process
from conftest import scene_path, scenes
from hsicodec.container import HsicReader

IDS = ["abu_beach_2", "sandiego_plane", "enmap_potsdam_192_64", "cave_feathers"]


@pytest.fixture()
def archive(tmp_path: Path) -> Path:
    """Real eval scenes (links to ../shared/data) and one file that is not a scene."""
    root = tmp_path / "archive"
    for n, entry_id in enumerate(IDS):
        entry = next(s for s in scenes("eval") if s["id"] == entry_id)
        folder = root / f"part{n % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / scene_path(entry).name).symlink_to(scene_path(entry))
    (root / "part0" / "broken.tif").write_text("not a raster")
    return root


def summary_rows(path: Path) -> dict[str, dict]:
    with path.open() as fh:
        return {Path(row["input"]).name: row for row in csv.DictReader(fh)}


def test_local_cluster_compresses_a_folder_and_a_rerun_skips_it(archive: Path, tmp_path: Path) -> None:
    inputs = {p: digest(p) for p in archive.rglob("*") if p.is_file()}
    out, summary = tmp_path / "out", tmp_path / "summary.csv"
    done = run_process("compress", archive, "-o", out, "-j", "2", "--verify", "--summary", summary, "-q", "--json")
    assert done.returncode == 1  # the broken file
    assert "broken.tif" in done.stderr and "1 of 5 files failed" in done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert sorted(r["status"] for r in records) == ["ok"] * 4
    rows = summary_rows(summary)
    assert rows["broken.tif"]["status"] == "failed" and rows["broken.tif"]["error"]
    for name, row in rows.items():
        if name != "broken.tif":
            assert row["status"] == "ok" and float(row["psnr"]) > 15 and int(row["bytes"]) > 0
            with HsicReader(Path(row["output"])) as reader:
                assert not reader.damaged_tiles(range(reader.header.n_tiles))
    again = run_process("compress", archive, "-o", out, "-j", "2", "--summary", summary, "-q")
    assert again.returncode == 1
    assert sorted(r["status"] for r in summary_rows(summary).values()) == ["failed"] + ["skipped"] * 4
    assert {p: digest(p) for p in archive.rglob("*") if p.is_file()} == inputs


def test_an_existing_scheduler_runs_compress_and_decompress(archive: Path, tmp_path: Path) -> None:
    (archive / "part0" / "broken.tif").unlink()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        packed, restored = tmp_path / "packed", tmp_path / "restored"
        done = run_process("compress", archive, "-o", packed, "--scheduler", address, "-q")
        assert done.returncode == 0, done.stderr
        done = run_process("decompress", packed, "-o", restored, "-f", "gtiff", "--scheduler", address,
                           "--summary", tmp_path / "d.csv", "-q")
        assert done.returncode == 0, done.stderr
    rows = summary_rows(tmp_path / "d.csv")
    assert len(rows) == len(IDS) and all(r["status"] == "ok" for r in rows.values())
    assert len(list(restored.rglob("*.tif"))) == len(IDS)


def test_an_unreachable_scheduler_is_a_one_line_error(archive: Path, tmp_path: Path) -> None:
    done = run_process("compress", archive, "-o", tmp_path / "out", "--scheduler", "tcp://127.0.0.1:9", "-q")
    assert done.returncode == 1 and "Dask scheduler" in done.stderr
    assert_one_line_error(done.stderr)
    assert not list(tmp_path.glob("out/**/*.hsic"))
