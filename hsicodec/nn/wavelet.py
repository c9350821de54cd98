"""One level of the CDF 9/7 wavelet (JPEG 2000's irreversible transform) in 2-D, and its exact inverse.

`analyse_2d` splits planes (N, 1, H, W), H and W even, into the low-pass band
and the three detail bands (LH, HL, HH) by the four lifting steps along rows,
then columns; `synthesise_2d` undoes them in reverse order, so the transform
is critically sampled and limits nothing: quantisation alone loses
information. The pyramid's levels and the subbands' synthesis-norm gains are
`nn.pyramid`'s.
"""
from __future__ import annotations

import torch

# lifting coefficients of the CDF 9/7 wavelet (Daubechies & Sweldens 1998)
ALPHA, BETA, GAMMA, DELTA = -1.586134342059924, -0.052980118572961, 0.882911075530934, 0.443506852043971


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
