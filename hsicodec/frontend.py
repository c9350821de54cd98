"""Spectral front-ends: a scene block (h, w, B) <-> the network's planes (C, h, w).

Both scale the scene to x_n = (x - lo) / (hi - lo) with its valid range, then
- ``klt``: C = K per-scene KLT components, the least-squares u of x_n - mean = u @ basis * sqrt(B);
- ``bands``: C = B, the bands themselves, u = (x_n - 1/2) / sqrt(B).
Dividing by sqrt(B) makes C * mean(u error^2) the per-band MSE of x_n in both
cases, so the network's distortion is the scene's PSNR distortion. A file's
plane groups and gains (`hsicodec.plane_groups`) apply on top of these planes.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from hsicodec.container import BASIS_ERROR_BUDGET, Normalisation, SpectralBasis, quantise_basis
from hsicodec.klt import SpectralStats, fit_klt, from_components, to_components, value_range

FRONT_ENDS = ("klt", "bands")
BANDS_CENTRE = 0.5


@dataclass(frozen=True)
class SpectralGeometry:
    """Maps planes u to coordinates v = offset + scale * (mixing @ u) of x_n on an orthonormal basis.

    ``residual`` is the squared norm of the part of x_n outside that basis (the KLT
    mean's), so spectral angles and SSIM can be computed on the planes in training.
    ``mixing`` (C, C) makes the stored, quantised KLT rows exactly orthonormal; the
    ``bands`` front-end needs none (None).
    """

    offset: np.ndarray  # (C,)
    scale: float
    residual: float
    mixing: np.ndarray | None = None


@dataclass(frozen=True)
class KltFit:
    """A scene's KLT before it is stored: mean (B,), basis rows (K, B) and component variances (K,)."""

    mean: np.ndarray
    basis: np.ndarray
    variances: np.ndarray

    def stored(self, kept: np.ndarray | None = None, error_budget: float = BASIS_ERROR_BUDGET) -> SpectralBasis:
        """The basis as a file stores it: the rows `kept` marks False as zeros, the others quantised to
        `error_budget` (see `quantise_basis`)."""
        variances = self.variances if kept is None else np.where(kept, self.variances, 0.0)
        return quantise_basis(SpectralBasis(self.mean, self.basis), variances, error_budget)


@dataclass(frozen=True)
class FrontEnd:
    """One scene's front-end; ``basis`` is None for the ``bands`` front-end."""

    norm: Normalisation
    basis: SpectralBasis | None
    fill: np.ndarray | None = None  # normalised value of nodata samples, per band (encoder only)
    fit: KltFit | None = None  # the KLT the basis was stored from (encoder only; None for an all-nodata scene)

    def with_rows(self, kept: np.ndarray, error_budget: float) -> FrontEnd:
        """This front-end with its KLT stored for a row choice, as `fit_front_end` with `kept` and
        `error_budget` would give, without fitting the KLT again."""
        if self.fit is None:
            return self
        return dataclasses.replace(self, basis=self.fit.stored(kept, error_budget))

    @property
    def kind(self) -> str:
        return "bands" if self.basis is None else "klt"

    def planes(self, block: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Scene block (h, w, B) -> network planes (C, h, w) float32; nodata samples take `fill`."""
        lo, hi = self.norm.lo, self.norm.hi
        values = block.astype(np.float64)
        if mask is not None:
            values = np.where(mask, self.fill * (hi - lo) + lo, values)
        if self.basis is not None:
            u = to_components(values, lo, hi, self.basis.mean, self.basis.basis)
        else:
            u = (((values - lo) / (hi - lo) - BANDS_CENTRE) / np.sqrt(values.shape[-1])).transpose(2, 0, 1)
        return np.ascontiguousarray(u, dtype=np.float32)

    def spectra(self, u: np.ndarray) -> np.ndarray:
        """Network planes (C, h, w) -> scene block (h, w, B) float64 in source units."""
        lo, hi = self.norm.lo, self.norm.hi
        u = u.astype(np.float64)
        if self.basis is not None:
            return from_components(u, lo, hi, self.basis.mean, self.basis.basis)
        x_n = u.transpose(1, 2, 0) * np.sqrt(u.shape[0]) + BANDS_CENTRE
        return x_n * (hi - lo) + lo

    def geometry(self, bands: int) -> SpectralGeometry:
        if self.basis is None:
            return SpectralGeometry(np.full(bands, BANDS_CENTRE, np.float32), float(np.sqrt(bands)), 0.0)
        mean, basis = self.basis.mean.astype(np.float64), self.basis.basis.astype(np.float64)
        k = basis.shape[0]
        q, r = np.linalg.qr(basis.T)  # basis.T = q @ r, q with orthonormal columns
        offset = q.T @ mean
        residual = float(np.sum((mean - q @ offset) ** 2))
        mixing, padded = np.zeros((k, k)), np.zeros(k)
        mixing[: r.shape[0]], padded[: offset.size] = r, offset  # scenes with fewer bands than K
        return SpectralGeometry(padded.astype(np.float32), float(np.sqrt(bands)), residual,
                                mixing.astype(np.float32))


def fit_front_end(stats: SpectralStats, kind: str, components: int, kept: np.ndarray | None = None,
                  error_budget: float = BASIS_ERROR_BUDGET) -> FrontEnd:
    """A scene's front-end from its statistics; the KLT basis is quantised as the container stores it.

    For ``klt``, the rows `kept` marks False are stored as zeros (their planes are
    then left out of the code), and the others are quantised to `error_budget`
    (see `quantise_basis`). An all-nodata scene gets a unit range (and a zero
    basis for ``klt``).
    """
    if kind not in FRONT_ENDS:
        raise ValueError(f"unknown front-end {kind!r}; expected one of {FRONT_ENDS}")
    if stats.valid_samples == 0:
        norm, fill = Normalisation(0.0, 1.0), np.zeros(stats.bands)
        basis = SpectralBasis(np.zeros(stats.bands, np.float32), np.zeros((components, stats.bands), np.float32))
        return FrontEnd(norm, quantise_basis(basis) if kind == "klt" else None, fill)
    lo, hi = value_range(stats)
    norm, fill = Normalisation(lo, hi), (stats.mean() - lo) / (hi - lo)
    if kind == "bands":
        return FrontEnd(norm, None, fill)
    fit = KltFit(*fit_klt(stats, components))
    return FrontEnd(norm, fit.stored(kept, error_budget), fill, fit)
