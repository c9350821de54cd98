"""The JPEG 2000 baselines of `hsicodec bench` on real scenes.

A 128 x 128 crop of CAVE feathers (31 bands, uint16) at 0.5, 1 and 2 bpp, and
the 100 x 100 x 193 eval scene abu_beach_2 (int16) at 1 bpp, where PCA + JPEG
2000 must beat band-wise JPEG 2000 as in Du & Fowler (2007).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, scene_path, scenes

import hsicodec.baselines as baselines
from hsicodec.baselines import BaselineResult, jpeg2000_bandwise, pca_jpeg2000
from hsicodec.io import open_scene

METHODS = {"bandwise": jpeg2000_bandwise, "pca": pca_jpeg2000}
RATES = [0.5, 1.0, 2.0]


def _psnr(reference: np.ndarray, other: np.ndarray) -> float:
    reference, other = reference.astype(np.float64), other.astype(np.float64)
    peak = reference.max() - reference.min()
    return float(10 * np.log10(peak**2 / np.mean((reference - other) ** 2)))


def _code(method: str, cube: np.ndarray, rate: float, workdir: Path, **options) -> BaselineResult:
    """Run a baseline and check what holds for every call: nothing left in workdir, rate bookkeeping."""
    result = METHODS[method](cube, rate, workdir, **options)
    assert list(workdir.iterdir()) == []
    h, w, _ = cube.shape
    assert result.target_bpp == rate
    assert result.bpp == pytest.approx(8 * result.bytes / (h * w))
    assert result.reconstruction.shape == cube.shape
    assert result.reconstruction.dtype == cube.dtype
    return result


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("baselines")


@pytest.fixture(scope="module")
def cave(data_dir: Path) -> np.ndarray:
    with open_scene(DATA / "cave" / "feathers.tif") as reader:
        return reader.read(64, 64, 128, 128)  # centre crop, uint16


@pytest.fixture(scope="module")
def abu_beach_2(data_dir: Path) -> np.ndarray:
    entry = next(s for s in scenes("eval") if s["id"] == "abu_beach_2")
    with open_scene(scene_path(entry), entry.get("var")) as reader:
        h, w, _ = reader.shape
        return reader.read(0, 0, h, w)


@pytest.fixture(scope="module")
def cave_results(cave: np.ndarray, workdir: Path) -> dict[tuple[str, float], BaselineResult]:
    return {(m, r): _code(m, cave, r, workdir) for m in METHODS for r in RATES}


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("method", METHODS)
def test_rate_matched_within_5_percent_on_cave(cave_results: dict, method: str, rate: float) -> None:
    result = cave_results[method, rate]
    assert abs(result.bpp / rate - 1) <= 0.05, f"{method} at {rate} bpp reached {result.bpp:.4f}"


@pytest.mark.parametrize("method", METHODS)
def test_quality_grows_with_rate(cave: np.ndarray, cave_results: dict, method: str) -> None:
    psnr = [_psnr(cave, cave_results[method, r].reconstruction) for r in RATES]
    assert psnr[0] < psnr[1] < psnr[2], psnr
    assert psnr[0] > 20  # a real reconstruction, not mid-grey


def test_pca_beats_bandwise_at_1_bpp_on_abu_beach_2(abu_beach_2: np.ndarray, workdir: Path) -> None:
    bandwise = _code("bandwise", abu_beach_2, 1.0, workdir)
    pca = _code("pca", abu_beach_2, 1.0, workdir)
    assert abs(bandwise.bpp - 1) <= 0.05 and abs(pca.bpp - 1) <= 0.05, (bandwise.bpp, pca.bpp)
    assert _psnr(abu_beach_2, pca.reconstruction) > _psnr(abu_beach_2, bandwise.reconstruction) + 3


def _variants(cave: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "uint16": cave,
        "int16": (cave.astype(np.int32) - 30000).astype(np.int16),  # negative values too
        "float32": (cave / np.float32(65535)).astype(np.float32),  # reflectance-like
    }


@pytest.mark.parametrize("dtype", ["uint16", "int16", "float32"])
@pytest.mark.parametrize("method", METHODS)
def test_reconstruction_has_source_dtype_and_shape(cave: np.ndarray, workdir: Path, method: str, dtype: str) -> None:
    cube = _variants(cave)[dtype]
    result = _code(method, cube, 1.0, workdir)  # checks dtype and shape
    assert cube.dtype == np.dtype(dtype)
    assert abs(result.bpp - 1) <= 0.05
    assert _psnr(cube, result.reconstruction) > 28


def _jp2_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of the .jp2 files the baselines decode."""
    sizes: list[int] = []
    read = baselines._read_jp2

    def spy(path: Path) -> np.ndarray:
        sizes.append(path.stat().st_size)
        return read(path)

    monkeypatch.setattr(baselines, "_read_jp2", spy)
    return sizes


def test_side_information_is_counted(cave: np.ndarray, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = _jp2_sizes(monkeypatch)
    variants = _variants(cave)
    bands = cave.shape[2]

    pca = _code("pca", variants["uint16"], 1.0, workdir, components=3)
    assert len(sizes) == 1
    assert pca.bytes > sizes[0] + bands  # mean (B) and basis (3 x B) float32, even zlib-compressed

    for dtype, side in [("uint16", 0), ("int16", 0), ("float32", 16)]:  # float32: min and max as float64
        sizes.clear()
        result = _code("bandwise", variants[dtype], 1.0, workdir)
        assert result.bytes == sizes[0] + side


@pytest.mark.parametrize("method", METHODS)
def test_not_a_cube_is_refused(method: str, workdir: Path) -> None:
    with pytest.raises(ValueError, match="3-D"):
        METHODS[method](np.zeros((8, 8), np.uint16), 1.0, workdir)
    with pytest.raises(ValueError, match="empty"):
        METHODS[method](np.zeros((0, 8, 4), np.uint16), 1.0, workdir)
    assert list(workdir.iterdir()) == []
