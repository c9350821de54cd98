"""The gain g at which a model codes a scene best: E sees the planes times g, G's output is divided by g.

The networks are not scale-invariant. Trained on scenes of every sensor, each
rebuilds planes best near the amplitudes it saw most, so a scene with strong
planes (CAVE sponges) is coded better at a smaller g and one with weak planes
at a larger g. With a requested rate, candidate gains are tried on the
audited tiles, each at the latent step that reaches the rate, from g = 1 half
an octave at a time for as long as the error falls; the gain kept is stored
in the file (header plane_gain).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from hsicodec.components import ComponentChoice, choose_components
from hsicodec.container import Rect
from hsicodec.latent_coding import LatentCoder
from hsicodec.rate_control import RateChoice, choose_step

GAINS = tuple(2.0 ** (k / 2) for k in range(-4, 5))
"""Candidates, 1/4 ... 4 in half octaves."""
RATE_SLACK = 1.03
"""A candidate competes only if its file is at most 3% larger than the request (`size_allowance`):
a larger file would win on quality it paid for."""
Tile = tuple[np.ndarray, Rect, "np.ndarray | None"]
"""A tile's planes at gain 1 (padded to the network's stride), its rectangle and its nodata mask."""
RowsSide = Callable[[ComponentChoice], int]
"""The file's side information in bytes once `components` has chosen its basis rows (fewer, coarser rows)."""
Judged = tuple[RateChoice, float]
"""A candidate's step choice (with the file it predicts) and its tiles' error (`judged`)."""


def below_reach(target_bytes: float, choice: RateChoice) -> bool:
    """Whether the request is below the smallest file `choice`'s candidate can give (a small scene,
    whose side information is near the request)."""
    return not choice.reachable and choice.predicted_bytes > target_bytes


def size_allowance(target_bytes: float, reference: RateChoice) -> float:
    """The largest predicted file a candidate may need, given the reference candidate's choice:
    RATE_SLACK over the request or, where the request is below the reference's reach, no more than
    the reference's file, since the smallest file is what was asked for."""
    if below_reach(target_bytes, reference):
        return float(reference.predicted_bytes)
    return RATE_SLACK * max(target_bytes, reference.predicted_bytes)


def competes(choice: RateChoice, allowed: float, reference: RateChoice) -> bool:
    """Whether a candidate may replace the reference candidate: its file within `allowed`, and not at
    its smallest file where the reference reaches below the request. A candidate at its smallest file
    is so on the audited tiles only; the scene's other tiles can make it larger (CAVE sponges at
    `-r 0.2`, hific-klt16-0.4: three groups predicted 1,639 bytes and wrote 1,771)."""
    return choice.predicted_bytes <= allowed and (not choice.at_smallest or reference.at_smallest)


def judged(choice: RateChoice, fixed_bytes: int, planes: list[np.ndarray], rebuilt: list[np.ndarray],
           drops_planes: bool, side_after_rows: RowsSide | None) -> Judged:
    """A candidate's (step choice, error) from the tiles' planes and its reconstructions, both at gain 1.

    The error is `gain_distortion`'s. With `side_after_rows`, the file is the one
    predicted once the rows are chosen from these reconstructions: the side
    information it gives in place of `fixed_bytes` (without, every row stored).
    On a small scene the basis is much of the file, and a candidate that G
    rebuilds fewer planes of stores fewer rows: compared before the row choice,
    it would look larger than the file it gives. The row choice is made once
    for both.
    """
    if side_after_rows is None:
        return choice, gain_distortion(planes, rebuilt, drops_planes)
    rows = choose_components(planes, rebuilt)
    error = rows.distortion if drops_planes else mean_error(planes, rebuilt)
    predicted = choice.predicted_bytes - fixed_bytes + side_after_rows(rows)
    return dataclasses.replace(choice, predicted_bytes=predicted), error


def mean_error(planes: list[np.ndarray], rebuilt: list[np.ndarray]) -> float:
    """Per-band MSE (normalised scene) of the tiles' reconstructions, every plane kept."""
    pixels = sum(p[0].size for p in planes)
    return float(sum(np.square(p - r, dtype=np.float64).sum() for p, r in zip(planes, rebuilt)) / pixels)


def gain_distortion(planes: list[np.ndarray], rebuilt: list[np.ndarray], drops_planes: bool) -> float:
    """Per-band MSE (normalised scene) of the tiles' reconstructions, both at gain 1.

    For the ``klt`` front-end, a plane the model rebuilds no better than zero
    counts as left out (its energy), as `components.choose_components` will store it.
    """
    if drops_planes:
        return choose_components(planes, rebuilt).distortion
    return mean_error(planes, rebuilt)


def choose_gain(coder: LatentCoder, tiles: list[Tile], target_bytes: float, fixed_bytes: int, scene_pixels: int,
                drops_planes: bool, batch: int, side_after_rows: RowsSide | None = None) -> tuple[float, Judged]:
    """The gain at which `tiles` come back with the least error at the requested file size, by descent,
    and that candidate's `Judged` (the one-group layout `plane_groups.choose_layout` starts from).

    A candidate's file is the one predicted after the row choice (`judged`),
    and it competes with gain 1 as `competes` says.

    A descent from gain 1 over the candidates, half an octave at a time, while
    the error falls, so that three to six candidates are coded rather than all
    nine. The error has a broad minimum: on 4 tiles of CAVE sponges at 0.4
    bpp the descent stops at 1/√2, whose error is 2.3% (0.1 dB) above the best
    of all nine (1/4) and 24% below gain 1's (`tests/test_plane_gain.py`).
    """
    crops = [rect[2:] for _, rect, _ in tiles]
    truth = [p[:, :h, :w] for (p, _, _), (h, w) in zip(tiles, crops)]
    results: dict[int, Judged] = {}

    def coded(k: int) -> Judged:
        """(step choice, error) at candidate k, each at the step that reaches the request."""
        if k not in results:
            gain = GAINS[k]
            latents = [coder.analyse(planes * np.float32(gain)) for planes, _, _ in tiles]
            choice = choose_step(coder, [([a], rect, mask) for a, (_, rect, mask) in zip(latents, tiles)],
                                 target_bytes, fixed_bytes, scene_pixels)
            rebuilt = coder.synthesise([coder.dequantise(a, choice.step) for a in latents], batch)
            cropped = [r[:, :h, :w] / gain for r, (h, w) in zip(rebuilt, crops)]
            results[k] = judged(choice, fixed_bytes, truth, cropped, drops_planes, side_after_rows)
        return results[k]

    unit = GAINS.index(1.0)
    reference = coded(unit)[0]
    allowed = size_allowance(target_bytes, reference)

    def better(k: int, than: int) -> bool:
        return 0 <= k < len(GAINS) and competes(coded(k)[0], allowed, reference) and coded(k)[1] < coded(than)[1]

    best = unit
    for direction in (-1, 1):
        while better(best + direction, best):
            best += direction
        if best != unit:
            break
    return GAINS[best], coded(best)
