"""The CDF 9/7 wavelet (JPEG 2000's irreversible transform) as an invertible torch module.

`Wavelet97(levels)` maps planes (N, 1, H, W), H and W multiples of 2**levels, to
a latent (N, 4**levels, H / 2**levels, W / 2**levels): every subband of every
level, each level's subbands cut into blocks by pixel-unshuffle so that all of
them share the coarsest grid. Channels run from coarse to fine: the coarsest
low-pass band, then each level's three detail bands (LH, HL, HH), coarsest level
first (`level_channels` gives the channel count of each). The transform is
critically sampled and exactly inverted by `inverse` (lifting steps undone in
reverse order), so it limits nothing: quantisation alone loses information.

Each subband is scaled by the L2 norm of its synthesis basis function, so that
an error e in any latent value costs e**2 of squared error in the plane (up to the
transform's small departure from orthogonality): one quantisation step for every
channel is then the equal-slope split of bits, as JPEG 2000's rate allocation
weights its subbands.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# lifting coefficients of the CDF 9/7 wavelet (Daubechies & Sweldens 1998)
ALPHA, BETA, GAMMA, DELTA = -1.586134342059924, -0.052980118572961, 0.882911075530934, 0.443506852043971


class Wavelet97(nn.Module):
    """Fixed, invertible 2-D CDF 9/7 analysis (`forward`) and synthesis (`inverse`) over `levels` levels."""

    def __init__(self, levels: int = 4) -> None:
        super().__init__()
        self.levels = levels
        self.register_buffer("gains", torch.ones(4 ** levels), persistent=False)
        self.gains = self._synthesis_norms()

    @property
    def stride(self) -> int:
        return 2 ** self.levels

    def level_channels(self) -> list[int]:
        """Latent channels of each group, coarse to fine: the low-pass band with the coarsest details, then each
        finer level's details."""
        return [4] + [3 * 4 ** k for k in range(1, self.levels)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._pack(x) * self.gains[None, :, None, None]

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return self._unpack(y / self.gains[None, :, None, None])

    def _pack(self, x: torch.Tensor) -> torch.Tensor:
        details = []
        low = x
        for level in range(self.levels):
            low, bands = analyse_2d(low)
            details.append(F.pixel_unshuffle(bands, 2 ** (self.levels - 1 - level)))
        return torch.cat([low, *reversed(details)], dim=1)

    def _unpack(self, y: torch.Tensor) -> torch.Tensor:
        low = y[:, :1]
        start = 1
        for level in reversed(range(self.levels)):
            factor = 2 ** (self.levels - 1 - level)
            count = 3 * factor ** 2
            bands = F.pixel_shuffle(y[:, start:start + count], factor)
            start += count
            low = synthesise_2d(low, bands)
        return low

    @torch.no_grad()
    def _synthesis_norms(self) -> torch.Tensor:
        """L2 norm of each latent channel's synthesis basis function (an impulse far from the edges)."""
        size = 8 * self.stride
        grid = size // self.stride
        impulses = torch.zeros(4 ** self.levels, 4 ** self.levels, grid, grid)
        channel = torch.arange(4 ** self.levels)
        impulses[channel, channel, grid // 2, grid // 2] = 1.0
        return self._unpack(impulses).flatten(1).norm(dim=1)


def _analyse_1d(x: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(low, high) halves along `dim` (-1: columns, -2: rows) by the four lifting steps; whole-sample
    symmetric edges."""
    s, d = x.unflatten(dim, (-1, 2)).unbind(dim)
    d = d + ALPHA * (s + _next(s, dim))
    s = s + BETA * (_previous(d, dim) + d)
    d = d + GAMMA * (s + _next(s, dim))
    s = s + DELTA * (_previous(d, dim) + d)
    return s, d


def _synthesise_1d(s: torch.Tensor, d: torch.Tensor, dim: int) -> torch.Tensor:
    """Inverse of `_analyse_1d`: the lifting steps undone in reverse order, halves interleaved."""
    s = s - DELTA * (_previous(d, dim) + d)
    d = d - GAMMA * (s + _next(s, dim))
    s = s - BETA * (_previous(d, dim) + d)
    d = d - ALPHA * (s + _next(s, dim))
    return torch.stack([s, d], dim=dim).flatten(dim - 1, dim)


def _next(t: torch.Tensor, dim: int) -> torch.Tensor:
    """t[n + 1], the last value repeated (the even samples' symmetric extension)."""
    return torch.cat([t.narrow(dim, 1, t.shape[dim] - 1), t.narrow(dim, t.shape[dim] - 1, 1)], dim=dim)


def _previous(t: torch.Tensor, dim: int) -> torch.Tensor:
    """t[n - 1], the first value repeated (the odd samples' symmetric extension)."""
    return torch.cat([t.narrow(dim, 0, 1), t.narrow(dim, 0, t.shape[dim] - 1)], dim=dim)


def analyse_2d(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(LL, [LH, HL, HH]) of (N, 1, H, W) planes: rows, then columns."""
    low, high = _analyse_1d(x, -2)
    ll, lh = _analyse_1d(low, -1)
    hl, hh = _analyse_1d(high, -1)
    return ll, torch.cat([lh, hl, hh], dim=1)


def synthesise_2d(ll: torch.Tensor, bands: torch.Tensor) -> torch.Tensor:
    lh, hl, hh = bands.chunk(3, dim=1)
    return _synthesise_1d(_synthesise_1d(ll, lh, -1), _synthesise_1d(hl, hh, -1), -2)
