"""The per-scene spectral front-end: streamed statistics, KLT, projection."""
from __future__ import annotations

import numpy as np

from hsicodec.klt import SpectralStats, fit_klt, from_components, to_components, value_range


def _scene(rng: np.random.Generator, n: int = 2000, bands: int = 12) -> np.ndarray:
    return rng.normal(size=(n, 4)) @ rng.normal(size=(4, bands)) * 50 + 1000


def test_streamed_statistics_equal_whole_scene_statistics() -> None:
    rng = np.random.default_rng(0)
    x = _scene(rng)
    stats = SpectralStats(x.shape[1])
    for start in range(0, len(x), 333):
        stats.update(x[start : start + 333])
    np.testing.assert_allclose(stats.mean(), x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.covariance(), np.cov(x.T, bias=True), rtol=1e-9, atol=1e-9)
    assert (stats.lo, stats.hi) == (x.min(), x.max())


def test_nodata_samples_count_as_their_band_mean_even_when_a_band_is_all_nodata() -> None:
    rng = np.random.default_rng(1)
    x = _scene(rng)
    valid = rng.random(x.shape) > 0.1
    valid[:, 5] = False
    x_masked = np.where(valid, x, -9999.0)
    stats = SpectralStats(x.shape[1])
    for start in range(0, len(x), 500):
        stats.update(x_masked[start : start + 500], valid[start : start + 500])
    means = np.array([x[valid[:, b], b].mean() if valid[:, b].any() else 0.0 for b in range(x.shape[1])])
    filled = np.where(valid, x, means)
    np.testing.assert_allclose(stats.covariance(), np.cov(filled.T, bias=True), rtol=1e-9, atol=1e-9)
    assert stats.lo == x[valid].min() and stats.hi == x[valid].max()


def test_klt_round_trip_is_exact_with_all_components_and_orders_energy() -> None:
    rng = np.random.default_rng(2)
    x = _scene(rng, bands=8)
    stats = SpectralStats(8)
    stats.update(x)
    lo, hi = value_range(stats)
    mean, basis, variances = fit_klt(stats, 8)
    np.testing.assert_allclose(basis @ basis.T, np.eye(8), atol=1e-5)
    cube = x.reshape(40, 50, 8)
    u = to_components(cube, lo, hi, mean, basis)
    assert u.shape == (8, 40, 50)
    energy = (u**2).mean(axis=(1, 2))
    assert np.all(np.diff(energy[:4]) < 0)
    np.testing.assert_allclose(energy * 8, variances, rtol=1e-3, atol=1e-9)
    np.testing.assert_allclose(from_components(u, lo, hi, mean, basis), cube, rtol=1e-4)


def test_more_components_than_bands_gives_zero_rows() -> None:
    stats = SpectralStats(3)
    stats.update(np.random.default_rng(3).normal(size=(100, 3)))
    _, basis, variances = fit_klt(stats, 5)
    assert basis.shape == (5, 3) and not basis[3:].any() and not variances[3:].any()


def test_constant_scene_gets_a_unit_range() -> None:
    stats = SpectralStats(4)
    stats.update(np.full((10, 4), 7.0))
    assert value_range(stats) == (7.0, 8.0)
