"""A folder batch that is killed, re-run, or runs out of disk: no lost or half-written data."""
from __future__ import annotations

import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio

from cli_helpers import REPO, assert_one_line_error, digest
from conftest import scene_path, scenes
from hsicodec.container import HsicReader
from hsicodec.errors import ContainerError
from hsicodec.io import open_scene

EVAL_IDS = ["abu_beach_2", "sandiego_plane", "paviaU_sub50", "enmap_potsdam_192_64", "enmap_potsdam_192_96",
            "cave_feathers", "cave_sponges", "abu_urban_4"]


@pytest.fixture()
def archive(tmp_path: Path) -> Path:
    """A folder of real eval scenes (links to ../shared/data), in two sub-folders."""
    root = tmp_path / "archive"
    for n, entry_id in enumerate(EVAL_IDS):
        entry = next(s for s in scenes("eval") if s["id"] == entry_id)
        folder = root / ("a" if n % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / scene_path(entry).name).symlink_to(scene_path(entry))
    return root


def hsicodec(*args: object, limit_bytes: int | None = None) -> subprocess.Popen:
    def limit() -> None:  # a full disk, as seen by the process: writes beyond the limit fail
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.Popen([sys.executable, "-m", "hsicodec", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=limit if limit_bytes else None,
                            env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})


def visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def assert_every_visible_output_is_complete(out: Path) -> None:
    for path in visible(out):
        try:
            with HsicReader(path) as reader:
                assert not reader.damaged_tiles(range(reader.header.n_tiles)), path
        except ContainerError as exc:
            pytest.fail(f"a partial output looks like a result: {exc}")


def kill_mid_batch(run: subprocess.Popen, out: Path, rng: random.Random) -> bool:
    """SIGKILL `run` a random moment (up to 0.2 s) after it has finished one more scene, that is while
    it works on the next; False if it ended first. Waiting for progress rather than a fixed time keeps
    the kill inside the batch however fast the machine is."""
    done = len(visible(out))
    deadline = time.monotonic() + 120
    while run.poll() is None and len(visible(out)) == done and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, 0.2))
    if run.poll() is not None:
        return False
    run.send_signal(signal.SIGKILL)
    return True


def test_killing_a_folder_batch_repeatedly_then_rerunning_completes_it(archive: Path, tmp_path: Path) -> None:
    inputs = {p: digest(p) for p in archive.rglob("*") if p.is_file()}
    out = tmp_path / "out"
    rng = random.Random(7)
    kills = 0
    for _ in range(5):
        run = hsicodec("compress", archive, "-o", out, "-q")
        kills += kill_mid_batch(run, out, rng)
        run.wait(timeout=60)
        assert_every_visible_output_is_complete(out)
    assert kills >= 3
    final = hsicodec("compress", archive, "-o", out, "-q", "--json")
    stdout, stderr = final.communicate(timeout=300)
    assert final.returncode == 0, stderr
    assert len(visible(out)) == len(EVAL_IDS)
    assert not [p for p in out.rglob(".*")]  # no temporaries left behind
    assert_every_visible_output_is_complete(out)
    assert {p: digest(p) for p in archive.rglob("*") if p.is_file()} == inputs


def test_killed_decompress_batch_resumes_and_skips_finished_scenes(archive: Path, tmp_path: Path) -> None:
    packed, restored = tmp_path / "packed", tmp_path / "restored"
    assert hsicodec("compress", archive, "-o", packed, "-q").wait(timeout=300) == 0
    run = hsicodec("decompress", packed, "-o", restored, "-q")
    time.sleep(6.0)
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=60)
    final = hsicodec("decompress", packed, "-o", restored, "-q", "--json")
    stdout, stderr = final.communicate(timeout=300)
    assert final.returncode == 0, stderr
    headers = [p for p in visible(restored) if p.suffix == ".hdr"]
    assert len(headers) == len(EVAL_IDS) and not list(restored.rglob(".*"))
    for header in headers:
        with open_scene(header) as reader:
            reader.read(0, 0, *reader.shape[:2])  # the data file is whole


@pytest.mark.parametrize("command", ["compress", "decompress"])
def test_a_full_disk_is_a_clear_error_and_leaves_no_output(archive: Path, tmp_path: Path, command: str) -> None:
    scene = next(archive.rglob("feathers.tif"))
    source = scene
    if command == "decompress":
        source = tmp_path / "feathers.hsic"
        assert hsicodec("compress", scene, "-o", source, "-q").wait(timeout=300) == 0
    out = tmp_path / "out"
    out.mkdir()
    target = out / ("feathers.hsic" if command == "compress" else "feathers.hdr")
    run = hsicodec(command, source, "-o", target, limit_bytes=1024)  # any .hsic of feathers is larger
    _, stderr = run.communicate(timeout=300)
    assert run.returncode == 1
    assert_one_line_error(stderr)
    assert "cannot write" in stderr and "nothing was written" in stderr
    assert list(out.iterdir()) == []


@pytest.fixture()
def small_tmpfs(tmp_path: Path):
    """A real 1 MiB file system, where the machine allows mounting one (root); skipped otherwise."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here; the size-limit test covers the same path")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_really_full_disk_does_not_crash_the_envi_writer(archive: Path, tmp_path: Path, small_tmpfs: Path) -> None:
    """The ENVI data file is allocated up front: no SIGBUS from its memory map when the disk fills."""
    packed = tmp_path / "feathers.hsic"
    assert hsicodec("compress", next(archive.rglob("feathers.tif")), "-o", packed, "-q").wait(timeout=300) == 0
    run = hsicodec("decompress", packed, "-o", small_tmpfs / "feathers.hdr")  # 4 MB into 1 MiB
    _, stderr = run.communicate(timeout=300)
    assert run.returncode == 1
    assert_one_line_error(stderr)
    assert "No space left" in stderr and list(small_tmpfs.iterdir()) == []


def test_salvage_writes_the_intact_tiles_and_names_the_damaged_ones(tmp_path: Path) -> None:
    feathers = Path(__file__).resolve().parents[2] / "shared" / "data" / "cave" / "feathers.tif"
    packed = tmp_path / "f.hsic"
    assert hsicodec("compress", feathers, "-o", packed, "--tile-size", "64", "-q").wait(timeout=300) == 0
    intact = tmp_path / "intact.tif"
    assert hsicodec("decompress", packed, "-o", intact, "-f", "gtiff", "-q").wait(timeout=300) == 0
    with HsicReader(packed) as reader:
        offset, length = reader._tiles[6]  # flip a bit in the middle of tile 6's streams
    data = bytearray(packed.read_bytes())
    data[offset + length // 2] ^= 0x20
    damaged = tmp_path / "damaged.hsic"
    damaged.write_bytes(bytes(data[: len(data) - 40]))  # and lose the end of the file
    strict = hsicodec("decompress", damaged, "-o", tmp_path / "strict.tif", "-f", "gtiff")
    _, stderr = strict.communicate(timeout=300)
    assert strict.returncode == 1 and not (tmp_path / "strict.tif").exists()
    assert_one_line_error(stderr)
    run = hsicodec("decompress", damaged, "-o", tmp_path / "salvaged.tif", "-f", "gtiff", "--salvage", "--json")
    stdout, stderr = run.communicate(timeout=300)
    assert run.returncode == 0, stderr
    record = json.loads(stdout)
    lost = [t["tile"] for t in record["damaged_tiles"]]
    assert record["status"] == "salvaged" and lost == [6, 15]
    assert "tile 6 (rows 64-127, cols 128-191)" in stderr and "tile 15" in stderr
    with rasterio.open(intact) as good, rasterio.open(tmp_path / "salvaged.tif") as saved:
        expected, got = good.read(), saved.read()
        assert saved.nodata == 0
    keep = np.ones(got.shape[1:], bool)
    keep[64:128, 128:192] = keep[192:256, 192:256] = False
    assert np.array_equal(got[:, keep], expected[:, keep]) and (got[:, ~keep] == 0).all()
