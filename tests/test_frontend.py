"""The KLT front-end on real scenes: planes <-> spectra."""
from __future__ import annotations

import numpy as np

from conftest import DATA, scene_path, scenes
from hsicodec.codec import nodata_mask, scene_statistics
from hsicodec.container import tile_rects
from hsicodec.frontend import FrontEnd, fit_front_end
from hsicodec.io import open_scene

PAVIA = scene_path(next(s for s in scenes("eval") if s["id"] == "paviaU_sub50"))
ENMAP = scene_path(next(s for s in scenes("eval") if s["id"] == "enmap_potsdam_192_64"))


def _front(path) -> tuple[FrontEnd, np.ndarray, np.ndarray | None]:
    with open_scene(path) as reader:
        front = fit_front_end(scene_statistics(reader, tile_rects(*reader.shape[:2], 256))[0])
        cube = reader.read(0, 0, *reader.shape[:2])
        return front, cube, nodata_mask(cube, reader.meta.nodata)


def test_the_planes_errors_add_up_to_the_scenes_per_band_error() -> None:
    """sum over planes of mean(u error^2) is the per-band MSE of the normalised scene: one step for every
    plane is the equal-slope split of bits."""
    front, cube, mask = _front(PAVIA)
    front = front.stored(16, 2.0 ** -8)
    planes = front.planes(cube, mask)
    assert planes.shape == (16, *cube.shape[:2])
    noisy = planes + np.random.default_rng(1).normal(0, 1e-3, planes.shape).astype(np.float32)
    plane_mse = planes.shape[0] * np.mean((noisy - planes) ** 2)
    scale = front.norm.hi - front.norm.lo
    scene_mse = np.mean(((front.spectra(noisy) - front.spectra(planes)) / scale) ** 2)
    assert abs(plane_mse - scene_mse) / scene_mse < 0.05  # the stored basis is orthonormal to its precision


def test_nodata_samples_take_their_band_mean() -> None:
    front, cube, mask = _front(ENMAP)
    assert mask is not None and mask.any()
    planes = front.planes(cube, mask)
    assert np.isfinite(planes).all()
    filled = front.spectra(planes)[mask]
    expected = (front.fill * (front.norm.hi - front.norm.lo) + front.norm.lo)[np.nonzero(mask)[2]]
    assert np.abs(filled - expected).max() <= 1e-3 * (front.norm.hi - front.norm.lo)


def test_the_stored_basis_follows_the_step_and_does_not_cap_quality() -> None:
    """At a fine step every row is stored finely enough that the planes alone rebuild the scene far above any
    rate's quality; at a coarse step the rows are stored coarsely (fewer bytes)."""
    for path in (DATA / "cave" / "sponges.tif", DATA / "cave" / "feathers.tif", PAVIA):
        front, cube, mask = _front(path)
        fine = front.stored(cube.shape[2], 2.0 ** -14)
        restored = fine.spectra(fine.planes(cube, mask))
        mse = np.mean(((restored - cube) / (front.norm.hi - front.norm.lo)) ** 2)
        assert 10 * np.log10(1 / mse) >= 70, path.name
        coarse = front.stored(cube.shape[2], 2.0 ** -4)
        assert (coarse.basis.exponents > fine.basis.exponents).all()
