"""Every real scene of the eval and io splits survives compress -> decompress.

Metadata is checked with independent readers (rasterio, SPy), quality against
the trivial codec that sends only the scene's mean spectrum.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import spectral.io.envi as envi
from cli_helpers import invoke, json_lines
from conftest import scene_path, scenes

from hsicodec.io import open_scene

ROUND_TRIP = [s for s in scenes("eval") + scenes("io") if s["id"] != "enmap_berlin_header"]


def _cube(path: Path, var: str | None = None) -> np.ndarray:
    with open_scene(path, var) as reader:
        h, w, _ = reader.shape
        return reader.read(0, 0, h, w)


def _psnr(reference: np.ndarray, other: np.ndarray) -> float:
    reference, other = reference.astype(np.float64), other.astype(np.float64)
    peak = reference.max() - reference.min()
    mse = np.mean((reference - other) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


def _mean_spectrum_psnr(cube: np.ndarray) -> float:
    return _psnr(cube, np.broadcast_to(cube.reshape(-1, cube.shape[-1]).mean(axis=0), cube.shape))


@pytest.mark.parametrize("entry", ROUND_TRIP, ids=[s["id"] for s in ROUND_TRIP])
def test_scene_round_trips_with_shape_dtype_metadata_and_quality(entry: dict, tmp_path: Path) -> None:
    source = scene_path(entry)
    packed = tmp_path / "scene.hsic"
    var = entry.get("var", "")
    # eval scenes at the default rate; the io scenes (some of 25 x 10 pixels and 425 bands, whose side
    # information alone is tens of bpp) at 2 bits per sample
    with open_scene(source, var if var.isidentifier() else None) as reader:
        bands = reader.shape[2]
    rate = [] if entry["split"] == "eval" else ["-r", str(2 * bands)]
    result = invoke("compress", source, "-o", packed, "--json", "-q", *rate,
                    *(["--var", var] if var.isidentifier() else []))
    assert result.exit_code == 0, result.stderr
    record = json_lines(result.stdout)[0]
    assert record["bytes"] == packed.stat().st_size
    with open_scene(source, var if var.isidentifier() else None) as reader:
        h, w, b = reader.shape
        src_meta, src_dtype = reader.meta, reader.dtype
    assert record["bpp"] == pytest.approx(8 * packed.stat().st_size / (h * w))
    assert record["bpppb"] == pytest.approx(record["bpp"] / b)

    envi_out, tif_out = tmp_path / "rec.hdr", tmp_path / "rec.tif"
    assert invoke("decompress", packed, "-o", envi_out, "-q").exit_code == 0
    assert invoke("decompress", packed, "-o", tif_out, "-f", "gtiff", "-q").exit_code == 0

    original = _cube(source, var if var.isidentifier() else None)
    spy = envi.open(str(envi_out))
    spy_cube = np.asarray(spy.load(dtype=spy.dtype, scale=False)).reshape(h, w, b)
    with rasterio.open(tif_out) as ds:
        tif_cube = ds.read().transpose(1, 2, 0)
        assert ds.dtypes[0] == src_dtype.name
        if src_meta.crs_wkt:
            assert ds.crs is not None
        if src_meta.transform:
            assert list(ds.transform.to_gdal()) == pytest.approx(src_meta.transform)
        if src_meta.nodata is not None:
            assert ds.nodata == pytest.approx(src_meta.nodata, nan_ok=True)
    assert spy_cube.dtype == src_dtype and spy_cube.shape == original.shape
    np.testing.assert_array_equal(spy_cube, tif_cube)

    if src_meta.interleave:
        assert spy.metadata["interleave"].lower() == src_meta.interleave
    if src_meta.wavelengths:
        assert [float(v) for v in spy.metadata["wavelength"]] == pytest.approx(src_meta.wavelengths)
    if src_meta.fwhm:
        assert [float(v) for v in spy.metadata["fwhm"]] == pytest.approx(src_meta.fwhm)
    if src_meta.bbl:
        assert [float(v) for v in spy.metadata["bbl"]] == pytest.approx(src_meta.bbl)
    if src_meta.band_names:
        assert spy.metadata["band names"] == src_meta.band_names
    if "map info" in src_meta.envi:
        assert spy.metadata["map info"] == envi.open(str(source)).metadata["map info"]

    valid = np.isfinite(original.astype(np.float64))
    if src_meta.nodata is not None:
        assert np.array_equal(spy_cube == src_meta.nodata, original == src_meta.nodata)
        valid &= original != src_meta.nodata
    if valid.all() and original.shape[0] * original.shape[1] > 1:
        # eval scenes are what the model is for; the tiny io scenes (10x10 px...) only have to beat their mean
        margin = 1.0 if entry["split"] == "eval" else 0.0
        assert _psnr(original, spy_cube) > _mean_spectrum_psnr(original) + margin


def test_mat_v73_scene_and_named_variable_compress(tmp_path: Path) -> None:
    entry = next(s for s in scenes("train") if s["id"] == "pavia_crop")
    result = invoke("compress", scene_path(entry), "-o", tmp_path / "p.hsic", "--json", "-q", "--verify")
    assert result.exit_code == 0, result.stderr
    record = json_lines(result.stdout)[0]
    assert record["psnr"] > 20
    hyperion = next(s for s in scenes("eval") if s["id"] == "hyperion_paris")
    result = invoke("compress", scene_path(hyperion), "--var", "HSim", "-o", tmp_path / "h.hsic", "-q")
    assert result.exit_code == 0, result.stderr
