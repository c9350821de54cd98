"""The classical anchors of `hsicodec bench` on real scenes.

A 128 x 128 crop of CAVE feathers (31 bands, uint16) at 0.5, 1 and 2 bpp, and
the 100 x 100 x 193 eval scene abu_beach_2 (int16) at 2 bpp (band-wise JPEG
2000's headers alone take over 1 bpp there), where PCA + JPEG 2000 must beat
band-wise JPEG 2000 as in Du & Fowler (2007).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, scene_path, scenes

import hsicodec.baselines as baselines
from hsicodec.baselines import ANCHORS, BaselineResult
from hsicodec.io import open_scene

METHODS = list(ANCHORS)
RATES = [0.5, 1.0, 2.0]


def _psnr(reference: np.ndarray, other: np.ndarray) -> float:
    reference, other = reference.astype(np.float64), other.astype(np.float64)
    peak = reference.max() - reference.min()
    return float(10 * np.log10(peak**2 / np.mean((reference - other) ** 2)))


def _code(method: str, cube: np.ndarray, rate: float, **options) -> BaselineResult:
    """Run a baseline and check what holds for every call: its name, the rate bookkeeping, shape and dtype."""
    result = ANCHORS[method](cube, rate, **options)
    assert result.method == method
    h, w, _ = cube.shape
    assert result.target_bpp == rate
    assert result.bpp == pytest.approx(8 * result.bytes / (h * w))
    assert result.reconstruction.shape == cube.shape
    assert result.reconstruction.dtype == cube.dtype
    return result


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
def cave_results(cave: np.ndarray) -> dict[tuple[str, float], BaselineResult]:
    return {(m, r): _code(m, cave, r) for m in METHODS for r in RATES}


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


def test_pca_beats_bandwise_at_2_bpp_on_abu_beach_2(abu_beach_2: np.ndarray) -> None:
    bandwise = _code("JPEG 2000", abu_beach_2, 2.0)
    pca = _code("PCA + JPEG 2000", abu_beach_2, 2.0)
    assert abs(bandwise.bpp - 2) <= 0.1 and abs(pca.bpp - 2) <= 0.1, (bandwise.bpp, pca.bpp)
    assert _psnr(abu_beach_2, pca.reconstruction) > _psnr(abu_beach_2, bandwise.reconstruction) + 3


def _variants(cave: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "uint16": cave,
        "int16": (cave.astype(np.int32) - 30000).astype(np.int16),  # negative values too
        "float32": (cave / np.float32(65535)).astype(np.float32),  # reflectance-like
        "float64": cave * 1e6 + 1e9,  # radiance far beyond float16's range
    }


@pytest.mark.parametrize("dtype", ["uint16", "int16", "float32", "float64"])
@pytest.mark.parametrize("method", METHODS)
def test_reconstruction_has_source_dtype_and_shape(cave: np.ndarray, method: str, dtype: str) -> None:
    cube = _variants(cave)[dtype]
    result = _code(method, cube, 1.0)  # checks dtype and shape
    assert cube.dtype == np.dtype(dtype)
    assert abs(result.bpp - 1) <= 0.05
    assert _psnr(cube, result.reconstruction) > 28


def _coded_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of the codestreams the baselines measure, in order (the last is the one kept)."""
    sizes: list[int] = []
    size = baselines._size

    def spy(streams: list[bytes]) -> int:
        sizes.append(size(streams))
        return sizes[-1]

    monkeypatch.setattr(baselines, "_size", spy)
    return sizes


def test_side_information_is_counted(cave: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = _coded_sizes(monkeypatch)
    variants = _variants(cave)
    bands = cave.shape[2]
    for method in ("PCA + JPEG 2000", "PCA + JPEG XL"):
        sizes.clear()
        pca = _code(method, variants["uint16"], 1.0, components=3)
        assert pca.bytes == sizes[-1] + 2 * (bands + 3 * bands) + 24  # float16 mean and basis, 3 float64

    for dtype, side in [("uint16", 0), ("int16", 0), ("float32", 16)]:  # float32: min and max as float64
        sizes.clear()
        result = _code("JPEG 2000", variants[dtype], 1.0)
        assert result.bytes == sizes[-1] + side


@pytest.mark.parametrize("method", METHODS)
def test_not_a_cube_is_refused(method: str) -> None:
    with pytest.raises(ValueError, match="3-D"):
        ANCHORS[method](np.zeros((8, 8), np.uint16), 1.0)
    with pytest.raises(ValueError, match="empty"):
        ANCHORS[method](np.zeros((0, 8, 4), np.uint16), 1.0)
