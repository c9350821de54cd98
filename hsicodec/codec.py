"""Scene <-> .hsic: the tiled compress and decompress pipelines.

Compression reads the scene tile by tile for the value range and spectral
statistics (exact, streamed; the KLT is fitted from them), keeping a sample of
tiles in memory. The sample chooses the quantisation step D that reaches the
requested rate (`rate_control`) by being coded at the steps it tries; D sets
the planes coded (those up to the last with a non-zero value) and the
precision of the stored basis rows. The file then takes the sampled tiles'
words from the search, and every other tile is read again, its planes
quantised and range-coded with P (`plane_coding`). Decompression decodes the
tiles a few at a time (P runs on their planes together), rebuilds their planes
at P's centroids and maps them back to spectra. Peak memory is set by the tile
size and the sample's cap, not by the scene size.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Callable, Collection, Iterator, Protocol

import numpy as np

from hsicodec.checkpoints import ModelEntry
from hsicodec.container import FileHeader, HsicReader, HsicWriter, Normalisation, Rect, TilePayload, side_bytes, \
    tile_section_bytes
from hsicodec.errors import ContainerError, DecodeError, InputError
from hsicodec.frontend import FrontEnd, fit_front_end
from hsicodec.io import SceneReader
from hsicodec.klt import SpectralStats
from hsicodec.nn.pyramid import Code
from hsicodec.plane_coding import PlaneCoder
from hsicodec.rate_control import CodedTiles, RateChoice, SampleModel, choose_step, sample_tiles

TILES_AT_ONCE = 4
"""Decoding runs P on the planes of this many tiles of one size together: as fast as the encoder's batches of
planes (`plane_coding.PLANES_AT_ONCE`)."""
DECODE_BYTES = 256 << 20
"""...and fewer when their codes and reconstructions (float64, 16 bytes a value) would pass this; a tile
that alone passes it is decoded alone."""
DEFAULT_TILE = 256
"""Tiles are coded independently (no context crosses their edges). Peak memory follows the tile and the
sample (`rate_control.SAMPLE_BYTES`), not the scene (`benchmarks/large_scene.py` measures it)."""


class Progress(Protocol):
    """A progress bar, as tqdm's: the work's `total` may be set once known, `update(n)` counts n steps."""

    total: float | None

    def update(self, n: float = 1) -> object: ...


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


def padded(u: np.ndarray, stride: int) -> np.ndarray:
    """Mirror-pad planes (K, h, w) to multiples of the wavelet's stride."""
    pad_h, pad_w = -u.shape[1] % stride, -u.shape[2] % stride
    return np.pad(u, ((0, 0), (0, pad_h), (0, pad_w)), mode="symmetric") if pad_h or pad_w else u


Tile = tuple[np.ndarray, np.ndarray | None]
"""A tile's block (h, w, B) in the source's sample type and its nodata mask (or None)."""


def scene_statistics(reader: SceneReader, grid: list[Rect], progress: Progress | None = None,
                     keep: Collection[int] = ()) -> tuple[SpectralStats, dict[int, Tile]]:
    """First pass: value range and spectral moments of the valid pixels, and the tiles of `keep` (grid
    indices), so that a sample is read once."""
    stats, kept = SpectralStats(reader.shape[2]), {}
    for index, rect in enumerate(grid):
        block = reader.read(*rect)
        mask = nodata_mask(block, reader.meta.nodata)
        _check_finite(block, mask, reader.path)
        bands = block.shape[-1]
        stats.update(block.reshape(-1, bands), None if mask is None else ~mask.reshape(-1, bands))
        if index in keep:
            kept[index] = block, mask
        if progress is not None:
            progress.update(1)
    return stats, kept


def compress_scene(reader: SceneReader, output: Path, entry: ModelEntry, coder: PlaneCoder, target_bpp: float,
                   tile_size: int = DEFAULT_TILE, progress: Progress | None = None) -> RateChoice:
    """Write `reader`'s scene to `output` (.hsic) at about `target_bpp` (file bits / (H*W)), atomically;
    returns the step chosen. Progress counts tiles: each read for the statistics, sampled, and coded."""
    height, width, bands = reader.shape
    if height * width * bands == 0:
        raise InputError(f"{reader.path}: scene is empty ({height}x{width}x{bands})")
    header = FileHeader(height=height, width=width, bands=bands, dtype=reader.dtype.name,
                        byteorder=reader.meta.byteorder, tile_size=tile_size, components=0,
                        model_name=entry.name, model_id=entry.model_id, step=1.0)
    grid = header.tile_grid()
    sampled = sample_tiles(len(grid), bands * min(tile_size, height) * min(tile_size, width) * reader.dtype.itemsize)
    if progress is not None:
        progress.total = 2 * len(grid) + len(sampled)
    statistics, sample = scene_statistics(reader, grid, progress, keep=set(sampled))
    front = fit_front_end(statistics)
    metadata = {"scene": reader.meta.to_json(), "source_name": reader.path.name,
                "source_bytes": reader.storage_bytes, "target_bpp": target_bpp}

    def code_tile(block: np.ndarray, mask: np.ndarray | None, stored: FrontEnd, step: float) -> tuple[np.ndarray, int]:
        """A tile's words and checksum, its planes on `stored`'s rows quantised at step D."""
        return coder.encode(coder.quantise(padded(stored.planes(block, mask), coder.model.stride), step))

    model = SampleModel()
    for index, (block, mask) in sample.items():
        model.add(index, coder.analyse(padded(front.planes(block, mask), coder.model.stride)))
        if progress is not None:
            progress.update(1)

    def code_sample(planes: int, step: float, tiles: list[int]) -> CodedTiles:
        stored = front.stored(planes, step)
        return {index: code_tile(*sample[index], stored, step) for index in tiles}

    def side(planes: int, step: float) -> int:
        """Every byte but the range coder's words: header, sections, and each tile section's framing."""
        stored = front.stored(planes, step)
        sections = side_bytes(dataclasses.replace(header, components=planes, step=step), stored.norm, stored.basis,
                              metadata)
        return sections + len(grid) * tile_section_bytes(0)

    scale = height * width / sum(grid[i][2] * grid[i][3] for i in sampled)
    choice = choose_step(model, scale, target_bpp * height * width / 8, side, code_sample)
    front = front.stored(choice.planes, choice.step)
    header = dataclasses.replace(header, components=choice.planes, step=choice.step)
    with HsicWriter(output, header, front.norm, front.basis, metadata) as writer:
        for index, (row0, col0, tile_height, tile_width) in enumerate(grid):
            if index in choice.tiles:  # coded by the search at this step
                (words, crc), mask = choice.tiles[index], sample.pop(index)[1]
            else:
                block = reader.read(row0, col0, tile_height, tile_width)
                mask = nodata_mask(block, reader.meta.nodata)
                words, crc = code_tile(block, mask, front, choice.step)
            writer.add_tile(TilePayload(index, row0, col0, tile_height, tile_width, words, crc, mask))
            if progress is not None:
                progress.update(1)
    return choice


def _cast(values: np.ndarray, dtype: np.dtype, norm: Normalisation) -> np.ndarray:
    """Reconstructed values -> the source sample type, clipped to the scene's range (and the type's)."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.rint(np.clip(values, max(norm.lo, info.min), min(norm.hi, info.max))).astype(dtype)
    return np.clip(values, norm.lo, norm.hi).astype(dtype)


def salvage_fill(dtype: np.dtype, nodata: float | None) -> float:
    """The value of a damaged tile's samples: the scene's nodata, else NaN, the type's minimum (signed) or 0."""
    if nodata is not None:
        return nodata
    if dtype.kind == "f":
        return float("nan")
    return float(np.iinfo(dtype).min) if dtype.kind == "i" else 0.0


Damage = Callable[[int, Rect, str], None]


def decode_tiles(reader: HsicReader, coder: PlaneCoder, nodata: float | None,
                 progress: Progress | None = None, window: Rect | None = None,
                 on_damage: Damage | None = None) -> Iterator[tuple[int, int, np.ndarray]]:
    """(row0, col0, block) of every tile, in the source's sample type.

    With a window (row0, col0, height, width), only the tiles it touches are
    decoded, cropped to it, and positions are relative to its corner. With
    `on_damage`, a tile that fails its checks is reported to it (index, rect,
    reason) and filled with `salvage_fill` instead of stopping the decode.
    """
    header = reader.header
    dtype = np.dtype(header.dtype)
    front = FrontEnd(reader.norm, reader.basis)
    grid = header.tile_grid()
    stride = coder.model.stride

    def padded_shape(index: int) -> tuple[int, int]:
        height, width = grid[index][2:]
        return -(-height // stride) * stride, -(-width // stride) * stride

    def decoded(batch: list[int]) -> dict[int, tuple[TilePayload, Code] | ContainerError | DecodeError]:
        """Each tile's payload and reconstruction, or the error that says why it is damaged."""
        out: dict[int, tuple[TilePayload, Code] | ContainerError | DecodeError] = {}
        tiles = {}
        for index in batch:
            try:
                tiles[index] = reader.read_tile(index)
            except ContainerError as exc:
                out[index] = exc
        streams = [(tile.words, tile.value_crc) for tile in tiles.values()]
        results = coder.decode_tiles(streams, header.components, *padded_shape(batch[0])) if streams else []
        for (index, tile), result in zip(tiles.items(), results):
            damaged = isinstance(result, DecodeError)
            out[index] = DecodeError(f"{reader.path}: tile {index}: {result}") if damaged else (tile, result[1])
        return out

    def block_of(index: int, tile: TilePayload, rebuilt: Code) -> np.ndarray:
        height, width = grid[index][2:]
        planes = coder.dequantise(rebuilt, header.step)[:, :height, :width]
        block = _cast(front.spectra(planes, dtype), dtype, front.norm)
        if tile.nodata_mask is not None:
            block[tile.nodata_mask] = nodata
        return block

    indices = list(range(header.n_tiles) if window is None else reader.tiles_in_window(*window))
    tile_bytes = 16 * header.components * math.prod(padded_shape(0))
    for batch in _batches(indices, padded_shape, min(TILES_AT_ONCE, max(1, DECODE_BYTES // max(tile_bytes, 1)))):
        outcomes = decoded(batch)
        for index in batch:
            row0, col0, height, width = grid[index]
            outcome = outcomes.pop(index)
            if isinstance(outcome, Exception):
                if on_damage is None:
                    raise outcome from None
                on_damage(index, grid[index], str(outcome))
                block = np.full((height, width, header.bands), salvage_fill(dtype, nodata), dtype)
            else:
                block = block_of(index, *outcome)
            if progress is not None:
                progress.update(1)
            yield (row0, col0, block) if window is None else _crop(row0, col0, block, window)


def _batches(indices: list[int], shape: Callable[[int], tuple[int, int]], size: int) -> Iterator[list[int]]:
    """`indices` in order, in runs of at most `size` consecutive tiles of one shape."""
    batch: list[int] = []
    for index in indices:
        if batch and (len(batch) == size or shape(index) != shape(batch[0])):
            yield batch
            batch = []
        batch.append(index)
    if batch:
        yield batch


def _crop(row0: int, col0: int, block: np.ndarray, window: Rect) -> tuple[int, int, np.ndarray]:
    """The part of a tile inside the window, positioned relative to the window's corner."""
    w_row, w_col, w_height, w_width = window
    top, left = max(row0, w_row), max(col0, w_col)
    bottom = min(row0 + block.shape[0], w_row + w_height)
    right = min(col0 + block.shape[1], w_col + w_width)
    return top - w_row, left - w_col, block[top - row0 : bottom - row0, left - col0 : right - col0]
