"""Reach a requested file size: the quantisation step D of the largest file not above it.

D is chosen on a sample of the scene's tiles (all of them for scenes of up to
SAMPLE_TILES tiles, as many as SAMPLE_BYTES allow). Every step tried is
measured: the sampled tiles are range-coded at it exactly as the file codes
them, so the size found for a step is the file's own when every tile is
sampled (else the sample's bytes scaled to the scene, plus the side
information at that step), and the step chosen hands its sampled tiles' words
to the file. What keeps this cheap is the choice of the steps to try: a model
of the coder's bits (`SampleModel`: the entropy of a Laplacian fitted to every
BLOCK x BLOCK block of every subband of the sample's planes, on every KLT row),
times the ratio of the coder's bits to the model's measured at the steps
already tried, interpolated between them (PRIOR_RATIO before the first). That
ratio moves by a few percent per octave of D, so the second step tried is
usually within CLOSE_ENOUGH below the target. Steps lie on a grid of
1/STEPS_PER_OCTAVE octaves, so a file's step is a short, exact number.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from hsicodec.nn.pyramid import Code

SAMPLE_TILES = 32
SAMPLE_BYTES = 256 << 20
"""The sampled tiles' samples stay within this."""
STEPS_PER_OCTAVE = 64
"""Neighbouring steps differ by 1.1%: at 4 bpp on a scene whose every plane is coded, a grid of 1/16 octave
(4.4%) moved the file by more than the 5% that `-r` promises."""
CLOSE_ENOUGH = 0.03
"""A step whose file is this close below the target is taken; the search aims at the middle of that band."""
BLOCK = 4
"""The model fits one Laplacian to each block of this many values square of a subband: with 4, its ratio to the
coder's bits varied least over the rates sold (docs/core-bakeoff.md)."""
CALIBRATION_SHARE = 4
"""When the sample has more tiles than one, the ratio is first measured on one tile in this many (at the
step the prior gives), so that the first step tried on the whole sample is already near the target."""
PRIOR_RATIO = 0.85
"""The coder's bits over the model's before any step is measured: 0.66 to 1.07 from 0.2 to 2 bpp on the
scenes measured (docs/core-bakeoff.md)."""
MIN_STEP, MAX_STEP = 2.0**-14, 1.0
"""Steps searched (normalised planes): at 1 nearly every value rounds to zero; 2**-14 is more than 16 times
finer than any step that 4 bpp needed on the scenes measured."""

CodedTiles = dict[int, tuple[np.ndarray, int]]
"""Range-coded tiles by index: (words, CRC32 of the values), as `PlaneCoder.encode` gives them."""


@dataclass
class RateChoice:
    """The chosen step, the planes it codes, the file size found for it and the sampled tiles coded at it."""

    step: float
    planes: int
    predicted_bytes: int
    reachable: bool
    """False when no step of the search range gives a file of the target size."""
    tiles: CodedTiles = field(default_factory=dict, repr=False)


def sample_tiles(n_tiles: int, tile_bytes: int) -> list[int]:
    """Indices of the tiles to sample, spread evenly over the grid (all of them when there are few):
    at most SAMPLE_TILES, and at most SAMPLE_BYTES of tiles of `tile_bytes` each."""
    limit = max(1, min(SAMPLE_TILES, SAMPLE_BYTES // max(tile_bytes, 1)))
    if n_tiles <= limit:
        return list(range(n_tiles))
    return sorted({int(i) for i in np.linspace(0, n_tiles - 1, limit).round()})


class SampleModel:
    """A model of the coder's bits on the sampled tiles' planes, on every KLT row: each plane's peak (which
    says the planes a step codes) and the mean magnitude of each BLOCK x BLOCK block of its subbands."""

    def __init__(self) -> None:
        self._peaks: list[torch.Tensor] = []
        self._blocks: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # per tile: the blocks' mean
        # magnitudes (planes, blocks) and the values in each block (blocks,), every subband's blocks together

    @property
    def tiles(self) -> list[int]:
        """The sampled tiles' indices, in the order added."""
        return list(self._blocks)

    def add(self, index: int, subbands: Code) -> None:
        """Add tile `index`'s gain-scaled subbands (`PlaneCoder.analyse`) of every plane."""
        parts = (subbands[0], *subbands[1])
        self._peaks.append(torch.stack([t.abs().flatten(1).amax(dim=1) for t in parts]).amax(dim=0))
        means, sizes = [], []
        for t in parts:
            h, w = t.shape[-2:]
            pad = (0, -w % BLOCK, 0, -h % BLOCK)
            sums = F.avg_pool2d(F.pad(t.abs().float(), pad), BLOCK, divisor_override=1)
            values = F.avg_pool2d(F.pad(torch.ones(1, 1, h, w), pad), BLOCK, divisor_override=1)
            means.append((sums / values).flatten(1))
            sizes.append(values.expand(1, t.shape[1], -1, -1).flatten())
        self._blocks[index] = torch.cat(means, dim=1), torch.cat(sizes)

    def planes(self, step: float) -> int:
        """K at step D: the planes up to the last with a non-zero value in any sampled tile. round is
        monotone, so a plane has a non-zero value at D exactly when its peak does."""
        nonzero = [torch.round(p / step).nonzero() for p in self._peaks]
        return max((int(n.max()) + 1 for n in nonzero if len(n)), default=0)

    def bits(self, step: float, planes: int, tiles: list[int] | None = None) -> float:
        """The model's bits for the first `planes` planes of `tiles` (all sampled tiles when None) at step D."""
        blocks = (self._blocks[index] for index in (self.tiles if tiles is None else tiles))
        return sum(float((laplace_bits(means[:planes] / step) * sizes).sum()) for means, sizes in blocks)


def laplace_bits(scale: torch.Tensor) -> torch.Tensor:
    """Entropy in bits of round(v), v Laplacian with mean magnitude `scale`: P(0) = 1 - sqrt(a) and
    P(+-n) = c a**n for n >= 1, with a = exp(-1 / scale) and c = (1 / sqrt(a) - sqrt(a)) / 2."""
    scale = scale.double().clamp_min(0.02)  # below, the entropy is under 1e-10 bits and a underflows
    a = torch.exp(-1 / scale)
    root = torch.sqrt(a)
    zero, c = 1 - root, (1 / root - root) / 2
    nats = -zero * torch.log(zero) - 2 * c * (torch.log(c) * a / (1 - a) + torch.log(a) * a / (1 - a) ** 2)
    return nats / math.log(2)


def choose_step(model: SampleModel, scale: float, target_bytes: float, side_bytes: Callable[[int, float], int],
                code_tiles: Callable[[int, float, list[int]], CodedTiles]) -> RateChoice:
    """The step of the grid whose file is the largest not above `target_bytes`. `model`: of the sampled
    tiles; `scale`: scene pixels over sampled pixels; `side_bytes(K, D)`: everything in the file but the
    range coder's words; `code_tiles(K, D, tiles)`: sampled tiles coded with K planes at step D."""
    lowest, highest = (round(STEPS_PER_OCTAVE * math.log2(s)) for s in (MIN_STEP, MAX_STEP))
    aim = target_bytes * (1 - CLOSE_ENOUGH / 2)
    ratios: dict[int, float] = {}  # grid index -> the coder's bits over the model's on the sample, where measured
    found: dict[int, RateChoice] = {}
    prior = PRIOR_RATIO

    def at(index: int) -> tuple[float, int]:
        step = 2.0 ** (index / STEPS_PER_OCTAVE)
        return step, model.planes(step)

    def ratio(index: int) -> float:
        """The measured ratio at `index`, interpolated between the nearest measured on either side."""
        lower = max((i for i in ratios if i <= index), default=None)
        upper = min((i for i in ratios if i >= index), default=None)
        if lower is None or upper is None:
            return ratios[upper if lower is None else lower] if ratios else prior
        weight = (index - lower) / (upper - lower) if upper > lower else 0.0
        return ratios[lower] + weight * (ratios[upper] - ratios[lower])

    def modelled(index: int) -> float:
        """The file size the model and the measured ratios give for step `index`."""
        step, planes = at(index)
        return model.bits(step, planes) * ratio(index) * scale / 8 + side_bytes(planes, step)

    def measured(index: int) -> RateChoice:
        """The file size of step `index`, from the sample coded at it."""
        if index not in found:
            step, planes = at(index)
            tiles = code_tiles(planes, step, model.tiles) if planes else {}
            bits, modelled_bits = _bits(tiles), model.bits(step, planes)
            if planes and modelled_bits > 0:
                ratios[index] = bits / modelled_bits
            size = int(math.ceil(bits * scale / 8)) + side_bytes(planes, step)
            found[index] = RateChoice(step, planes, size, size <= target_bytes, tiles)
        return found[index]

    calibration = model.tiles[min(CALIBRATION_SHARE // 2, len(model.tiles) - 1)::CALIBRATION_SHARE]
    if len(calibration) < len(model.tiles):  # the first ratio from part of the sample: it costs less
        step, planes = at(_first_not_over(modelled, lowest, highest, aim))
        modelled_bits = model.bits(step, planes, calibration)
        if planes and modelled_bits > 0:
            prior = _bits(code_tiles(planes, step, calibration)) / modelled_bits
    above, below = lowest - 1, highest + 1  # the bracket: over the target at `above`, not over at `below`
    while below - above > 1:
        choice = measured(index := _first_not_over(modelled, above + 1, below - 1, aim))
        if not choice.reachable:
            above = index
            continue
        below = index
        if choice.predicted_bytes >= target_bytes * (1 - CLOSE_ENOUGH):
            break
    return measured(min(below, highest))


def _bits(tiles: CodedTiles) -> int:
    return 32 * sum(len(words) for words, _ in tiles.values())


def _first_not_over(size: Callable[[int], float], first: int, last: int, limit: float) -> int:
    """The first index of [first, last] whose size is at most `limit` (`last` if none), by bisection:
    sizes fall as the step grows."""
    while first < last:
        middle = (first + last) // 2
        if size(middle) <= limit:
            last = middle
        else:
            first = middle + 1
    return first
