"""Reach a requested file size: pick the quantisation step D whose file is nearest it.

D is searched on a sample of the scene's tiles (all of them for scenes of up
to SAMPLE_TILES tiles, as many as SAMPLE_BYTES of planes allow), whose planes
are analysed once: each candidate re-runs only the rounding of their subbands
and P's likelihoods (`estimate_bits`, within about 1% of the range coder's
output), and the file size is the sample's bits scaled to the scene plus the
side information at that D (the basis rows kept and their precision follow
D). Steps lie on a grid of 1/STEPS_PER_OCTAVE octaves, so a file's step is a
short, exact number.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from hsicodec.nn.pyramid import Code, rounded
from hsicodec.plane_coding import PlaneCoder

SAMPLE_TILES = 32
SAMPLE_BYTES = 256 << 20
"""The sample's subbands (every KLT row of each sampled tile, float32) stay within this."""
STEPS_PER_OCTAVE = 64
"""Neighbouring steps differ by 1.1%: at 4 bpp on a scene whose every plane is coded, a grid of 1/16 octave
(4.4%) moved the file by more than the 5% that `-r` promises."""
CLOSE_ENOUGH = 0.03
"""A step whose file is this close below the target is taken."""
INITIAL_STEP = 2.0**-6
"""Where the search starts: mid-range of the rates sold (0.1 to 4 bpp) on the scenes measured."""
MIN_STEP, MAX_STEP = 2.0**-14, 1.0
"""Steps searched (normalised planes): at 1 nearly every value rounds to zero; 2**-14 is more than 16 times
finer than any step that 4 bpp needed on the scenes measured."""


@dataclass
class RateChoice:
    """The chosen step, the planes it codes and the file size predicted for it."""

    step: float
    planes: int
    predicted_bytes: int
    reachable: bool
    """False when no step of the search range gives a file of the target size."""


def sample_tiles(n_tiles: int, tile_values: int) -> list[int]:
    """Indices of the tiles to sample, spread evenly over the grid (all of them when there are few):
    at most SAMPLE_TILES, and at most SAMPLE_BYTES of planes of `tile_values` values each."""
    limit = max(1, min(SAMPLE_TILES, SAMPLE_BYTES // max(4 * tile_values, 1)))
    if n_tiles <= limit:
        return list(range(n_tiles))
    return sorted({int(i) for i in np.linspace(0, n_tiles - 1, limit).round()})


def coded_planes(peaks: list[torch.Tensor], step: float) -> int:
    """K at step D: the planes up to the last with a non-zero value in any sampled tile, from each tile's
    `peaks` (the largest magnitude of each plane's gain-scaled subbands): round is monotone, so a plane
    has a non-zero value at D exactly when its peak does."""
    nonzero = [torch.round(p / step).nonzero() for p in peaks]
    return max((int(n.max()) + 1 for n in nonzero if len(n)), default=0)


def plane_peaks(subbands: Code) -> torch.Tensor:
    """The largest magnitude of each plane's (gain-scaled) subbands."""
    return torch.stack([t.abs().flatten(1).amax(dim=1) for t in (subbands[0], *subbands[1])]).amax(dim=0)


def choose_step(coder: PlaneCoder, sample: list[Code], scale: float, target_bytes: float,
                side_bytes: Callable[[int, float], int]) -> RateChoice:
    """The step of the grid whose predicted file is the largest not above `target_bytes`. `sample`: the
    gain-scaled subbands (`PlaneCoder.analyse`) of every plane of the sampled tiles; `scale`: scene
    pixels over sampled pixels; `side_bytes(K, D)`: everything in the file but the range coder's words.

    The file size falls as D grows, about as 1 / D, so a secant search on log size against log D
    (kept inside the bracket found so far, stopping CLOSE_ENOUGH below the target) needs fewer
    predictions than a bisection of the grid."""
    known: dict[int, tuple[int, int]] = {}
    peaks = [plane_peaks(subbands) for subbands in sample]

    def excess(index: int) -> float:
        """log(predicted bytes / target) at grid index `index` (step 2**(index / STEPS_PER_OCTAVE))."""
        if index not in known:
            step = 2.0 ** (index / STEPS_PER_OCTAVE)
            k = coded_planes(peaks, step)
            bits = sum(coder.estimate_bits(rounded((low[:k], [b[:k] for b in details]), step))
                       for low, details in sample) if k else 0.0
            known[index] = k, int(math.ceil(bits * scale / 8)) + side_bytes(k, step)
        return math.log(known[index][1] / target_bytes)

    lowest, highest = (round(STEPS_PER_OCTAVE * math.log2(s)) for s in (MIN_STEP, MAX_STEP))
    above, below = lowest - 1, highest + 1  # the bracket: excess > 0 at `above`, <= 0 at `below`
    index, slope = round(STEPS_PER_OCTAVE * math.log2(INITIAL_STEP)), -math.log(2) / STEPS_PER_OCTAVE
    previous: tuple[int, float] | None = None
    while below - above > 1:
        value = excess(index)
        if value > 0:
            above = index
        else:
            below = index
            if value > math.log(1 - CLOSE_ENOUGH):
                break
        if previous is not None and previous[0] != index and previous[1] != value:
            slope = min((value - previous[1]) / (index - previous[0]), -1e-3)
        previous = index, value
        guess = round(index - value / slope)
        if guess == index:  # within half a grid step of the target: the neighbour on its side
            guess = index + (1 if value > 0 else -1)
        index = guess if above < guess < below else (above + below) // 2
    reachable = lowest <= below <= highest
    chosen = min(max(below, lowest), highest)
    excess(chosen)
    return RateChoice(2.0 ** (chosen / STEPS_PER_OCTAVE), *known[chosen], reachable=reachable)
