"""The spectral front-end: a scene block (h, w, B) <-> its KLT planes (K, h, w).

The scene is scaled to x_n = (x - lo) / (hi - lo) with its valid range; the
planes are the least-squares u of x_n - mean = u @ basis * sqrt(B), on the
scene's own KLT rows. Dividing by sqrt(B) makes the sum of the planes' mean
squared errors the per-band MSE of x_n, so one quantisation step D for every
plane is the equal-slope (MSE-optimal) split of bits between them. The file
stores the first K rows, K set by D (the planes after the last one with a
non-zero value are not coded), each quantised so that the basis adds
`BASIS_SHARE` of D**2 / 12 to the per-band MSE.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from hsicodec.container import BASIS_SHARE, Normalisation, SpectralBasis, quantise_basis
from hsicodec.klt import SpectralStats, fit_klt, from_components, to_components, value_range


@dataclass(frozen=True)
class KltFit:
    """A scene's KLT before it is stored: mean (B,), every basis row (B, B) and component variances (B,)."""

    mean: np.ndarray
    basis: np.ndarray
    variances: np.ndarray

    def stored(self, planes: int, step: float) -> SpectralBasis:
        """The mean and first `planes` rows as a file coded at step D stores them (see `quantise_basis`)."""
        return quantise_basis(SpectralBasis(self.mean, self.basis[:planes]), self.variances[:planes],
                              BASIS_SHARE * step ** 2 / 12)


@dataclass(frozen=True)
class FrontEnd:
    """One scene's front-end: its range and KLT basis (all rows, unquantised, until `stored`)."""

    norm: Normalisation
    basis: SpectralBasis
    fill: np.ndarray | None = None  # normalised value of nodata samples, per band (encoder only)
    fit: KltFit | None = None  # the KLT the basis was stored from (encoder only)

    def stored(self, planes: int, step: float) -> FrontEnd:
        """This front-end with the basis a file of `planes` planes at step D stores."""
        return dataclasses.replace(self, basis=self.fit.stored(planes, step))

    def planes(self, block: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Scene block (h, w, B) -> planes (K, h, w) float32; nodata samples take `fill`."""
        lo, hi = self.norm.lo, self.norm.hi
        values = block if mask is None else np.where(mask, self.fill * (hi - lo) + lo, block)
        return to_components(values, lo, hi, self.basis.mean, self.basis.basis)

    def spectra(self, u: np.ndarray, dtype: np.dtype = np.dtype(np.float64)) -> np.ndarray:
        """Planes (K, h, w) -> scene block (h, w, B) in source units, for samples of type `dtype` (float32
        when it holds them exactly, else float64)."""
        return from_components(u, self.norm.lo, self.norm.hi, self.basis.mean, self.basis.basis, dtype)


def fit_front_end(stats: SpectralStats) -> FrontEnd:
    """A scene's front-end from its statistics, every KLT row kept (unquantised) until `FrontEnd.stored`.
    An all-nodata scene gets a unit range and no rows."""
    if stats.valid_samples == 0:
        mean = np.zeros(stats.bands, np.float32)
        fit = KltFit(mean, np.zeros((0, stats.bands), np.float32), np.zeros(0))
        return FrontEnd(Normalisation(0.0, 1.0), SpectralBasis(fit.mean, fit.basis), np.zeros(stats.bands), fit)
    lo, hi = value_range(stats)
    fit = KltFit(*fit_klt(stats, stats.bands))
    return FrontEnd(Normalisation(lo, hi), SpectralBasis(fit.mean, fit.basis), (stats.mean() - lo) / (hi - lo), fit)
