"""hsicodec.metrics: PSNR, SSIM, SAM, MAE of a reconstruction, whole or tile by tile."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from conftest import DATA
from hsicodec.metrics import QualityAccumulator, quality


def smooth_cube(h: int = 32, w: int = 32, b: int = 6, seed: int = 0) -> np.ndarray:
    """A positive cube with spatial structure and noise, roughly in [0, 1000]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    bands = [500 + 300 * np.sin(xx / (3 + k)) * np.cos(yy / (4 + k)) for k in range(b)]
    return np.stack(bands, axis=2) + rng.normal(0, 30, (h, w, b))


def reference_ssim_map(x: np.ndarray, y: np.ndarray, data_range: float) -> np.ndarray:
    """Wang et al. (2004) SSIM map of one band, written out directly (symmetric borders)."""
    radius = 5
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / 1.5) ** 2)
    window = np.outer(k, k) / k.sum() ** 2

    def local(z: np.ndarray) -> np.ndarray:
        patches = sliding_window_view(np.pad(z, radius, mode="symmetric"), window.shape)
        return np.einsum("ijkl,kl->ij", patches, window)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    ux, uy = local(x), local(y)
    vx, vy, vxy = local(x * x) - ux * ux, local(y * y) - uy * uy, local(x * y) - ux * uy
    return (2 * ux * uy + c1) * (2 * vxy + c2) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))


def quarters(cube: np.ndarray) -> list[tuple[slice, slice]]:
    """The four quadrants of a cube, as (rows, cols) slices."""
    h, w = cube.shape[0] // 2, cube.shape[1] // 2
    return [(slice(r, r + h), slice(c, c + w)) for r in (0, h) for c in (0, w)]


def test_identical_cubes_are_perfect():
    ref = smooth_cube()
    q = quality(ref, ref.copy())
    assert q["psnr"] == math.inf
    assert q["ssim"] == pytest.approx(1.0, abs=1e-12)
    assert q["sam"] == 0.0
    assert q["mae"] == 0.0 and q["mse"] == 0.0
    assert q["peak"] == pytest.approx(ref.max() - ref.min())


def test_known_mse_gives_known_psnr():
    ref = smooth_cube()
    ref = 100 * (ref - ref.min()) / (ref.max() - ref.min())  # peak exactly 100
    signs = np.where(np.indices(ref.shape).sum(axis=0) % 2 == 0, 1.0, -1.0)
    q = quality(ref, ref + 0.5 * signs)
    assert q["peak"] == pytest.approx(100.0, rel=1e-12)
    assert q["mse"] == pytest.approx(0.25, rel=1e-12)
    assert q["mae"] == pytest.approx(0.5, rel=1e-12)
    assert q["psnr"] == pytest.approx(10 * math.log10(100.0**2 / 0.25), rel=1e-12)


def test_constant_reference_uses_peak_one():
    ref = np.full((8, 8, 3), 7.0)
    q = quality(ref, ref + 0.1)
    assert q["peak"] == 0.0
    assert q["psnr"] == pytest.approx(10 * math.log10(1 / 0.01), rel=1e-9)
    expected = np.mean([reference_ssim_map(ref[..., b], ref[..., b] + 0.1, 1.0).mean() for b in range(3)])
    assert q["ssim"] == pytest.approx(expected, abs=1e-5)


def test_integer_and_float_tiles_agree():
    ref = np.round(smooth_cube()).astype(np.uint16)
    rec = (ref + np.arange(ref.size).reshape(ref.shape) % 5).astype(np.uint16)
    as_int, as_float = quality(ref, rec), quality(ref.astype(float), rec.astype(np.float32))
    assert as_int == pytest.approx(as_float, rel=1e-12)


def test_tiled_accumulation_equals_one_shot():
    rng = np.random.default_rng(1)
    ref = smooth_cube(b=5)
    rec = ref + rng.normal(0, 20, ref.shape)
    whole = quality(ref, rec)
    acc = QualityAccumulator(5)
    for rows, cols in quarters(ref):
        acc.update(ref[rows, cols], rec[rows, cols])
    tiled = acc.result()
    for key in ("psnr", "sam", "mae", "mse", "peak"):
        assert tiled[key] == pytest.approx(whole[key], rel=1e-12), key
    assert tiled["ssim"] == pytest.approx(whole["ssim"], abs=0.02)


@pytest.mark.parametrize("first_scale", [0.0, 0.05, 0.5])
def test_tiled_ssim_uses_the_final_peak_even_when_it_grows_late(first_scale):
    """The first tile spans a small (or no) part of the final range: its SSIM is re-evaluated at the final peak."""
    rng = np.random.default_rng(2)
    ref = smooth_cube(b=3)
    rows, cols = quarters(ref)[0]
    ref[rows, cols] = 100 + first_scale * (ref[rows, cols] - ref[rows, cols].mean())
    rec = ref + rng.normal(0, 25, ref.shape)
    acc = QualityAccumulator(3)
    for rows, cols in quarters(ref):
        acc.update(ref[rows, cols], rec[rows, cols])
    peak = ref.max() - ref.min()
    expected = np.mean([
        np.mean([reference_ssim_map(ref[rows, cols, b], rec[rows, cols, b], peak) for rows, cols in quarters(ref)])
        for b in range(3)
    ])
    assert acc.result()["ssim"] == pytest.approx(expected, abs=5e-4)  # the running peak would be off by 0.01-0.1


def test_ssim_matches_whole_image_reference_formula():
    rng = np.random.default_rng(3)
    ref = smooth_cube(48, 40, 1)
    rec = ref + rng.normal(0, 60, ref.shape)
    expected = reference_ssim_map(ref[..., 0], rec[..., 0], ref.max() - ref.min()).mean()
    assert quality(ref, rec)["ssim"] == pytest.approx(expected, abs=1e-5)


def test_ssim_matches_scikit_image():
    from skimage import metrics

    rng = np.random.default_rng(4)
    ref = smooth_cube(128, 128, 1)
    rec = ref + rng.normal(0, 60, ref.shape)
    peak = ref.max() - ref.min()
    cropped, full = metrics.structural_similarity(ref[..., 0], rec[..., 0], gaussian_weights=True, sigma=1.5,
                                                  use_sample_covariance=False, data_range=peak, full=True)
    ssim = quality(ref, rec)["ssim"]
    assert ssim == pytest.approx(full.mean(), abs=1e-5)  # skimage's map, averaged over all pixels
    assert ssim == pytest.approx(cropped, abs=1e-3)  # skimage's score leaves out a 5-pixel border


def test_spectral_scaling_has_zero_sam():
    ref = smooth_cube()
    q = quality(ref, 2 * ref)
    assert q["sam"] == 0.0
    assert q["mae"] == pytest.approx(np.abs(ref).mean())


def test_orthogonal_spectra_have_sam_90_degrees():
    ref = np.zeros((4, 4, 3))
    rec = np.zeros((4, 4, 3))
    ref[..., 0] = 5.0
    rec[..., 1] = 3.0
    ref[0, 0, 0] = 9.0  # a non-constant reference
    assert quality(ref, rec)["sam"] == pytest.approx(90.0, abs=1e-12)


def test_zero_spectra_count_as_0_or_90_degrees():
    ref = np.ones((1, 4, 2))
    rec = np.ones((1, 4, 2))
    ref[0, 0] = rec[0, 0] = 0.0  # both zero: 0 degrees
    rec[0, 1] = 0.0  # only the reconstruction zero: 90 degrees
    ref[0, 2] = 0.0  # only the reference zero: 90 degrees
    assert quality(ref, rec)["sam"] == pytest.approx(180.0 / 4, abs=1e-12)


@pytest.mark.parametrize("nodata", [-9999.0, math.nan])
def test_mask_value_excludes_nodata_samples(nodata):
    rng = np.random.default_rng(5)
    ref = smooth_cube(b=4)
    holes = rng.random(ref.shape) < 0.1
    holes[:8, :8, :] = True  # whole pixels too
    ref[holes] = nodata
    garbage = np.where(holes, 1e6, ref)
    q = quality(ref, garbage, mask_value=nodata)
    assert (q["psnr"], q["sam"], q["mae"], q["mse"]) == (math.inf, 0.0, 0.0, 0.0)
    assert q["ssim"] == pytest.approx(1.0, abs=1e-12)
    assert q["peak"] == pytest.approx(ref[~holes].max() - ref[~holes].min())

    noise = rng.normal(0, 10, ref.shape)
    q = quality(ref, np.where(holes, 1e6, ref + noise), mask_value=nodata)
    assert q["mse"] == pytest.approx(np.mean(noise[~holes] ** 2), rel=1e-12)
    assert q["mae"] == pytest.approx(np.mean(np.abs(noise[~holes])), rel=1e-12)
    assert 0.0 < q["ssim"] < 1.0


def test_masked_sam_uses_the_valid_bands_of_each_pixel():
    ref = np.array([[[1.0, 0.0, -1.0], [-1.0, -1.0, -1.0]]])
    rec = np.array([[[1.0, 7.0, 0.0], [4.0, 4.0, 4.0]]])
    # pixel 0: valid bands (1, 0) vs (1, 7) -> atan(7); pixel 1: no valid sample
    assert quality(ref, rec, mask_value=-1.0)["sam"] == pytest.approx(math.degrees(math.atan(7.0)))


def test_bad_input_is_rejected():
    acc = QualityAccumulator(3)
    with pytest.raises(ValueError, match="no valid samples"):
        acc.result()
    with pytest.raises(ValueError, match="tiles must"):
        acc.update(np.zeros((4, 4, 3)), np.zeros((4, 4, 2)))
    with pytest.raises(ValueError, match="tiles must"):
        acc.update(np.zeros((4, 4, 2)), np.zeros((4, 4, 2)))
    with pytest.raises(ValueError, match="finite"):
        acc.update(np.full((4, 4, 3), np.nan), np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="cubes must"):
        quality(np.zeros((4, 4)), np.zeros((4, 4)))
    acc.update(np.full((4, 4, 3), -1.0), np.zeros((4, 4, 3)))
    masked = QualityAccumulator(3, mask_value=-1.0)
    masked.update(np.full((4, 4, 3), -1.0), np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="no valid samples"):
        masked.result()


def test_real_scene_psnr_matches_added_noise():
    import rasterio

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(DATA / "cave" / "feathers.tif") as src:
            ref = src.read().transpose(1, 2, 0)
    peak = float(ref.max()) - float(ref.min())
    sigma = 0.01 * peak
    rec = ref + np.random.default_rng(6).normal(0, sigma, ref.shape)
    q = quality(ref, rec)
    assert q["peak"] == peak
    assert q["psnr"] == pytest.approx(10 * math.log10(peak**2 / sigma**2), abs=0.1)
    assert 0.0 < q["ssim"] < 1.0 and 0.0 < q["sam"] < 90.0
