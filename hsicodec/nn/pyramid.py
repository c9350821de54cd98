"""The wavelet-pyramid plane codec's model: fixed CDF 9/7 subbands and a learned probability model P.

E and G are the CDF 9/7 wavelet over `levels` levels (fixed, invertible, each
subband scaled by its synthesis norm so that one quantisation step is the
equal-slope split of bits between subbands). P codes a plane's quantised
subbands coarse to fine, each level in two checkerboard passes; every value's
Gaussian (mean, scale) comes from one small net given what a decoder already
has: the low-pass image of its level (rebuilt from the coarser levels), the
values of its level decoded so far, and, with `cross_plane`, the previous KLT
plane's low-pass image and values at that level. There is no hyper-latent, so
no side bits. `walk` is the one traversal that training (bits), the encoder
and the decoder share.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from hsicodec.nn.integer import IntegerNet
from hsicodec.nn.wavelet import analyse_2d, synthesise_2d

Code = tuple[torch.Tensor, list[torch.Tensor]]
"""A plane's quantised subbands: the low-pass band (N, 1, h, w) and each level's details (N, 3, ., .),
finest level first; integer values in a float tensor."""

Visit = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], None]
"""visit(level, values, params, mask): one pass's level (`levels` for the low-pass band), its values (filled
in place by a decoder) of the planes coding the level, the net's (means, scales) for each of their positions,
and the (1, 1, h, w) mask of the positions this pass codes."""


class WaveletPyramid(nn.Module):
    """P of the wavelet-pyramid codec (module doc); `quantise` and `dequantise` are E and G."""

    def __init__(self, levels: int = 5, width: int = 32, cross_plane: bool = True) -> None:
        super().__init__()
        self.levels = levels
        self.width = width
        self.cross_plane = cross_plane
        low_gain, gains = _subband_gains(levels)
        self.register_buffer("low_gain", torch.tensor(low_gain), persistent=False)
        self.register_buffer("gains", torch.tensor(gains), persistent=False)  # (levels, 3)
        inputs = 1 + 3 + 1 + levels + (4 if cross_plane else 0)
        self.net = nn.Sequential(
            nn.Conv2d(inputs, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, 6, 3, padding=1))
        self.low_net = nn.Sequential(
            nn.Conv2d(2 + (1 if cross_plane else 0), width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2, 3, padding=1))

    def config(self) -> dict:
        """The constructor's arguments (a checkpoint stores them)."""
        return {"levels": self.levels, "width": self.width, "cross_plane": self.cross_plane}

    def input_groups(self) -> tuple[list[list[int]], list[list[int]]]:
        """The inputs of `net` and `low_net` by kind: images (low-pass images), values (codes) and
        indicators (the first pass's mask, the level), each rounded with its own unit by `exact`."""
        levels, cross = self.levels, self.cross_plane
        images = [0] + ([5 + levels] if cross else [])
        values = [1, 2, 3] + (list(range(6 + levels, 9 + levels)) if cross else [])
        return [images, values, list(range(4, 5 + levels))], [[0] + ([2] if cross else []), [1]]

    def exact(self, nets: tuple[IntegerNet, IntegerNet] | None = None) -> WaveletPyramid:
        """A copy of this P whose nets compute in integers (`nn.integer`), the same on every machine: the
        given (net, low_net), a checkpoint's, or this P's own weights rounded."""
        if nets is None:
            nets = tuple(IntegerNet.from_float(n, g) for n, g in zip((self.net, self.low_net), self.input_groups()))
        exact = WaveletPyramid(**self.config())
        exact.net, exact.low_net = nets
        return exact.to(torch.float64).eval()

    @property
    def stride(self) -> int:
        """Planes are coded in sizes that are multiples of this."""
        return 2 ** self.levels

    def analyse(self, x: torch.Tensor) -> Code:
        """Planes (N, 1, H, W), H and W multiples of `stride`: their subbands times their gains, the code at
        step 1 before rounding (`rounded` quantises it at any step)."""
        low, details = x, []
        for level in range(self.levels):
            low, bands = analyse_2d(low)
            details.append(bands * self.gains[level][None, :, None, None].to(bands.dtype))
        return low * self.low_gain, details

    def quantise(self, x: torch.Tensor, step: torch.Tensor | float) -> Code:
        """Planes (N, 1, H, W), H and W multiples of `stride`, quantised at step D: round(subband * gain / D)."""
        return rounded(self.analyse(x), step)

    def dequantise(self, code: Code, step: torch.Tensor | float) -> torch.Tensor:
        """The planes a code at step D stands for (or subbands in its units, such as `centroid`'s)."""
        return synthesise_2d(self.lows(code)[0], self._unscaled(0, code[1][0])) * step

    def zeros(self, like: Code) -> Code:
        """A code of zeros shaped like `like`: what a first plane is coded after."""
        return torch.zeros_like(like[0]), [torch.zeros_like(b) for b in like[1]]

    def lows(self, code: Code) -> list[torch.Tensor]:
        """The low-pass image of every level (finest first), each of its details' size."""
        low, details = code
        images = [low / self.low_gain]
        for level in reversed(range(1, self.levels)):
            images.append(synthesise_2d(images[-1], self._unscaled(level, details[level])))
        return images[::-1]

    def _unscaled(self, level: int, bands: torch.Tensor) -> torch.Tensor:
        """A level's detail bands without their synthesis-norm gains."""
        return bands / self.gains[level][None, :, None, None]

    def walk(self, code: Code, previous: Code, visit: Visit, coded: torch.Tensor | None = None,
             previous_lows: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
        """Visit every pass of planes' codes in coding order, given each plane's previous plane's code. A
        decoder passes a code of zeros and fills each pass's masked values in `visit`: every pass sees only
        the values of the passes before it. `coded` (N, L + 1, bool; the low-pass band, then levels 0 ...
        L - 1) says which planes code which levels (the others hold zeros): P runs, and `visit` sees values
        and params, only for the planes that code the level (all planes when None; a plane's own tensors,
        not copies, when every plane codes it). Returns the code's `lows` (built on the way), which the
        next plane's walk may take as `previous_lows` instead of rebuilding them from `previous`."""
        low, details = code

        def planes_coding(column: int) -> Callable[[torch.Tensor], torch.Tensor] | None:
            """Selects the planes coding a level (None when none does)."""
            if coded is None or bool(coded[:, column].all()):
                return lambda t: t
            rows = coded[:, column].nonzero()[:, 0]
            return (lambda t: t[rows]) if len(rows) else None

        select = planes_coding(0)
        first = _checkerboard(low, True)
        for first_pass in (True, False) if select else ():
            part = select(low)
            seen = part * first if not first_pass else torch.zeros_like(part)
            inputs = [seen, first.expand_as(part)] + ([select(previous[0])] if self.cross_plane else [])
            visit(self.levels, part, self.low_net(torch.cat(inputs, dim=1)), _checkerboard(low, first_pass))
        image = low / self.low_gain
        if self.cross_plane and previous_lows is None:
            previous_lows = self.lows(previous)
        images = []
        for level in reversed(range(self.levels)):
            images.append(image)
            bands = details[level]
            select = planes_coding(1 + level)
            if select:
                part = select(bands)
                n, _, h, w = part.shape
                onehot = torch.zeros(n, self.levels, h, w, dtype=bands.dtype, device=bands.device)
                onehot[:, level] = 1
                first = _checkerboard(bands, True)
                for first_pass in (True, False):
                    seen = part * first if not first_pass else torch.zeros_like(part)
                    inputs = [select(image), seen, first.expand(n, 1, h, w), onehot]
                    if self.cross_plane:
                        inputs += [select(previous_lows[level]), select(previous[1][level])]
                    visit(level, part, self.net(torch.cat(inputs, dim=1)), _checkerboard(bands, first_pass))
            if level:
                image = synthesise_2d(image, self._unscaled(level, bands))
        return images[::-1]

    def bits(self, code: Code, previous: Code) -> torch.Tensor:
        """Bits of a plane's code under P (differentiable in P's weights), given the previous plane's."""
        total = []

        def add(level: int, values: torch.Tensor, params: torch.Tensor, mask: torch.Tensor) -> None:
            total.append(-(torch.log2(likelihood(values, params)) * mask).sum())

        self.walk(code, previous, add)
        return torch.stack(total).sum()

    def training_loss(self, x: torch.Tensor, previous: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        """Bits per pixel of planes x (N, 1, H, W) at steps D (N, 1, 1, 1), coded after the planes
        `previous` (zeros for a first plane). Only P learns: the code is fixed data."""
        with torch.no_grad():
            code, code_previous = self.quantise(x, step), self.quantise(previous, step)
        return self.bits(code, code_previous) / x.numel()


def rounded(subbands: Code, step: torch.Tensor | float) -> Code:
    """The code at step D of gain-scaled subbands (`WaveletPyramid.analyse`): round(subband / D)."""
    return torch.round(subbands[0] / step), [torch.round(bands / step) for bands in subbands[1]]


SCALE_BOUND = 0.11
"""Smallest scale of P's Gaussians (that of compressai's GaussianConditional, whose tables the coder uses)."""
LIKELIHOOD_BOUND = 1e-9
"""Smallest likelihood P gives a value in training and estimates (compressai's bound)."""


def likelihood(values: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Each integer value's probability under its Gaussian (P's means and scales) integrated over its bin,
    scales and results bounded below as compressai's GaussianConditional bounds them."""
    means, scales = params.chunk(2, dim=1)
    distance = (values - means).abs()
    scales = _LowerBound.apply(scales, SCALE_BOUND)
    mass = standard_cdf((0.5 - distance) / scales) - standard_cdf((-0.5 - distance) / scales)
    return _LowerBound.apply(mass, LIKELIHOOD_BOUND)


def standard_cdf(x: torch.Tensor) -> torch.Tensor:
    """The standard normal distribution function, through erfc (accurate in both tails)."""
    return 0.5 * torch.erfc(-(2 ** -0.5) * x)


class _LowerBound(torch.autograd.Function):
    """max(x, bound), whose gradient still flows below the bound where it would raise x (so a scale
    pushed under the bound in training can come back)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor, bound: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.bound = bound
        return x.clamp_min(bound)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (x,) = ctx.saved_tensors
        return grad * ((x >= ctx.bound) | (grad < 0)), None


def centroid(values: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """The mean of each value's Gaussian (P's mean and scale) within its quantisation bin [q - 1/2, q + 1/2]:
    the reconstruction of least squared error under P, pulled from q towards P's mean."""
    means, scales = params.chunk(2, dim=1)
    scales = scales.clamp_min(SCALE_BOUND)
    normal = torch.distributions.Normal(torch.zeros((), dtype=values.dtype), torch.ones((), dtype=values.dtype))
    below, above = (values - 0.5 - means) / scales, (values + 0.5 - means) / scales
    mass = (normal.cdf(above) - normal.cdf(below)).clamp_min(1e-12)
    shift = scales * (normal.log_prob(below).exp() - normal.log_prob(above).exp()) / mass
    return torch.minimum(torch.maximum(means + shift, values - 0.5), values + 0.5)


def _checkerboard(like: torch.Tensor, first: bool) -> torch.Tensor:
    """(1, 1, h, w) mask of the first pass's positions ((row + column) even), or of the second's."""
    h, w = like.shape[-2:]
    even = ((torch.arange(h)[:, None] + torch.arange(w)[None, :]) % 2 == 0).to(like.dtype)
    return (even if first else 1 - even)[None, None]


def _subband_gains(levels: int) -> tuple[float, list[list[float]]]:
    """Synthesis norms of the low-pass band and of each level's three detail bands (finest level first)."""
    size = 8 * 2 ** levels
    zero = torch.zeros(1, 1, size, size)
    low, details = zero, []
    for _ in range(levels):
        low, bands = analyse_2d(low)
        details.append(bands)

    def norm(low_band: torch.Tensor, bands: list[torch.Tensor]) -> float:
        image = low_band
        for level in reversed(range(levels)):
            image = synthesise_2d(image, bands[level])
        return float(image.norm())

    def impulse(t: torch.Tensor, channel: int = 0) -> torch.Tensor:
        t = torch.zeros_like(t)
        t[0, channel, t.shape[2] // 2, t.shape[3] // 2] = 1.0
        return t

    low_gain = norm(impulse(low), [torch.zeros_like(b) for b in details])
    gains = [[norm(torch.zeros_like(low), [impulse(b, o) if i == level else torch.zeros_like(b)
                                            for i, b in enumerate(details)]) for o in range(3)]
             for level in range(levels)]
    return low_gain, gains
