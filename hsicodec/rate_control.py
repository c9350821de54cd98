"""Reach a requested file size: pick the latent step Δ whose coded size is nearest.

The step is searched on a sample of the scene's tiles (all of them for scenes
of up to SAMPLE_TILES tiles, where the file size is then predicted exactly):
the network runs once per sampled tile and each candidate step only re-runs
the range coder, which is cheap. Steps lie on a grid of 1/STEPS_PER_OCTAVE
octaves, so a file's step is a short, exact number. A file of several plane
groups (`plane_groups`) codes each group at a fixed ratio to group 0's step;
the step searched is group 0's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from hsicodec.container import Rect, tile_section_bytes
from hsicodec.latent_coding import Analysis, LatentCoder

SAMPLE_TILES = 32
NEAR_SMALLEST = 1.05
"""Below a rate it cannot reach, the finest step whose file is within 5% of the smallest file is used:
the last few percent would cost most of the quality."""
STEPS_PER_OCTAVE = 16
MIN_STEP, MAX_STEP = 0.25, 16.0
"""Within the container's [MIN_LATENT_STEP, MAX_LATENT_STEP]: below 1/4 the rate grows with no
gain in quality; at 16 the quality is far below any use."""


@dataclass
class RateChoice:
    """The chosen step and the file size it is predicted to give with E's latents (latent refinement
    then codes no more estimated bits, so a refined file lands at or a little below it)."""

    step: float
    predicted_bytes: int
    reachable: bool
    """False when the target lies outside what the steps MIN_STEP ... MAX_STEP can give."""
    at_smallest: bool = False
    """True when even the coarsest steps give a file above the target, so the file is near the
    smallest this candidate can give (and `reachable` is False)."""
    plane_gain: float = 1.0
    """The file's plane gain, set by `codec.compress_scene` (`plane_gain`), at which the step was chosen."""
    plane_groups: int = 1
    """The file's number of plane groups, set by `codec.compress_scene` (`plane_groups`)."""


SampleTile = tuple[list[Analysis], Rect, "np.ndarray | None"]
"""A sampled tile: its latents for each plane group, its rectangle and its nodata mask."""


def sample_tiles(n_tiles: int, limit: int = SAMPLE_TILES) -> list[int]:
    """Indices of up to `limit` tiles spread evenly over the grid (all of them when there are few)."""
    if n_tiles <= limit:
        return list(range(n_tiles))
    return sorted({int(i) for i in np.linspace(0, n_tiles - 1, limit).round()})


def step_grid() -> np.ndarray:
    """Candidate steps, ascending: powers of 2 in 1/STEPS_PER_OCTAVE octaves from MIN_STEP to MAX_STEP."""
    lo, hi = (round(STEPS_PER_OCTAVE * math.log2(s)) for s in (MIN_STEP, MAX_STEP))
    return np.exp2(np.arange(lo, hi + 1) / STEPS_PER_OCTAVE)


def predicted_bytes(coder: LatentCoder, sample: list[SampleTile], step: float, fixed_bytes: int,
                    scene_pixels: int, ratios: Sequence[float] = (1.0,)) -> int:
    """File size at `step` (group k's step: step * ratios[k]): the side information plus the sampled
    tiles' sections scaled to the scene."""
    tile_bytes = 0
    sample_pixels = 0
    for latents, (_, _, height, width), mask in sample:
        first, *further = (coder.code(a, step * r) for a, r in zip(latents, ratios))
        tile_bytes += tile_section_bytes(first.y_words.size, first.z_words.size, mask,
                                         [c.y_words.size + c.z_words.size for c in further])
        sample_pixels += height * width
    return fixed_bytes + round(tile_bytes * scene_pixels / sample_pixels)


def choose_step(coder: LatentCoder, sample: list[SampleTile], target_bytes: float, fixed_bytes: int,
                scene_pixels: int, ratios: Sequence[float] = (1.0,)) -> RateChoice:
    """The grid step whose predicted file size is nearest to `target_bytes` (by ratio).

    The size falls as the step grows, so a bisection finds the two steps around
    the target in about log2(len(grid)) codings of the sample.
    """
    grid = step_grid()
    sizes: dict[int, int] = {}

    def size(i: int) -> int:
        if i not in sizes:
            sizes[i] = predicted_bytes(coder, sample, float(grid[i]), fixed_bytes, scene_pixels, ratios)
        return sizes[i]

    lo, hi = 0, len(grid) - 1
    if size(lo) <= target_bytes:
        return RateChoice(float(grid[lo]), size(lo), reachable=size(lo) == target_bytes)
    reachable = size(hi) <= target_bytes
    if not reachable:  # the side information alone is near the target: get close without ruining the tiles
        target_bytes = NEAR_SMALLEST * size(hi)
    while hi - lo > 1:  # invariant: size(lo) > target >= size(hi)
        mid = (lo + hi) // 2
        if size(mid) > target_bytes:
            lo = mid
        else:
            hi = mid
    best = min((lo, hi), key=lambda i: abs(math.log(size(i) / target_bytes))) if reachable else hi
    return RateChoice(float(grid[best]), size(best), reachable=reachable, at_smallest=not reachable)
