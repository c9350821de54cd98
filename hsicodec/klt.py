"""Per-scene spectral front-end: value normalisation and the KLT (PCA) over bands.

A scene x (H, W, B) is scaled to x_n = (x - lo) / (hi - lo), then projected on
K spectral components and rebuilt as x_n = u @ basis * sqrt(B) + mean.
Dividing by sqrt(B) makes K * mean(u error^2) equal the per-band MSE of x_n,
so the network's distortion is the scene's PSNR distortion, whatever B is.

The stored basis is quantised, so its rows are only nearly orthonormal: u is
the least-squares fit of x_n - mean on the rows, not the plain projection
(x_n - mean) @ basis.T, which would leak the strong components' energy into
the coarsely stored weak rows and cap the scene's PSNR.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RCOND = 1e-3  # relative singular-value floor of the least-squares fit on the stored rows


@dataclass
class SpectralStats:
    """Streaming moments of a scene whose nodata samples count as their band's mean.

    Masked samples are left out of the sums; the extra products ``cross`` and
    ``masked_pairs`` let `covariance` put each band's valid mean in their place
    exactly, in one pass, whatever the pattern of nodata (a band that is nodata
    everywhere, a few bad pixels...). The first batch's means are the numeric shift.
    """

    bands: int
    pixels: int = 0
    shift: np.ndarray | None = None
    valid_count: np.ndarray | None = None
    total: np.ndarray | None = None
    outer: np.ndarray | None = None
    cross: np.ndarray | None = None
    masked_pairs: np.ndarray | None = None
    lo: float = np.inf
    hi: float = -np.inf

    def update(self, spectra: np.ndarray, valid: np.ndarray | None = None) -> None:
        """Add spectra (n, B); `valid` (n, B) marks the samples that are not nodata (None: all are)."""
        if spectra.shape[0] == 0:
            return
        spectra = spectra.astype(np.float64, copy=False)
        if self.shift is None:
            self._start(spectra, valid)
        self.pixels += spectra.shape[0]
        if valid is None:
            centred = spectra - self.shift
            self.valid_count += spectra.shape[0]
            lo, hi = float(spectra.min()), float(spectra.max())
        else:
            centred = np.where(valid, spectra - self.shift, 0.0)
            self.valid_count += valid.sum(axis=0)
            masked = (~valid).astype(np.float64)
            self.cross += centred.T @ masked
            self.masked_pairs += masked.T @ masked
            lo = float(np.min(spectra, where=valid, initial=np.inf))
            hi = float(np.max(spectra, where=valid, initial=-np.inf))
        self.total += centred.sum(axis=0)
        self.outer += centred.T @ centred
        self.lo, self.hi = min(self.lo, lo), max(self.hi, hi)

    def _start(self, spectra: np.ndarray, valid: np.ndarray | None) -> None:
        counts = spectra.shape[0] if valid is None else valid.sum(axis=0)
        sums = spectra.sum(axis=0) if valid is None else np.where(valid, spectra, 0.0).sum(axis=0)
        self.shift = np.divide(sums, counts, out=np.zeros(self.bands), where=np.asarray(counts) > 0)
        self.valid_count = np.zeros(self.bands, dtype=np.int64)
        self.total = np.zeros(self.bands)
        self.outer, self.cross, self.masked_pairs = (np.zeros((self.bands, self.bands)) for _ in range(3))

    @property
    def valid_samples(self) -> int:
        return 0 if self.valid_count is None else int(self.valid_count.sum())

    def mean(self) -> np.ndarray:
        """Per-band mean of the valid samples (the shift where a band has none)."""
        return self.shift + self.total / np.maximum(self.valid_count, 1)

    def covariance(self) -> np.ndarray:
        """Band covariance with every nodata sample replaced by its band's mean."""
        gap = self.mean() - self.shift
        second = (self.outer + self.cross * gap[None, :] + self.cross.T * gap[:, None]
                  + self.masked_pairs * np.outer(gap, gap))
        first = (self.total + (self.pixels - self.valid_count) * gap) / self.pixels
        return second / self.pixels - np.outer(first, first)


def value_range(stats: SpectralStats) -> tuple[float, float]:
    """(lo, hi) used for normalisation; a constant scene gets a unit range."""
    if stats.hi > stats.lo:
        return stats.lo, stats.hi
    return stats.lo, stats.lo + 1.0


def fit_klt(stats: SpectralStats, components: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean (B,), basis (K, B) and component variances (K,) of the normalised scene.

    Leading eigenvectors come first.

    Each basis row's sign makes its largest-magnitude entry positive; rows beyond
    the scene's band count are zero.
    """
    lo, hi = value_range(stats)
    scale = hi - lo
    mean = (stats.mean() - lo) / scale
    eigvals, eigvecs = np.linalg.eigh(stats.covariance() / scale**2)
    order = np.argsort(eigvals)[::-1][:components]
    variances = np.zeros(components)
    variances[: len(order)] = np.maximum(eigvals[order], 0.0)
    basis = np.zeros((components, stats.bands))
    vectors = eigvecs[:, order].T
    signs = np.sign(vectors[np.arange(len(order)), np.abs(vectors).argmax(axis=1)])
    basis[: len(order)] = vectors * signs[:, None]
    return mean.astype(np.float32), basis.astype(np.float32), variances


def to_components(x: np.ndarray, lo: float, hi: float, mean: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Scene block (h, w, B) -> network input (K, h, w) float32: the least-squares components.

    Directions the rows span only weakly (singular values below RCOND of the
    largest, e.g. two rows stored alike) are left out rather than amplified.
    The block is centred in source units before the float32 product, so the
    product carries the planes' own values, not the scene's offset; a source
    type that float32 does not hold exactly is centred in float64.
    """
    bands = x.shape[-1]
    projection = np.linalg.pinv(basis.astype(np.float64) * np.sqrt(bands), rcond=RCOND) / (hi - lo)
    centre = lo + mean.astype(np.float64) * (hi - lo)
    work = _working_type(x.dtype)
    centred = (x.reshape(-1, bands).astype(work) - centre.astype(work)).astype(np.float32, copy=False)
    u = centred @ projection.astype(np.float32)
    return np.ascontiguousarray(u.T).reshape(-1, *x.shape[:2])


def from_components(u: np.ndarray, lo: float, hi: float, mean: np.ndarray, basis: np.ndarray,
                    dtype: np.dtype = np.dtype(np.float64)) -> np.ndarray:
    """Network output (K, h, w) -> scene block (h, w, B) in source units, for samples of type `dtype`: in
    float32 when that type fits in it exactly, else in float64."""
    bands = basis.shape[1]
    work = _working_type(dtype)
    rows = basis.astype(np.float64) * (np.sqrt(bands) * (hi - lo))
    offset = mean.astype(np.float64) * (hi - lo) + lo
    spectra = u.reshape(u.shape[0], u.shape[1] * u.shape[2]).T.astype(work) @ rows.astype(work) + offset.astype(work)
    return spectra.reshape(*u.shape[1:], bands)


def _working_type(dtype: np.dtype) -> type:
    """float32 for samples it holds exactly (integers of up to 16 bits, float16, float32), else float64."""
    return np.float32 if np.can_cast(dtype, np.float32) else np.float64
