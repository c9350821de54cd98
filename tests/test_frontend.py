"""The two spectral front-ends on real scenes: planes <-> spectra."""
from __future__ import annotations

import numpy as np

from conftest import DATA, scene_path, scenes
from hsicodec.codec import nodata_mask, scene_statistics
from hsicodec.container import tile_rects
from hsicodec.frontend import FrontEnd, fit_front_end
from hsicodec.io import open_scene

PAVIA = scene_path(next(s for s in scenes("eval") if s["id"] == "paviaU_sub50"))
ENMAP = scene_path(next(s for s in scenes("eval") if s["id"] == "enmap_potsdam_192_64"))


def _front(path, kind: str, components: int = 16) -> tuple[FrontEnd, np.ndarray, np.ndarray | None]:
    with open_scene(path) as reader:
        front = fit_front_end(scene_statistics(reader, tile_rects(*reader.shape[:2], 256)), kind, components)
        cube = reader.read(0, 0, *reader.shape[:2])
        return front, cube, nodata_mask(cube, reader.meta.nodata)


def test_bands_front_end_is_lossless_up_to_float32() -> None:
    front, cube, mask = _front(PAVIA, "bands")
    planes = front.planes(cube, mask)
    assert planes.shape == (cube.shape[2], *cube.shape[:2]) and front.basis is None
    restored = front.spectra(planes)
    assert np.abs(restored - cube).max() <= 1e-5 * (front.norm.hi - front.norm.lo)


def test_bands_planes_are_centred_and_scaled_like_klt_planes() -> None:
    """C * mean(u^2 error) is the per-band MSE of the normalised scene for both front-ends."""
    for kind in ("bands", "klt"):
        front, cube, mask = _front(PAVIA, kind)
        planes = front.planes(cube, mask)
        noisy = planes + np.random.default_rng(1).normal(0, 1e-3, planes.shape).astype(np.float32)
        band_mse = planes.shape[0] * np.mean((noisy - planes) ** 2)
        scale = front.norm.hi - front.norm.lo
        scene_mse = np.mean(((front.spectra(noisy) - front.spectra(planes)) / scale) ** 2)
        assert abs(band_mse - scene_mse) / scene_mse < 0.05, kind  # klt: the stored basis is ~orthonormal


def test_nodata_samples_take_their_band_mean_in_both_front_ends() -> None:
    for kind in ("bands", "klt"):
        front, cube, mask = _front(ENMAP, kind)
        assert mask is not None and mask.any()
        planes = front.planes(cube, mask)
        assert np.isfinite(planes).all()
        filled = front.spectra(planes)[mask]
        expected = (front.fill * (front.norm.hi - front.norm.lo) + front.norm.lo)[np.nonzero(mask)[2]]
        tolerance = 1e-3 if kind == "bands" else 0.05  # klt keeps 16 of 224 components
        assert np.abs(filled - expected).max() <= tolerance * (front.norm.hi - front.norm.lo), kind


def test_cave_scene_through_bands_has_31_planes() -> None:
    front, cube, mask = _front(DATA / "cave" / "feathers.tif", "bands")
    assert front.planes(cube, mask).shape == (31, 256, 256)


def test_klt_front_end_alone_keeps_the_scene_above_45_db() -> None:
    """The stored (quantised) basis must not cap quality: its weak rows are coarse, so
    the planes are the least-squares fit on the rows; the plain projection leaked the
    strong components into those rows and capped sponges at 22.6 dB."""
    for path in (DATA / "cave" / "sponges.tif", DATA / "cave" / "feathers.tif", PAVIA):
        front, cube, mask = _front(path, "klt")
        restored = front.spectra(front.planes(cube, mask))
        mse = np.mean(((restored - cube) / (front.norm.hi - front.norm.lo)) ** 2)
        assert 10 * np.log10(1 / mse) >= 45, path.name
