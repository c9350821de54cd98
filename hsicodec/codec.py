"""Scene <-> .hsic: the tiled compress and decompress pipelines.

Compression reads the scene twice, tile by tile: once for the value range and
spectral statistics (exact, streamed), once to code each tile; with a target
rate, up to 32 sampled tiles are analysed in between to choose the latent step
(`rate_control`) and kept for the second pass; before that, a few of them
(the audited tiles) are coded at candidate plane gains to choose the one
that codes the scene best (`plane_gain`). With the ``klt`` front-end, the
audited tiles are decoded to choose the basis rows worth storing (`components`),
and the sample is analysed and the step chosen again with that basis. Peak memory is set by the tile
size, not by the scene size.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from hsicodec.checkpoints import ModelEntry
from hsicodec.components import AUDIT_TILES, ComponentChoice, choose_components
from hsicodec.container import (CodedLatents, FileHeader, HsicReader, HsicWriter, Normalisation, PlaneGroup, Rect,
                                TilePayload, side_bytes)
from hsicodec.errors import ContainerError, DecodeError, InputError
from hsicodec.frontend import FrontEnd, fit_front_end
from hsicodec.io import SceneReader
from hsicodec.klt import SpectralStats
from hsicodec.latent_coding import Analysis, LatentCoder
from hsicodec.latent_refinement import REFINE_ITERATIONS, refine
from hsicodec.nn.hific import HiFiC
from hsicodec.plane_gain import choose_gain
from hsicodec.plane_groups import choose_layout, joined, network_input, step_ratios, with_step
from hsicodec.rate_control import SAMPLE_TILES, RateChoice, choose_step, sample_tiles

DEFAULT_TILE = 256
DECODE_BATCH = 4
"""Tiles run through G together: 1.9x faster per tile than one at a time on a 2-core CPU."""
Progress = Callable[[int], None]


def nodata_mask(block: np.ndarray, nodata: float | None) -> np.ndarray | None:
    """Samples equal to the scene's nodata value (NaN nodata matches NaN), or None."""
    if nodata is None:
        return None
    mask = np.isnan(block) if np.isnan(nodata) else block == nodata
    return mask if mask.any() else None


def _check_finite(block: np.ndarray, mask: np.ndarray | None, path: Path) -> None:
    if block.dtype.kind != "f":
        return
    bad = ~np.isfinite(block)
    if mask is not None:
        bad &= ~mask
    if bad.any():
        raise InputError(f"{path}: scene has NaN or infinite values that are not its nodata value; "
                         "set a nodata value in its header or clean the scene")


MIN_PLANE = 2 * HiFiC.STRIDE  # E and G mirror-pad their 2x2 latent: it must not be 1 pixel wide


def pad_to_stride(u: np.ndarray) -> np.ndarray:
    """Mirror-pad planes (C, h, w) to multiples of the network stride, at least MIN_PLANE."""
    height, width = (max(MIN_PLANE, n + (-n % HiFiC.STRIDE)) for n in u.shape[1:])
    pad_h, pad_w = height - u.shape[1], width - u.shape[2]
    return np.pad(u, ((0, 0), (0, pad_h), (0, pad_w)), mode="symmetric") if pad_h or pad_w else u


def scene_statistics(reader: SceneReader, grid: list[Rect], progress: Progress | None = None) -> SpectralStats:
    """First pass: value range and spectral moments of the valid pixels."""
    stats = SpectralStats(reader.shape[2])
    for rect in grid:
        block = reader.read(*rect)
        mask = nodata_mask(block, reader.meta.nodata)
        _check_finite(block, mask, reader.path)
        bands = block.shape[-1]
        stats.update(block.reshape(-1, bands), None if mask is None else ~mask.reshape(-1, bands))
        if progress:
            progress(1)
    return stats


Sample = dict[int, tuple[np.ndarray | None, list[Analysis], np.ndarray | None]]
"""Analysed tiles by index: padded planes (kept for the audited tiles only), latents per group, nodata mask."""


def compress_scene(reader: SceneReader, output: Path, entry: ModelEntry, coder: LatentCoder,
                   tile_size: int = DEFAULT_TILE, progress: Progress | None = None,
                   target_bpp: float | None = None, choose_rows: bool = True,
                   choose_plane_gain: bool = True, choose_groups: bool = True,
                   refine_iterations: int = REFINE_ITERATIONS) -> RateChoice | None:
    """Write `reader`'s scene to `output` (.hsic), atomically. Progress counts `progress_total` steps.

    With `target_bpp` (file bits / (H*W)), the plane gain is chosen first
    (`plane_gain`; `choose_plane_gain=False` keeps gain 1) and, for the ``klt``
    front-end, the plane groups (`plane_groups`; `choose_groups=False` keeps
    one), then the latent step that reaches the rate, and the choice is
    returned; otherwise the model's own step (1), gain 1 and one group are used.
    For the ``klt`` front-end, the basis rows are then chosen by what the model
    rebuilds at that step (`components`), and the step is chosen again;
    `choose_rows=False` stores every row at the container's default budget.
    Each tile's latents are refined for `refine_iterations` before they are
    coded (`latent_refinement`; 0 codes E's own), at the rate and step chosen.
    """
    height, width, bands = reader.shape
    if height * width * bands == 0:
        raise InputError(f"{reader.path}: scene is empty ({height}x{width}x{bands})")
    entry.check_fits(bands, reader.path)
    header = FileHeader(height=height, width=width, bands=bands, dtype=reader.dtype.name,
                        byteorder=reader.meta.byteorder, tile_size=tile_size,
                        components=entry.channels if entry.front_end == "klt" else 0,
                        model_name=entry.name, model_sha256=entry.sha256)
    grid = header.tile_grid()
    stats = scene_statistics(reader, grid, progress)
    front = fit_front_end(stats, entry.front_end, entry.channels)
    metadata = {"scene": reader.meta.to_json(), "source_name": reader.path.name,
                "source_bytes": reader.storage_bytes, "target_bpp": target_bpp}
    groups = header.groups  # one group of every plane at step 1 and gain 1, until chosen

    def read_planes(index: int) -> tuple[np.ndarray, np.ndarray | None]:
        block = reader.read(*grid[index])  # with the current `front`, refitted once the rows are chosen
        mask = nodata_mask(block, reader.meta.nodata)
        return pad_to_stride(front.planes(block, mask)), mask

    def analysed(index: int) -> tuple[np.ndarray, list[Analysis], np.ndarray | None]:
        planes, mask = read_planes(index)
        return planes, [coder.analyse(network_input(planes, g)) for g in groups], mask

    def sampled_tiles(indices: list[int]) -> Sample:
        sample = {}
        for index in indices:
            planes, latents, mask = analysed(index)
            sample[index] = planes if index in audited else None, latents, mask
            if progress:
                progress(1)
        return sample

    def step_for(sample: Sample) -> RateChoice | None:
        if not rate_controlled:
            return None
        fixed = side_bytes(dataclasses.replace(header, plane_groups=groups[1:]), front.norm, front.basis, metadata)
        return choose_step(coder, [(latents, grid[i], mask) for i, (_, latents, mask) in sample.items()],
                           target_bpp * height * width / 8, fixed, height * width, step_ratios(groups))

    def layout_for(indices: set[int]) -> tuple[PlaneGroup, ...]:
        """The plane gain, then (klt) the plane groups, chosen on the audited tiles."""
        tiles = []
        for index in sorted(indices):
            planes, mask = read_planes(index)
            tiles.append((planes, grid[index], mask))
        target, pixels = target_bpp * height * width / 8, height * width
        fixed = side_bytes(header, front.norm, front.basis, metadata)
        batch = synthesis_batch(len(tiles))

        def side_after_rows(rows: ComponentChoice) -> int:
            return side_bytes(header, front.norm, front.with_rows(rows.kept, rows.error_budget).basis, metadata)

        rows_side = side_after_rows if choosing else None
        gain, single = (choose_gain(coder, tiles, target, fixed, pixels, entry.front_end == "klt", batch, rows_side)
                        if choose_plane_gain else (1.0, None))
        if progress:
            progress(len(tiles))
        if entry.front_end != "klt" or not choose_groups:
            return (dataclasses.replace(groups[0], plane_gain=gain),)
        return choose_layout(coder, tiles, gain, target, fixed, pixels, batch, rows_side, single)

    rate_controlled, choosing = target_bpp is not None, entry.front_end == "klt" and choose_rows
    sampled = sample_tiles(len(grid), SAMPLE_TILES if rate_controlled else AUDIT_TILES)
    audited = {sampled[i] for i in sample_tiles(len(sampled), AUDIT_TILES)}
    if rate_controlled and (choose_plane_gain or choose_groups):
        groups = layout_for(audited)
    sample = sampled_tiles(sampled) if rate_controlled or choosing else {}
    choice = step_for(sample)
    groups = with_step(groups, choice.step if choice else 1.0)
    if choosing:
        kept = choose_components(*audit(coder, {i: sample[i] for i in audited}, grid, groups))
        front = front.with_rows(kept.kept, kept.error_budget)
        groups = holding_kept(groups, kept.kept)
        sample = sampled_tiles(sampled) if rate_controlled else {}
        choice = step_for(sample)
        groups = with_step(groups, choice.step if choice else 1.0)
    header = dataclasses.replace(header, latent_step=groups[0].latent_step, plane_gain=groups[0].plane_gain,
                                 plane_groups=groups[1:])
    with HsicWriter(output, header, front.norm, front.basis, metadata) as writer:
        for index, (row0, col0, tile_height, tile_width) in enumerate(grid):
            planes, latents, mask = sample.pop(index, None) or analysed(index)
            if refine_iterations:
                planes = read_planes(index)[0] if planes is None else planes
                latents = [refine(coder, a, network_input(planes, g), plane_weights(front, g, len(planes)),
                                  g.latent_step, refine_iterations, (tile_height, tile_width)).latents
                           for a, g in zip(latents, groups)]
            first, *further = (coder.code(a, g.latent_step) for a, g in zip(latents, groups))
            writer.add_tile(TilePayload(index=index, row0=row0, col0=col0, height=tile_height,
                                        width=tile_width, y_shape=first.y_shape, z_shape=first.z_shape,
                                        y_words=first.y_words, z_words=first.z_words,
                                        symbol_crc=first.symbol_crc, nodata_mask=mask,
                                        groups=tuple(further)))
            if progress:
                progress(1)
    if choice is None:
        return None
    return dataclasses.replace(choice, plane_gain=groups[0].plane_gain, plane_groups=len(groups))


def plane_weights(front: FrontEnd, group: PlaneGroup, channels: int) -> np.ndarray:
    """How much the error of each of E's `channels` input planes for `group` counts in the scene: 1 for
    the group's planes whose basis row the file stores, 0 for the others (G's output there is never used)."""
    stored = np.ones(channels, bool) if front.basis is None else np.any(front.basis.basis != 0, axis=1)
    weights = np.zeros(channels, np.float32)
    weights[: group.planes] = stored[group.first : group.first + group.planes]
    return weights


def holding_kept(groups: tuple[PlaneGroup, ...], kept: np.ndarray) -> tuple[PlaneGroup, ...]:
    """The layout without its trailing groups whose planes are all left out (group 0 always stays)."""
    while len(groups) > 1 and not kept[groups[-1].first : groups[-1].first + groups[-1].planes].any():
        groups = groups[:-1]
    return groups


def synthesis_batch(n_tiles: int) -> int:
    """G's batch for `n_tiles` tiles: DECODE_BATCH, or all of them when fewer (a 256x256 scene's one tile
    goes through G alone, not padded to four). The decoder takes it for the file's tiles, fixed per file (see
    LatentCoder.synthesise); the encoder's searches for the audited ones, the same batch on such a file."""
    return min(DECODE_BATCH, n_tiles)


def audit(coder: LatentCoder, sample: Sample, grid: list[Rect], groups: tuple[PlaneGroup, ...]) -> tuple[list, list]:
    """The planes of sampled tiles, cropped to the scene, and the model's reconstructions of them with the
    file's plane groups (each at its step, its gain undone)."""
    batch = synthesis_batch(len(sample))
    outputs = [coder.synthesise([coder.dequantise(latents[k], g.latent_step) for _, latents, _ in sample.values()],
                                batch) for k, g in enumerate(groups)]
    crops = [grid[i][2:] for i in sample]
    rebuilt = [joined([out[t] for out in outputs], groups) for t in range(len(crops))]
    return ([planes[:, :h, :w] for (planes, _, _), (h, w) in zip(sample.values(), crops)],
            [r[:, :h, :w] for r, (h, w) in zip(rebuilt, crops)])


def progress_total(n_tiles: int, rate_controlled: bool, chooses_rows: bool, chooses_layout: bool = True) -> int:
    """Steps `compress_scene` reports: every tile twice, plus the tiles sampled to choose the step and,
    for a ``klt`` model, to choose the rows (with a rate, the sample is analysed again after the choice),
    and with a rate, the audited tiles once more for the plane gain and groups."""
    sampled = len(sample_tiles(n_tiles, SAMPLE_TILES if rate_controlled else AUDIT_TILES))
    passes = (1 if rate_controlled else 0) + (1 if chooses_rows else 0)
    layout = len(sample_tiles(sampled, AUDIT_TILES)) if rate_controlled and chooses_layout else 0
    return 2 * n_tiles + passes * sampled + layout


def _cast(values: np.ndarray, dtype: np.dtype, norm: Normalisation) -> np.ndarray:
    """Reconstructed values -> the source sample type, clipped to the scene's range."""
    values = np.clip(values, norm.lo, norm.hi)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype)


def salvage_fill(dtype: np.dtype, nodata: float | None) -> float:
    """The value of a damaged tile's samples: the scene's nodata, else NaN, the type's minimum (signed) or 0."""
    if nodata is not None:
        return nodata
    if dtype.kind == "f":
        return float("nan")
    return float(np.iinfo(dtype).min) if dtype.kind == "i" else 0.0


Damage = Callable[[int, Rect, str], None]


def decode_tiles(reader: HsicReader, coder: LatentCoder, nodata: float | None,
                 progress: Progress | None = None, window: Rect | None = None,
                 on_damage: Damage | None = None) -> Iterator[tuple[int, int, np.ndarray]]:
    """(row0, col0, block) of every tile, in the source's sample type.

    Tiles are entropy-decoded one by one and run through G DECODE_BATCH at a
    time (fewer when the file has fewer tiles). With a window (row0, col0,
    height, width), only the tiles it touches are decoded, cropped to it, and
    positions are relative to its corner. With `on_damage`, a tile that fails
    its checks is reported to it (index, rect, reason) and filled with
    `salvage_fill` instead of stopping the decode.
    """
    dtype = np.dtype(reader.header.dtype)
    front = FrontEnd(reader.norm, reader.basis)
    groups = reader.header.groups
    grid = reader.header.tile_grid()
    batch = synthesis_batch(reader.header.n_tiles)

    def latents_of(index: int) -> tuple[list[np.ndarray], np.ndarray | None] | None:
        """The tile's dequantised y of each plane group and its nodata mask, or None for a damaged tile
        reported to `on_damage`."""
        try:
            tile = reader.read_tile(index)
            first = CodedLatents(tile.y_shape, tile.z_shape, tile.y_words, tile.z_words, tile.symbol_crc)
            return [coder.decode_latents(coded, g.latent_step)
                    for coded, g in zip((first, *tile.groups), groups)], tile.nodata_mask
        except (ContainerError, DecodeError) as exc:
            reason = str(exc) if isinstance(exc, ContainerError) else f"{reader.path}: tile {index}: {exc}"
            if on_damage is None:
                raise type(exc)(reason) from None
            on_damage(index, grid[index], reason)
            return None

    def block_of(index: int, planes: np.ndarray | None, mask: np.ndarray | None) -> np.ndarray:
        height, width = grid[index][2:]
        if planes is None:
            return np.full((height, width, reader.header.bands), salvage_fill(dtype, nodata), dtype)
        block = _cast(front.spectra(planes[:, :height, :width]), dtype, front.norm)
        if mask is not None:
            block[mask] = nodata
        return block

    indices = list(range(reader.header.n_tiles) if window is None else reader.tiles_in_window(*window))
    for start in range(0, len(indices), batch):
        group = indices[start:start + batch]
        decoded = {index: found for index in group if (found := latents_of(index)) is not None}
        outputs = [coder.synthesise([y_hats[k] for y_hats, _ in decoded.values()], batch) for k in range(len(groups))]
        planes = {index: joined([out[t] for out in outputs], groups) for t, index in enumerate(decoded)}
        for index in group:
            row0, col0 = grid[index][:2]
            block = block_of(index, planes.get(index), decoded[index][1] if index in decoded else None)
            if progress:
                progress(1)
            yield (row0, col0, block) if window is None else _crop(row0, col0, block, window)


def _crop(row0: int, col0: int, block: np.ndarray, window: Rect) -> tuple[int, int, np.ndarray]:
    """The part of a tile inside the window, positioned relative to the window's corner."""
    w_row, w_col, w_height, w_width = window
    top, left = max(row0, w_row), max(col0, w_col)
    bottom = min(row0 + block.shape[0], w_row + w_height)
    right = min(col0 + block.shape[1], w_col + w_width)
    return top - w_row, left - w_col, block[top - row0 : bottom - row0, left - col0 : right - col0]

