"""Which KLT components a file stores, and how finely: chosen from what the model rebuilds at the file's step.

A network of limited width rebuilds a scene's strong KLT planes but not always
its weak ones. A plane whose squared error is not below KEEP_BELOW times its
energy comes back no better than if it were left out: its basis row is then
stored as zeros and its plane is zero, which saves the row's bytes and the
noise G adds to it. The rows kept are quantised to add BASIS_SHARE of the
codec's own error on the same tiles (never finer than the container's fixed
50 dB budget): on a small scene the basis is a large part of the file.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hsicodec.container import BASIS_ERROR_BUDGET

AUDIT_TILES = 4
"""Tiles (spread over the scene) decoded at the chosen step to measure each plane's error."""
KEEP_BELOW = 0.9
"""A plane is kept when G removes at least 10% of its energy."""
BASIS_SHARE = 0.03
"""The kept rows' quantisation may add 3% to the codec's per-band MSE (about 0.13 dB)."""


@dataclass(frozen=True)
class ComponentChoice:
    """The basis rows to store (K,), the per-band MSE their quantisation may add, and the codec's own."""

    kept: np.ndarray
    error_budget: float
    distortion: float


def choose_components(planes: list[np.ndarray], rebuilt: list[np.ndarray]) -> ComponentChoice:
    """The choice from tiles' planes (K, h, w) and the model's reconstructions of them at the file's step.

    With near-orthonormal rows, a plane's mean squared error is its share of the
    scene's per-band MSE (normalised units), so the codec's error is the sum over
    the kept planes' errors and the left-out planes' energies.
    """
    pixels = sum(p[0].size for p in planes)
    energy = sum(np.square(p, dtype=np.float64).sum(axis=(1, 2)) for p in planes) / pixels
    error = sum(np.square(p - r, dtype=np.float64).sum(axis=(1, 2)) for p, r in zip(planes, rebuilt)) / pixels
    kept = error < KEEP_BELOW * energy
    distortion = float(np.where(kept, error, energy).sum())
    return ComponentChoice(kept, max(BASIS_ERROR_BUDGET, BASIS_SHARE * distortion), distortion)
