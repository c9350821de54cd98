"""Quality of a reconstructed hyperspectral cube against its reference, tile by tile.

r is the reference and x the reconstruction, both (H, W, B). A sample is valid
unless the reference equals `mask_value` there (is NaN, when `mask_value` is
NaN); every metric runs over valid samples only, in float64.

- peak: max(r) - min(r) over the whole cube, all bands. PSNR and SSIM use
  peak 1 when the reference is constant (peak 0); ``peak`` still reports 0.
- mse, mae: mean (x - r)^2 and mean |x - r|, in the reference's units.
- psnr: 10 log10(peak^2 / mse) dB; inf when mse is 0.
- ssim: per band, the Gaussian-window SSIM map of Wang et al. (2004) (sigma
  1.5 truncated at 3.5 sigma, K1 0.01, K2 0.03, population covariances, data
  range = peak) averaged over the band's valid pixels, then over the bands.
  Local moments use valid samples only (normalised convolution). Each tile is
  filtered on its own with scipy.ndimage's 'reflect' borders and tiles combine
  as a pixel-weighted mean, so tiling changes SSIM near tile borders only.
  Unlike scikit-image, the map is averaged over all pixels, borders included.
- sam: mean, over the pixels with a valid sample, of the angle in degrees
  between the spectra r and x restricted to their valid bands,
  arccos(<r, x> / (|r| |x|)): 0 when both are zero, 90 when only one is. It is
  evaluated as 2 atan2(|u - v|, |u + v|) on the unit spectra u, v: the same
  angle, without arccos's loss of precision near 0 and 180 degrees.

The peak, hence SSIM's data range L, is known only after the last tile, and a
tile's SSIM depends on it. So each tile's SSIM sum, a smooth function of log L,
is tabulated at L = 2^(j/2) from the running peak (a lower bound on L) up to
where it follows its asymptote N - G / L^2, and the tables are summed;
`result` interpolates at the final peak with a cubic spline (below 1e-3 for
any pixel, typically ~1e-5 on the mean) or follows the asymptote beyond the
last node.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from scipy.interpolate import CubicSpline

SIGMA = 1.5
"""Standard deviation of SSIM's Gaussian window, in pixels."""

TRUNCATE = 3.5
"""SSIM's window is cut at this many standard deviations (radius 5 pixels)."""

K1 = 0.01
K2 = 0.03
"""SSIM's stabilising constants: C1 = (K1 L)^2, C2 = (K2 L)^2."""

SATURATION = 16.0
"""A tile's SSIM table ends this factor above the largest L its SSIM can still depend on."""

MAX_NODES = 64
"""At most this many nodes (32 octaves of L) below a table's last node."""


class QualityAccumulator:
    """Streams (reference, reconstruction) tiles of one scene; each tile is (h, w, B), any numeric dtype."""

    def __init__(self, bands: int, mask_value: float | None = None) -> None:
        if bands < 1:
            raise ValueError(f"bands must be positive, got {bands}")
        self.bands = bands
        self.mask_value = mask_value
        self._samples = 0
        self._sse = 0.0
        self._sae = 0.0
        self._min = math.inf
        self._max = -math.inf
        self._sam_pixels = 0
        self._sam_radians = 0.0
        self._ssim_pixels = np.zeros(bands)
        self._ssim_tail = np.zeros(bands)
        self._ssim_j0 = 0
        self._ssim_table: np.ndarray | None = None

    def update(self, reference: np.ndarray, reconstruction: np.ndarray) -> None:
        """Add one tile; `reference` and `reconstruction` are both (h, w, bands)."""
        ref = np.asarray(reference, dtype=np.float64)
        rec = np.asarray(reconstruction, dtype=np.float64)
        if ref.ndim != 3 or ref.shape != rec.shape or ref.shape[2] != self.bands:
            raise ValueError(f"tiles must both be (h, w, {self.bands}); got {ref.shape} and {rec.shape}")
        valid = self._valid(ref)
        if not valid.any():
            return
        ref = np.where(valid, ref, 0.0)
        rec = np.where(valid, rec, 0.0)
        if not (np.isfinite(ref).all() and np.isfinite(rec).all()):
            raise ValueError("reference and reconstruction must be finite at valid samples (set mask_value?)")
        err = rec - ref
        self._samples += int(valid.sum())
        self._sse += float(np.square(err).sum())
        self._sae += float(np.abs(err).sum())
        self._min = min(self._min, float(ref.min(where=valid, initial=math.inf)))
        self._max = max(self._max, float(ref.max(where=valid, initial=-math.inf)))
        del err
        self._update_sam(ref, rec, valid)
        self._update_ssim(ref, rec, valid)

    def result(self) -> dict[str, float]:
        """{'psnr', 'ssim', 'sam', 'mae', 'mse', 'peak'} of the tiles seen so far (see the module docstring)."""
        if not self._samples:
            raise ValueError("no valid samples")
        peak = self._max - self._min
        data_range = peak if peak > 0 else 1.0
        mse = self._sse / self._samples
        return {
            "psnr": math.inf if mse == 0 else 10 * math.log10(data_range**2 / mse),
            "ssim": self._ssim(data_range),
            "sam": math.degrees(self._sam_radians / self._sam_pixels),
            "mae": self._sae / self._samples,
            "mse": mse,
            "peak": peak,
        }

    def _valid(self, ref: np.ndarray) -> np.ndarray:
        """Boolean (h, w, B): samples that are not nodata."""
        if self.mask_value is None:
            return np.ones(ref.shape, dtype=bool)
        if math.isnan(self.mask_value):
            return ~np.isnan(ref)
        return ref != self.mask_value

    def _update_sam(self, ref: np.ndarray, rec: np.ndarray, valid: np.ndarray) -> None:
        """Add the tile's spectral angles (invalid samples are zero in `ref` and `rec`)."""
        u, v = _unit(ref), _unit(rec)
        angle = 2 * np.arctan2(np.linalg.norm(u - v, axis=2), np.linalg.norm(u + v, axis=2))
        pixels = valid.any(axis=2)
        self._sam_pixels += int(pixels.sum())
        self._sam_radians += float(angle[pixels].sum())

    def _update_ssim(self, ref: np.ndarray, rec: np.ndarray, valid: np.ndarray) -> None:
        """Add the tile's SSIM sums, tabulated over data ranges L = 2^(j/2), to the scene's table."""
        # With P = (ux - uy)^2, C = ux^2 + uy^2, Q = vx + vy - 2 vxy, D = vx + vy and t = L^2,
        # a pixel's SSIM is (1 - P / (C + K1^2 t)) (1 - Q / (D + K2^2 t)): its dependence on t
        # ends below t ~ C / K1^2 <= 2 max|value|^2 / K1^2.
        largest = max(float(np.abs(ref).max()), float(np.abs(rec).max()))
        top = math.ceil(2 * math.log2(SATURATION * math.sqrt(2) * largest / K1)) if largest > 0 else 0
        peak = self._max - self._min
        floor = math.floor(2 * math.log2(peak)) if peak > 0 else -math.inf
        lo = max(top - MAX_NODES, floor)
        top = max(top, lo)
        t = 2.0 ** np.arange(lo, top + 1)
        table = np.empty((self.bands, t.size))
        pixels = valid.sum(axis=(0, 1)).astype(np.float64)
        for b in range(self.bands):
            p, c, q, d = _ssim_terms(ref[..., b], rec[..., b], valid[..., b])
            for i, tj in enumerate(t):
                table[b, i] = ((1 - p / (c + K1**2 * tj)) * (1 - q / (d + K2**2 * tj))).sum()
        tail = (pixels - table[:, -1]) * t[-1]
        if self._ssim_table is None:
            self._ssim_j0, self._ssim_table = lo, np.zeros((self.bands, 1))
        j0 = max(floor, min(self._ssim_j0, lo))
        j1 = max(self._ssim_j0 + self._ssim_table.shape[1] - 1, top)
        self._ssim_table = (_reframe(self._ssim_table, self._ssim_j0, self._ssim_pixels, self._ssim_tail, j0, j1)
                            + _reframe(table, lo, pixels, tail, j0, j1))
        self._ssim_j0 = j0
        self._ssim_pixels += pixels
        self._ssim_tail += tail

    def _ssim(self, data_range: float) -> float:
        """Mean SSIM at data range `data_range`, from the scene's table."""
        table, j0 = self._ssim_table, self._ssim_j0
        j1 = j0 + table.shape[1] - 1
        u = 2 * math.log2(data_range)
        if u >= j1:
            sums = self._ssim_pixels - self._ssim_tail / data_range**2
        elif u <= j0:
            sums = table[:, 0]
        else:
            sums = CubicSpline(np.arange(j0, j1 + 1), table, axis=1)(u)
        seen = self._ssim_pixels > 0
        return float(np.mean(sums[seen] / self._ssim_pixels[seen]))


def quality(reference: np.ndarray, reconstruction: np.ndarray, mask_value: float | None = None) -> dict[str, float]:
    """All metrics of two whole (H, W, B) cubes at once; see `QualityAccumulator`."""
    reference = np.asarray(reference)
    if reference.ndim != 3:
        raise ValueError(f"cubes must be (H, W, B); got shape {reference.shape}")
    accumulator = QualityAccumulator(reference.shape[2], mask_value)
    accumulator.update(reference, reconstruction)
    return accumulator.result()


def _unit(spectra: np.ndarray) -> np.ndarray:
    """(h, w, B) spectra scaled to unit norm; zero spectra stay zero."""
    norm = np.sqrt(np.square(spectra).sum(axis=2, keepdims=True))
    return np.divide(spectra, norm, out=np.zeros_like(spectra), where=norm > 0)


def _ssim_terms(x: np.ndarray, y: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, ...]:
    """P, C, Q, D of `QualityAccumulator._update_ssim` at the valid pixels of one (h, w) band.

    `x` and `y` are zero at invalid pixels, so filtering them sums over valid samples only.
    """
    keep = None if valid.all() else valid

    def local(z: np.ndarray) -> np.ndarray:
        blurred = ndimage.gaussian_filter(z, SIGMA, mode="reflect", truncate=TRUNCATE)
        return blurred.ravel() if keep is None else blurred[keep]

    weight = 1.0 if keep is None else local(valid.astype(np.float64))
    ux, uy = local(x) / weight, local(y) / weight
    vx = np.maximum(local(x * x) / weight - ux * ux, 0.0)
    vy = np.maximum(local(y * y) / weight - uy * uy, 0.0)
    vxy = local(x * y) / weight - ux * uy
    return np.square(ux - uy), ux * ux + uy * uy, vx + vy - 2 * vxy, vx + vy


def _reframe(table: np.ndarray, j0: int, pixels: np.ndarray, tail: np.ndarray, new_j0: int,
             new_j1: int) -> np.ndarray:
    """`table` (bands, n) over nodes j0.. re-expressed over nodes new_j0..new_j1.

    Nodes below j0 repeat the first column (only reached when a table was cut at
    MAX_NODES), nodes past the last follow the asymptote pixels - tail / 2^j.
    """
    j = np.arange(new_j0, new_j1 + 1)
    out = table[:, np.clip(j - j0, 0, table.shape[1] - 1)]
    past = j > j0 + table.shape[1] - 1
    out[:, past] = pixels[:, None] - tail[:, None] / 2.0 ** j[past]
    return out
