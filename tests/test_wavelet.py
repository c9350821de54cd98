"""The CDF 9/7 wavelet: exactly invertible, and its latent's error costs the same in the plane."""
from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch
from conftest import DATA

from hsicodec.nn.wavelet import Wavelet97


def _real_plane(height: int, width: int) -> torch.Tensor:
    """One band of the CAVE feathers eval scene, (1, 1, H, W), values in [0, 1]."""
    with rasterio.open(DATA / "cave" / "feathers.tif") as ds:
        band = ds.read(16, window=((0, height), (0, width))).astype(np.float64)
    return torch.from_numpy((band - band.min()) / (band.max() - band.min()))[None, None]


def test_the_wavelet_is_inverted_exactly_on_a_real_plane() -> None:
    wavelet = Wavelet97(4).double()
    plane = _real_plane(64, 96)
    latent = wavelet(plane)
    assert latent.shape == (1, 256, 4, 6)
    assert torch.allclose(wavelet.inverse(latent), plane, atol=1e-12)


def test_an_error_in_any_latent_value_costs_its_square_in_the_plane() -> None:
    wavelet = Wavelet97(3).double()
    plane = _real_plane(128, 128)
    latent = wavelet(plane)
    for channel in (0, 1, 10, 63):  # the low-pass band, a coarse detail, finer details
        moved = latent.clone()
        moved[0, channel, 8, 8] += 1.0
        assert float(((wavelet.inverse(moved) - plane) ** 2).sum()) == pytest.approx(1.0, rel=1e-6)
