"""Plane groups: a scene's weaker KLT planes coded through the network again, two at a time.

A network of limited width rebuilds a scene's two or three strongest KLT planes
but not the weaker ones (`components`), so past about 0.6 bpp a one-pass file
gains little from more bits. A file may therefore code its planes in groups,
each through the same network on its own: group 0 holds the leading planes,
each further group GROUP_PLANES more, in the network's leading channels with
the others zero. Each group has its own plane gain, which brings its leading
plane to the amplitude group 0's has (times FURTHER_GAIN), and its own latent
step, a ratio (STEP_RATIOS) times group 0's; the file stores both (container 4.0).

Under `-r`, the layouts of LAYOUT_GROUPS groups and STEP_RATIOS are tried on
the audited tiles, each at the step that reaches the requested rate, and the one
with the least error is kept. A scene whose planes a single group already
rebuilds keeps one group, as before 4.0. On the four CAVE eval scenes
(hificse-klt16-1.0), a FURTHER_GAIN of 1/√2, step ratios of 2.83 and 5.66, a
fourth group or groups of one plane each did no better (within 0.15 dB at
0.4 and 1 bpp; groups of one: 1.3–1.6 dB worse).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from hsicodec.container import MAX_PLANE_GAIN, MIN_PLANE_GAIN, PlaneGroup
from hsicodec.latent_coding import Analysis, LatentCoder
from hsicodec.plane_gain import Judged, RowsSide, Tile, below_reach, competes, judged, size_allowance
from hsicodec.rate_control import choose_step

GROUP_PLANES = 2
"""Planes per group: the shipped networks rebuild about two planes a pass."""
LAYOUT_GROUPS = (2, 3)
"""Layouts tried besides one group."""
STEP_RATIOS = (2.0, 4.0)
"""A further group's latent step over group 0's: its planes, brought to group 0's amplitude, need less
precision than group 0's for the same error in the scene."""
FURTHER_GAIN = 1.0
"""A further group's leading plane is brought to this fraction of group 0's leading plane's amplitude."""


def network_input(planes: np.ndarray, group: PlaneGroup) -> np.ndarray:
    """What E sees for `group`: its planes (of all the scene's (C, h, w)) in the leading channels, times its gain."""
    x = np.zeros_like(planes)
    x[: group.planes] = planes[group.first : group.first + group.planes] * np.float32(group.plane_gain)
    return x


def joined(outputs: list[np.ndarray], groups: tuple[PlaneGroup, ...]) -> np.ndarray:
    """The scene's planes (C, h, w) from G's output for each group, each gain undone; planes of no group are zero."""
    planes = np.zeros_like(outputs[0])
    for out, group in zip(outputs, groups):
        planes[group.first : group.first + group.planes] = out[: group.planes] / np.float32(group.plane_gain)
    return planes


def with_step(groups: tuple[PlaneGroup, ...], step: float) -> tuple[PlaneGroup, ...]:
    """The layout with group 0 at latent step `step` and every other group at the same ratio to it as before."""
    ratios = step_ratios(groups)
    return tuple(dataclasses.replace(g, latent_step=step * r) for g, r in zip(groups, ratios))


def step_ratios(groups: tuple[PlaneGroup, ...]) -> list[float]:
    """Each group's latent step over group 0's."""
    return [g.latent_step / groups[0].latent_step for g in groups]


def layout(n_groups: int, components: int, rms: np.ndarray, gain: float, step_ratio: float) -> tuple[PlaneGroup, ...]:
    """`n_groups` groups of GROUP_PLANES planes (group 0 at gain `gain`, step 1), as far as the planes
    go and have energy; `rms` (C,) is each plane's RMS at gain 1."""
    groups = [PlaneGroup(0, GROUP_PLANES, 1.0, gain)]
    for first in range(GROUP_PLANES, min(n_groups * GROUP_PLANES, components), GROUP_PLANES):
        if rms[first] <= 0:
            break
        further = float(np.clip(FURTHER_GAIN * gain * rms[0] / rms[first], MIN_PLANE_GAIN, MAX_PLANE_GAIN))
        groups.append(PlaneGroup(first, min(GROUP_PLANES, components - first), step_ratio, further))
    if len(groups) == 1:
        return (PlaneGroup(0, components, 1.0, gain),)
    return tuple(groups)


def choose_layout(coder: LatentCoder, tiles: list[Tile], gain: float, target_bytes: float, fixed_bytes: int,
                  scene_pixels: int, batch: int, side_after_rows: RowsSide | None = None,
                  single_judged: Judged | None = None) -> tuple[PlaneGroup, ...]:
    """The layout whose reconstruction of `tiles` (planes at gain 1) has the least error at the requested size.

    Candidates: one group of every plane at `gain` (the layout before 4.0), and
    LAYOUT_GROUPS groups at each of STEP_RATIOS. Each is coded at the common
    step that reaches the request; one that does not compete with one group
    (`plane_gain.competes`: its file after the row choice above `size_allowance`,
    or at its smallest file where one group reaches the request) is not considered. Where even
    one group's smallest file is above the request (a small scene), one group
    is kept without trying the others. The steps returned are ratios to group
    0's (group 0 at 1). `single_judged` is one group's result where it is
    already known (`plane_gain.choose_gain`'s, at `gain`), so it is not coded again.
    """
    components = tiles[0][0].shape[0]
    crops = [rect[2:] for _, rect, _ in tiles]
    truth = [p[:, :h, :w] for (p, _, _), (h, w) in zip(tiles, crops)]
    pixels = sum(h * w for h, w in crops)
    rms = np.sqrt(sum(np.square(t, dtype=np.float64).sum(axis=(1, 2)) for t in truth) / pixels)

    analyses: dict[tuple[int, int, int, float], Analysis] = {}

    def analysed(tile: int, group: PlaneGroup) -> Analysis:
        """E's output for a group of a tile; the layouts share their groups' inputs (steps aside)."""
        key = tile, group.first, group.planes, group.plane_gain
        if key not in analyses:
            analyses[key] = coder.analyse(network_input(tiles[tile][0], group))
        return analyses[key]

    def coded(groups: tuple[PlaneGroup, ...]) -> Judged:
        """(step choice, error) of the layout at the step that reaches the request."""
        latents = [[analysed(t, g) for g in groups] for t in range(len(tiles))]
        choice = choose_step(coder, [(a, rect, mask) for a, (_, rect, mask) in zip(latents, tiles)],
                             target_bytes, fixed_bytes, scene_pixels, step_ratios(groups))
        stepped = with_step(groups, choice.step)
        outputs = [coder.synthesise([coder.dequantise(a[k], g.latent_step) for a in latents], batch)
                   for k, g in enumerate(stepped)]
        rebuilt = [joined([out[t] for out in outputs], groups)[:, :h, :w] for t, (h, w) in enumerate(crops)]
        return judged(choice, fixed_bytes, truth, rebuilt, True, side_after_rows)

    single = layout(1, components, rms, gain, 1.0)
    candidates = {single: single_judged or coded(single)}
    if below_reach(target_bytes, candidates[single][0]):  # more groups would only add bytes
        return single
    reference = candidates[single][0]
    allowed = size_allowance(target_bytes, reference)
    for n_groups in LAYOUT_GROUPS:
        for ratio in STEP_RATIOS:
            groups = layout(n_groups, components, rms, gain, ratio)
            if groups not in candidates:
                candidates[groups] = coded(groups)
    fitting = [g for g, (choice, _) in candidates.items() if competes(choice, allowed, reference)]
    return min(fitting, key=lambda g: candidates[g][1])
