"""The CDF 9/7 pyramid: exactly invertible, and an error in any coded value costs its square in the plane."""
from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch
from conftest import DATA

from hsicodec.nn.pyramid import WaveletPyramid
from hsicodec.nn.wavelet import analyse_2d, synthesise_2d


def _real_plane(height: int, width: int) -> torch.Tensor:
    """One band of the CAVE feathers eval scene, (1, 1, H, W), values in [0, 1]."""
    with rasterio.open(DATA / "cave" / "feathers.tif") as ds:
        band = ds.read(16, window=((0, height), (0, width))).astype(np.float64)
    return torch.from_numpy((band - band.min()) / (band.max() - band.min()))[None, None]


def test_the_wavelet_is_inverted_exactly_on_a_real_plane() -> None:
    plane = _real_plane(64, 96)
    low, levels = plane, []
    for _ in range(4):
        low, bands = analyse_2d(low)
        levels.append(bands)
    assert low.shape == (1, 1, 4, 6) and levels[0].shape == (1, 3, 32, 48)
    for bands in reversed(levels):
        low = synthesise_2d(low, bands)
    assert torch.allclose(low, plane, atol=1e-12)


def test_an_error_of_one_in_any_coded_value_costs_one_in_the_plane() -> None:
    """The subbands' synthesis-norm gains make one step D the equal-slope split of bits."""
    model = WaveletPyramid(levels=3).double()
    code = model.quantise(_real_plane(128, 128), 1e-3)
    plane = model.dequantise(code, 1.0)
    for level, orientation in ((3, 0), (2, 0), (1, 1), (0, 2)):  # the low-pass band, then details
        low, details = code[0].clone(), [b.clone() for b in code[1]]
        (low if level == 3 else details[level][:, orientation:])[0, 0, 8, 8] += 1.0
        moved = model.dequantise((low, details), 1.0)
        assert float(((moved - plane) ** 2).sum()) == pytest.approx(1.0, rel=1e-6)
