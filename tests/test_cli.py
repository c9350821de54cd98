"""The command line as a user meets it: batches, JSON records, bad input, determinism."""
from __future__ import annotations

import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import rasterio
from cli_helpers import assert_one_line_error, digest, invoke, json_lines, run_process
from conftest import DATA, scene_path, scenes

from hsicodec.checkpoints import SHIPPED_MODELS, read_manifest
from hsicodec.container import HsicReader
from hsicodec.metadata_dictionary import METADATA_DICTIONARY

SMALL_ENVI = next(s for s in scenes("io") if s["id"] == "emit_like")
EVAL_TIF = next(s for s in scenes("eval") if s["id"] == "enmap_potsdam_192_128")
EVAL_MAT = next(s for s in scenes("eval") if s["id"] == "abu_urban_4")


def _copy_scene(entry: dict, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in entry["files"]:
        shutil.copy(DATA / name, folder / Path(name).name)
    return folder / scene_path(entry).name


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("packed") / "emit.hsic"
    result = invoke("compress", scene_path(SMALL_ENVI), "-o", out, "-q")
    assert result.exit_code == 0, result.stderr
    return out


def test_compress_writes_hsic_next_to_the_scene_and_reports_rate(tmp_path: Path) -> None:
    scene = _copy_scene(EVAL_TIF, tmp_path)
    before = digest(scene)
    result = invoke("compress", scene, "-r", "0.4", "--verify", "--json", "-q")
    assert result.exit_code == 0, result.stderr
    record = json_lines(result.stdout)[0]
    out = scene.with_suffix(".hsic")
    assert Path(record["output"]) == out and out.exists()
    assert set(record) >= {"input", "output", "bytes", "bpp", "bpppb", "ratio", "psnr", "ssim", "sam", "mae"}
    assert record["ratio"] == pytest.approx(scene.stat().st_size / out.stat().st_size)
    assert np.isfinite(record["psnr"]) and record["psnr"] > 20
    assert digest(scene) == before


def test_folder_batch_mirrors_the_tree_continues_past_a_bad_file_and_skips_on_rerun(tmp_path: Path) -> None:
    archive, out = tmp_path / "archive", tmp_path / "out"
    _copy_scene(SMALL_ENVI, archive / "envi")
    _copy_scene(EVAL_TIF, archive / "tif" / "deeper")
    _copy_scene(EVAL_MAT, archive)
    (archive / "broken.tif").write_text("not a raster")
    result = invoke("compress", archive, "-o", out, "--json", "-q")
    assert result.exit_code == 1
    assert "broken.tif" in result.stderr and "1 of 4 files failed" in result.stderr
    records = json_lines(result.stdout)
    assert sorted(Path(r["output"]).relative_to(out).as_posix() for r in records) == [
        "abu-urban-4.hsic", "envi/test_data.hsic", "tif/deeper/enmap_potsdam_tile_192_128.hsic"]
    assert not (out / "broken.hsic").exists()
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.hsic")}

    rerun = invoke("compress", archive, "-o", out, "--json", "-q")
    assert rerun.exit_code == 1
    assert {r["status"] for r in json_lines(rerun.stdout)} == {"skipped"}
    assert stamps == {p: p.stat().st_mtime_ns for p in out.rglob("*.hsic")}

    restored = tmp_path / "restored"
    result = invoke("decompress", out, "-o", restored, "-f", "gtiff", "--json", "-q")
    assert result.exit_code == 0, result.stderr
    assert sorted(p.relative_to(restored).as_posix() for p in restored.rglob("*.tif")) == [
        "abu-urban-4.tif", "envi/test_data.tif", "tif/deeper/enmap_potsdam_tile_192_128.tif"]


def test_info_models_and_eval_report_json(packed: Path, tmp_path: Path) -> None:
    info = json.loads(invoke("info", packed, "--json").stdout)
    assert (info["height"], info["width"], info["bands"], info["dtype"]) == (25, 22, 285, "float32")
    assert info["metadata"]["wavelengths"][0] == pytest.approx(381.00558)
    names = [json.loads(line)["name"] for line in invoke("models", "--json").stdout.splitlines()]
    assert sorted(names) == sorted(e.name for e in read_manifest())
    restored = tmp_path / "r.hdr"
    assert invoke("decompress", packed, "-o", restored, "-q").exit_code == 0
    result = invoke("eval", scene_path(SMALL_ENVI), restored, "--json")
    assert result.exit_code == 0, result.stderr
    quality = json.loads(result.stdout)
    assert quality["psnr"] > 20 and 0 < quality["ssim"] <= 1 and quality["sam"] >= 0 and quality["mae"] > 0
    same = json.loads(invoke("eval", scene_path(SMALL_ENVI), scene_path(SMALL_ENVI), "--json").stdout)
    assert same["psnr"] == float("inf") and same["sam"] == 0


def test_decoding_is_identical_across_runs_and_thread_counts(packed: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.hsic"
    assert invoke("compress", scene_path(SMALL_ENVI), "-o", again, "-q").exit_code == 0
    assert digest(again) == digest(packed)
    outputs = []
    for threads in ("1", "2"):
        out = tmp_path / f"t{threads}.tif"
        done = run_process("decompress", packed, "-o", out, "-f", "gtiff", "-q",
                           env={"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads})
        assert done.returncode == 0, done.stderr
        with rasterio.open(out) as ds:
            outputs.append(ds.read())
    np.testing.assert_array_equal(outputs[0], outputs[1])


def _corrupt(packed: Path, tmp_path: Path, how: str) -> Path:
    data = bytearray(packed.read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    elif how == "magic":
        data[:4] = b"\x00\x00\x00\x00"
    elif how == "crc":
        data[-40] ^= 0x01
    elif how == "version":
        data[8] = 99
    out = tmp_path / f"{how}.hsic"
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize("how", ["truncated", "magic", "crc", "version"])
def test_damaged_hsic_is_a_one_line_error_without_output(packed: Path, tmp_path: Path, how: str) -> None:
    damaged = _corrupt(packed, tmp_path, how)
    done = run_process("decompress", damaged, "-o", tmp_path / "out.tif", "-f", "gtiff")
    assert done.returncode == 1
    assert_one_line_error(done.stderr)
    assert not (tmp_path / "out.tif").exists()
    assert [p.name for p in tmp_path.iterdir()] == [damaged.name]


def _with_scene_metadata(packed: Path, tmp_path: Path, **changes: object) -> Path:
    """A copy of `packed` whose METADATA section (CRC recomputed) has its scene fields changed."""
    data = packed.read_bytes()
    at = 20 + struct.unpack_from("<I", data, 12)[0]
    while struct.unpack_from("<H", data, at)[0] != 0x0003:
        at += 10 + struct.unpack_from("<I", data, at + 2)[0]
    length = struct.unpack_from("<I", data, at + 2)[0]
    metadata = json.loads(zlib.decompressobj(zdict=METADATA_DICTIONARY).decompress(data[at + 6:at + 6 + length]))
    metadata["scene"].update(changes)
    deflater = zlib.compressobj(zdict=METADATA_DICTIONARY)
    payload = deflater.compress(json.dumps(metadata).encode()) + deflater.flush()
    section = struct.pack("<HI", 0x0003, len(payload)) + payload
    out = tmp_path / "edited.hsic"
    out.write_bytes(data[:at] + section + struct.pack("<I", zlib.crc32(section)) + data[at + 10 + length:])
    return out


def test_stored_wavelengths_are_a_difference_form_that_info_and_decompress_check(tmp_path: Path) -> None:
    """EnMAP's wavelengths are short decimals: stored as second differences, shown and written back
    as the list; a malformed form is a one-line error of both commands."""
    packed = tmp_path / "enmap.hsic"
    assert invoke("compress", scene_path(EVAL_TIF), "-r", 0.4, "-o", packed, "-q").exit_code == 0
    with HsicReader(packed) as reader, rasterio.open(scene_path(EVAL_TIF)) as source:
        assert set(reader.metadata["scene"]["wavelengths"]) == {"decimals", "second_differences"}
        wavelengths = [float(source.tags(band)["wavelength"]) for band in range(1, source.count + 1)]
    assert json.loads(invoke("info", packed, "--json").stdout)["metadata"]["wavelengths"] == wavelengths
    bad = _with_scene_metadata(packed, tmp_path, wavelengths={"decimals": 3})
    for command in (("info", bad), ("decompress", bad, "-o", tmp_path / "out.hdr")):
        done = run_process(*command)
        assert done.returncode == 1 and "wavelengths" in done.stderr
        assert_one_line_error(done.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edited.hsic", "enmap.hsic"]


def _nan_scene(tmp_path: Path) -> Path:
    with rasterio.open(scene_path(EVAL_TIF)) as ds:
        cube, profile = ds.read(), ds.profile
    cube[3, 5, 7] = np.nan
    profile.update(nodata=None)
    path = tmp_path / "nan.tif"
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(cube)
    return path


@pytest.mark.parametrize("case", ["not_a_raster", "nan", "missing", "header_only", "zero_size"])
def test_bad_scene_is_a_one_line_error_and_leaves_nothing(tmp_path: Path, case: str) -> None:
    if case == "not_a_raster":
        scene = tmp_path / "fake.tif"
        scene.write_text("hello")
    elif case == "nan":
        scene = _nan_scene(tmp_path)
    elif case == "missing":
        scene = tmp_path / "absent.hdr"
    elif case == "zero_size":
        scene = tmp_path / "empty.hdr"
        scene.write_text("ENVI\nsamples = 0\nlines = 5\nbands = 3\ndata type = 2\ninterleave = bsq\n")
        (tmp_path / "empty.img").write_bytes(b"")
    else:
        scene = scene_path(next(s for s in scenes("io") if s["id"] == "enmap_berlin_header"))
    out = tmp_path / "out.hsic"
    done = run_process("compress", scene, "-o", out)
    if case == "missing":  # a usage error, reported by click with exit status 2
        assert done.returncode == 2 and "does not exist" in done.stderr and "Traceback" not in done.stderr
    else:
        assert done.returncode == 1
        assert_one_line_error(done.stderr)
    assert not out.exists()


@pytest.mark.parametrize("command, sought", [("compress", "no scene"), ("decompress", "no .hsic file")])
def test_a_folder_with_nothing_to_code_is_a_one_line_error_before_any_work(tmp_path: Path, command: str,
                                                                          sought: str) -> None:
    empty = tmp_path / "archive" / "empty"
    (empty / "deeper").mkdir(parents=True)
    (empty / "notes.txt").write_text("no scene here")
    real = _copy_scene(EVAL_TIF, tmp_path / "archive" / "real")
    if command == "decompress":
        assert invoke("compress", real, "-q").exit_code == 0
    out = tmp_path / "out"
    result = invoke(command, real.parent, empty, "-o", out, "-q")
    assert result.exit_code == 1
    assert_one_line_error(result.stderr)
    assert f"{empty}: {sought}" in result.stderr
    assert not out.exists()


def test_a_missing_or_tampered_checkpoint_is_refused(tmp_path: Path, packed: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(SHIPPED_MODELS, models)
    with HsicReader(packed) as reader:
        entry = next(e for e in read_manifest() if e.model_id == reader.header.model_id)
    checkpoint = models / entry.file
    tampered = bytearray(checkpoint.read_bytes())
    tampered[len(tampered) // 2] ^= 0x01
    checkpoint.write_bytes(bytes(tampered))
    done = run_process("decompress", packed, "-o", tmp_path / "x.tif", "-f", "gtiff",
                       env={"HSICODEC_MODELS": str(models)})
    assert done.returncode == 1 and "sha256" in done.stderr
    assert_one_line_error(done.stderr)
    checkpoint.unlink()
    done = run_process("compress", scene_path(SMALL_ENVI), "-o", tmp_path / "y.hsic",
                       env={"HSICODEC_MODELS": str(models)})
    assert done.returncode == 1 and "missing" in done.stderr
    assert_one_line_error(done.stderr)


def test_output_name_chooses_the_format_and_a_contradicting_format_is_refused(tmp_path: Path, packed: Path) -> None:
    assert invoke("decompress", packed, "-o", tmp_path / "r.TIFF", "-q").exit_code == 0
    with rasterio.open(tmp_path / "r.TIFF") as ds:
        assert ds.driver == "GTiff" and ds.count == 285
    assert invoke("decompress", packed, "-o", tmp_path / "r.hdr", "-q").exit_code == 0
    with rasterio.open(tmp_path / "r.img") as ds:
        assert ds.driver == "ENVI" and ds.count == 285
    refused = invoke("decompress", packed, "-o", tmp_path / "x.tif", "-f", "envi")
    assert refused.exit_code == 2 and "-f is envi" in refused.stderr
    assert not list(tmp_path.glob("x.*"))


def test_help_teaches_with_examples() -> None:
    for command in ("compress", "decompress", "info", "models", "eval"):
        result = invoke(command, "--help")
        assert result.exit_code == 0 and "Example" in result.stdout


@pytest.mark.parametrize("entry_id, fmt", [("enmap_potsdam_192_128", "gtiff"), ("aviris_ng_rotated", "envi")])
def test_window_decodes_the_same_pixels_with_shifted_georeferencing(tmp_path: Path, entry_id: str, fmt: str) -> None:
    entry = next(s for s in scenes("eval") + scenes("io") if s["id"] == entry_id)
    packed = tmp_path / "s.hsic"
    assert invoke("compress", scene_path(entry), "-o", packed, "--tile-size", "16", "-q").exit_code == 0
    suffix = ".tif" if fmt == "gtiff" else ".hdr"
    full, part = tmp_path / f"full{suffix}", tmp_path / f"part{suffix}"
    assert invoke("decompress", packed, "-o", full, "-f", fmt, "-q").exit_code == 0
    result = invoke("decompress", packed, "-o", part, "-f", fmt, "-q", "--window", 2, 3, 7, 6)
    assert result.exit_code == 0, result.stderr
    with rasterio.open(full if fmt == "gtiff" else full.with_suffix(".img")) as whole, \
            rasterio.open(part if fmt == "gtiff" else part.with_suffix(".img")) as window:
        np.testing.assert_array_equal(window.read(), whole.read()[:, 2:9, 3:9])
        expected = whole.window_transform(rasterio.windows.Window(3, 2, 6, 7))
        assert list(window.transform) == pytest.approx(list(expected), abs=1e-6)
        assert window.crs == whole.crs
    outside = invoke("decompress", packed, "-o", tmp_path / "x.tif", "-f", "gtiff", "--window", 0, 0, 999, 1)
    assert outside.exit_code == 1 and "--window" in outside.stderr
