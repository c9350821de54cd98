"""Unusual but legal scenes, cut from real ones, through compress and decompress; broken ones refused."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from cli_helpers import assert_one_line_error, digest, invoke
from conftest import DATA
from hsicodec.io import open_scene

ENVI_TYPES = {"uint8": 1, "int16": 2, "int32": 3, "float32": 4, "float64": 5, "uint16": 12}


SMALL_SCENE_RATE = 4  # bpp: on a 40 x 40 crop the KLT basis and metadata alone are about 2 bpp


def real_cube(height: int = 40, width: int = 40, bands: int = 31) -> np.ndarray:
    """A (H, W, B) float64 crop of the CAVE feathers scene, values in [0, 1]."""
    with rasterio.open(DATA / "cave" / "feathers.tif") as ds:
        cube = ds.read(window=((100, 100 + height), (60, 60 + width)))[:bands].transpose(1, 2, 0)
    cube = cube.astype(np.float64)
    return (cube - cube.min()) / (cube.max() - cube.min())


def as_dtype(unit: np.ndarray, dtype: str) -> np.ndarray:
    """[0, 1] values spread over most of the type's range."""
    kind = np.dtype(dtype)
    if kind.kind == "f":
        return (unit * 1000 - 200).astype(dtype)
    info = np.iinfo(kind)
    lo, hi = max(info.min, -30000), min(info.max, 60000)
    return np.rint(lo + unit * (hi - lo) * 0.9).astype(dtype)


def write_envi(path: Path, cube: np.ndarray, extra: str = "") -> Path:
    """BSQ ENVI scene: path.img + path.hdr."""
    height, width, bands = cube.shape
    cube.transpose(2, 0, 1).astype(cube.dtype.newbyteorder("<")).tofile(path.with_suffix(".img"))
    header = path.with_suffix(".hdr")
    header.write_text(f"ENVI\nsamples = {width}\nlines = {height}\nbands = {bands}\nheader offset = 0\n"
                      f"data type = {ENVI_TYPES[cube.dtype.name]}\ninterleave = bsq\nbyte order = 0\n{extra}")
    return header


def write_gtiff(path: Path, cube: np.ndarray, nodata: float | None = None) -> Path:
    height, width, bands = cube.shape
    with rasterio.open(path, "w", driver="GTiff", height=height, width=width, count=bands, dtype=cube.dtype.name,
                       nodata=nodata) as ds:
        ds.write(cube.transpose(2, 0, 1))
    return path


def round_trip(scene: Path, tmp_path: Path) -> np.ndarray:
    """compress + decompress through the command line; the restored cube (H, W, B)."""
    tmp_path.mkdir(exist_ok=True)
    packed, restored = tmp_path / "s.hsic", tmp_path / "restored.hdr"
    before = digest(scene)
    result = invoke("compress", scene, "-o", packed, "-q", "-r", SMALL_SCENE_RATE)
    assert result.exit_code == 0, result.stderr
    result = invoke("decompress", packed, "-o", restored, "-q")
    assert result.exit_code == 0, result.stderr
    assert digest(scene) == before  # the input is only read
    with open_scene(restored) as reader:
        return reader.read(0, 0, *reader.shape[:2])


def psnr(reference: np.ndarray, restored: np.ndarray) -> float:
    reference, restored = reference.astype(np.float64), restored.astype(np.float64)
    peak = reference.max() - reference.min()
    return float(10 * np.log10(peak**2 / np.mean((reference - restored) ** 2)))


@pytest.mark.parametrize("dtype", ["uint8", "int16", "uint16", "int32", "float32", "float64"])
def test_every_envi_sample_type_round_trips_in_its_type(tmp_path: Path, dtype: str) -> None:
    cube = as_dtype(real_cube(), dtype)
    restored = round_trip(write_envi(tmp_path / "scene", cube), tmp_path)
    assert restored.dtype == cube.dtype and restored.shape == cube.shape
    assert psnr(cube, restored) > 20


def test_int8_geotiff_round_trips_and_envi_output_is_refused_clearly(tmp_path: Path) -> None:
    cube = as_dtype(real_cube(), "int8")
    scene = write_gtiff(tmp_path / "scene.tif", cube)
    packed, restored = tmp_path / "s.hsic", tmp_path / "restored.tif"
    assert invoke("compress", scene, "-o", packed, "-q", "-r", SMALL_SCENE_RATE).exit_code == 0
    assert invoke("decompress", packed, "-o", restored, "-f", "gtiff", "-q").exit_code == 0
    with rasterio.open(restored) as ds:
        back = ds.read().transpose(1, 2, 0)
    assert back.dtype == np.int8 and psnr(cube, back) > 20
    refused = invoke("decompress", packed, "-o", tmp_path / "r.hdr")
    assert refused.exit_code == 1 and "gtiff" in refused.stderr
    assert_one_line_error(refused.stderr)
    assert not (tmp_path / "r.hdr").exists() and not (tmp_path / "r.img").exists()


@pytest.mark.parametrize("shape", [(1, 1), (1, 37), (37, 53), (17, 16)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_sizes_that_are_not_multiples_of_the_stride(tmp_path: Path, shape: tuple[int, int]) -> None:
    cube = as_dtype(real_cube(*shape), "uint16")
    restored = round_trip(write_envi(tmp_path / "scene", cube), tmp_path)
    assert restored.shape == cube.shape
    if min(shape) > 1:
        assert psnr(cube, restored) > 20


def test_single_band_geotiff_round_trips(tmp_path: Path) -> None:
    cube = as_dtype(real_cube(48, 48, 1), "uint16")
    restored = round_trip(write_gtiff(tmp_path / "one.tif", cube), tmp_path)
    # all the energy sits in the first KLT component, unlike the scenes the model learnt from: modest quality
    assert restored.shape == (48, 48, 1) and psnr(cube, restored) > 12


def test_constant_bands_and_a_constant_scene(tmp_path: Path) -> None:
    cube = as_dtype(real_cube(), "uint16")
    cube[:, :, 5] = 1234
    cube[:, :, 20] = cube[:, :, 20].max()
    restored = round_trip(write_envi(tmp_path / "bands", cube), (tmp_path / "a"))
    assert psnr(cube, restored) > 20
    flat = np.full((33, 35, 12), 777, np.int16)
    restored = round_trip(write_envi(tmp_path / "flat", flat), (tmp_path / "b"))
    assert np.abs(restored.astype(int) - 777).max() <= 1  # the only error: rounding within a unit range


def test_nan_nodata_is_kept_exactly(tmp_path: Path) -> None:
    cube = as_dtype(real_cube(), "float32")
    holes = np.zeros(cube.shape, bool)
    holes[3:9, 10:12, :] = True  # whole spectra
    holes[20, 20, 4] = True  # one sample
    cube[holes] = np.nan
    restored = round_trip(write_gtiff(tmp_path / "holes.tif", cube, nodata=float("nan")), tmp_path)
    assert np.array_equal(np.isnan(restored), holes)
    assert psnr(cube[~holes], restored[~holes]) > 20


@pytest.mark.parametrize("case", ["short data file", "missing data file", "infinite values"])
def test_broken_scenes_are_one_line_errors_without_output(tmp_path: Path, case: str) -> None:
    cube = as_dtype(real_cube(), "int16" if case != "infinite values" else "float32")
    if case == "infinite values":
        cube[4, 4, 4] = np.inf
    scene = write_envi(tmp_path / "scene", cube)
    data = scene.with_suffix(".img")
    if case == "short data file":
        data.write_bytes(data.read_bytes()[:-100])
    elif case == "missing data file":
        data.unlink()
    result = invoke("compress", scene, "-o", tmp_path / "out.hsic")
    assert result.exit_code == 1
    assert_one_line_error(result.stderr)
    assert not (tmp_path / "out.hsic").exists()
