"""Per-scene spectral front-end: value normalisation and the KLT (PCA) over bands.

A scene x (H, W, B) is scaled to x_n = (x - lo) / (hi - lo), then projected on
K orthonormal spectral components: u = (x_n - mean) @ basis.T / sqrt(B).
Dividing by sqrt(B) makes K * mean(u error^2) equal the per-band MSE of x_n,
so the network's distortion is the scene's PSNR distortion, whatever B is.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SpectralStats:
    """Streaming first and second moments of a scene's valid spectra."""

    bands: int
    count: int = 0
    shift: np.ndarray | None = None
    total: np.ndarray | None = None
    outer: np.ndarray | None = None
    lo: float = np.inf
    hi: float = -np.inf

    def update(self, spectra: np.ndarray) -> None:
        """Add valid spectra, shape (n, B); the first batch's mean is the numeric shift."""
        if spectra.size == 0:
            return
        spectra = spectra.astype(np.float64, copy=False)
        if self.shift is None:
            self.shift = spectra.mean(axis=0)
            self.total = np.zeros(self.bands)
            self.outer = np.zeros((self.bands, self.bands))
        centred = spectra - self.shift
        self.count += spectra.shape[0]
        self.total += centred.sum(axis=0)
        self.outer += centred.T @ centred
        self.lo = min(self.lo, float(spectra.min()))
        self.hi = max(self.hi, float(spectra.max()))

    def mean(self) -> np.ndarray:
        return self.shift + self.total / self.count

    def covariance(self) -> np.ndarray:
        centred_mean = self.total / self.count
        return self.outer / self.count - np.outer(centred_mean, centred_mean)


def value_range(stats: SpectralStats) -> tuple[float, float]:
    """(lo, hi) used for normalisation; a constant scene gets a unit range."""
    if stats.hi > stats.lo:
        return stats.lo, stats.hi
    return stats.lo, stats.lo + 1.0


def fit_klt(stats: SpectralStats, components: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean (B,) and basis (K, B) of the normalised scene, leading eigenvectors first.

    Each basis row's sign makes its largest-magnitude entry positive; rows beyond
    the scene's band count are zero.
    """
    lo, hi = value_range(stats)
    scale = hi - lo
    mean = (stats.mean() - lo) / scale
    eigvals, eigvecs = np.linalg.eigh(stats.covariance() / scale**2)
    order = np.argsort(eigvals)[::-1][:components]
    basis = np.zeros((components, stats.bands))
    vectors = eigvecs[:, order].T
    signs = np.sign(vectors[np.arange(len(order)), np.abs(vectors).argmax(axis=1)])
    basis[: len(order)] = vectors * signs[:, None]
    return mean.astype(np.float32), basis.astype(np.float32)


def to_components(x: np.ndarray, lo: float, hi: float, mean: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Scene block (h, w, B) -> network input (K, h, w) float32."""
    bands = x.shape[-1]
    normalised = (x.astype(np.float64) - lo) / (hi - lo) - mean
    u = normalised @ (basis.astype(np.float64).T / np.sqrt(bands))
    return np.ascontiguousarray(u.transpose(2, 0, 1), dtype=np.float32)


def from_components(u: np.ndarray, lo: float, hi: float, mean: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Network output (K, h, w) -> scene block (h, w, B) float64 in source units."""
    bands = basis.shape[1]
    spectra = u.transpose(1, 2, 0).astype(np.float64) @ (basis.astype(np.float64) * np.sqrt(bands))
    return (spectra + mean) * (hi - lo) + lo
