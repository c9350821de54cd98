"""Range coding of one tile's KLT planes with the wavelet pyramid's P, both directions together.

Planes are coded one after the other, each after the previous one's code (P's
cross-plane context). A plane starts with one flag per level saying whether
the level holds any non-zero value; the levels that do not are not coded (nor
is P run for them). Then every pass of `WaveletPyramid.walk` is appended to
one constriction range coder: a value q is coded with the table of the
discretised Gaussian nearest P's, its scale the nearest of SCALE_TABLE and its
mean the nearest multiple of 1/MEAN_GRID (`_pass`). The encoder, which has
every plane's code, runs P on several planes at once; a decoder walks the same
passes over a code of zeros, one plane after the other (of several tiles at
once), and fills each pass in turn, so it computes the same means and scales
from the same values, and rebuilds each value as the mean of P's Gaussian
within its quantisation bin (`centroid`), not the bin's centre. P's nets
compute in integers (`nn.integer`), so that encoders and decoders on any
machine, and batches of any size, agree on every mean and scale; a CRC32 of
every value checks that they did. (P also runs on the planes of tiles that do
not code a level when another tile of the batch does: that changes nothing.)
"""
from __future__ import annotations

import constriction
import numpy as np
import torch

from hsicodec.entropy import (CdfTables, check_exhausted, decode_from, encode_into, range_decoder,
                              symbol_checksum)
from hsicodec.errors import DecodeError
from hsicodec.nn.integer import IntegerNet
from hsicodec.nn.pyramid import SCALE_BOUND, Code, WaveletPyramid, centroid, standard_cdf

SCALE_TABLE = np.geomspace(0.11, 256.0, 64)
"""Scales of the Gaussian tables, a ratio of 1.13 apart, so that coding with the nearest one costs little over
the exact scale. A larger scale uses the last table (its escapes code any value)."""
MEAN_GRID = 8
"""Means are coded to the nearest multiple of 1/MEAN_GRID, each fraction with its own tables: a mean rounded to
an integer, as one zero-mean table per scale needs, cost several percent of the bits (docs/core-bakeoff.md)."""

PLANES_AT_ONCE = 4
"""The encoder runs P on this many planes at once: batches of 4 to 8 ran fastest here, and 4 adds no memory
(docs/core-bakeoff.md)."""

FLAG_MODEL = constriction.stream.model.Bernoulli(0.5, perfect=False)
"""A plane's level flags are coded with one bit each."""


def scale_tables(scales: np.ndarray = SCALE_TABLE) -> CdfTables:
    """The discretised Gaussian of every scale and mean fraction, quantised to integer CDFs by compressai
    (stored with a model, see `checkpoints`). Row s * MEAN_GRID + j + MEAN_GRID // 2 has scale `scales[s]`
    and mean j / MEAN_GRID (j from -MEAN_GRID // 2 to MEAN_GRID // 2 - 1) and codes values from -c to c
    around the integer part of the mean, c covering all but compressai's tail mass."""
    from hsicodec._compressai import GaussianConditional

    gaussian = GaussianConditional(None)
    multiplier = -float(gaussian._standardized_quantile(gaussian.tail_mass / 2))
    fractions = np.arange(-(MEAN_GRID // 2), MEAN_GRID // 2) / MEAN_GRID
    scale = torch.tensor(np.repeat(scales, MEAN_GRID), dtype=torch.float64)[:, None]
    mean = torch.tensor(np.tile(fractions, len(scales)), dtype=torch.float64)[:, None]
    centre = torch.ceil(scale[:, 0] * multiplier).to(torch.int32) + 1  # one more for the mean's fraction
    length = 2 * centre + 1
    values = torch.arange(int(length.max()))[None] - centre[:, None]
    pmf = standard_cdf((values + 0.5 - mean) / scale) - standard_cdf((values - 0.5 - mean) / scale)
    edge = centre[:, None] + 0.5  # the table's values lie within edge of the mean's integer part
    tails = standard_cdf((-edge - mean) / scale) + standard_cdf((mean - edge) / scale)
    cdf = gaussian._pmf_to_cdf(pmf.float(), tails.float(), length, int(length.max()))
    return CdfTables(cdf.numpy(), (length + 2).numpy(), (-centre).numpy())


class PlaneCoder:
    """Codes and decodes tiles of planes (K, h, w), h and w multiples of the model's stride."""

    def __init__(self, model: WaveletPyramid, tables: CdfTables, scales: np.ndarray = SCALE_TABLE) -> None:
        """`model`: P with integer nets (`WaveletPyramid.exact`), so that every machine computes the same
        Gaussians."""
        if not isinstance(model.net, IntegerNet):
            raise ValueError("a plane coder needs P with integer nets (WaveletPyramid.exact)")
        self.model = model.cpu().eval()
        self.tables = tables
        scales = np.asarray(scales, dtype=np.float64)
        if tables.rows != len(scales) * MEAN_GRID:
            raise ValueError(f"{tables.rows} tables for {len(scales)} scales of {MEAN_GRID} mean fractions")
        self.bounds = torch.from_numpy(np.sqrt(scales[:-1] * scales[1:]))  # nearest table in log scale
        self.levels = self.model.levels

    @torch.inference_mode()
    def analyse(self, planes: np.ndarray) -> Code:
        """The gain-scaled subbands of planes (K, h, w), in their dtype: `rounded` quantises them at any step."""
        return self.model.analyse(torch.from_numpy(planes)[:, None])

    @torch.inference_mode()
    def quantise(self, planes: np.ndarray, step: float) -> Code:
        """The code of planes (K, h, w) at quantisation step D."""
        return self.model.quantise(torch.from_numpy(planes).to(torch.float64)[:, None], step)

    @torch.inference_mode()
    def dequantise(self, code: Code, step: float) -> np.ndarray:
        """The planes (K, h, w) float32 a code (or a reconstruction from `decode`) at step D stands for."""
        return self.model.dequantise(code, step)[:, 0].to(torch.float32).numpy()

    @torch.inference_mode()
    def encode(self, code: Code) -> tuple[np.ndarray, int]:
        """(range-coder words, CRC32 of the values) of a code. P runs on PLANES_AT_ONCE planes at a time, each
        after the previous plane's code (it computes every plane of a batch as it does alone, so these are the
        decoder's Gaussians); the values are then coded plane after plane."""
        flags = _levels_coded(code)
        previous = (_shifted(code[0]), [_shifted(b) for b in code[1]])
        passes: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(len(flags))]
        for first in range(0, len(flags), PLANES_AT_ONCE):
            batch = slice(first, first + PLANES_AT_ONCE)

            def visit(level: int, values: torch.Tensor, params: torch.Tensor, mask: torch.Tensor) -> None:
                where, rows, centres = self._pass(params, mask)
                symbols = values[:, :, where].numpy().astype(np.int64) - centres
                coding = flags[batch, 0 if level == self.levels else 1 + level].nonzero()[:, 0]
                for plane, plane_symbols, plane_rows in zip(coding.tolist(), symbols, rows):
                    passes[first + plane].append((plane_symbols, plane_rows))

            self.model.walk(_sliced(code, batch), _sliced(previous, batch), visit, flags[batch])
        encoder = constriction.stream.queue.RangeEncoder()
        for plane_flags, plane_passes in zip(flags, passes):
            encoder.encode(plane_flags.numpy().astype(np.int32), FLAG_MODEL)
            for symbols, rows in plane_passes:
                encode_into(encoder, symbols, rows, self.tables)
        return np.ascontiguousarray(encoder.get_compressed(), dtype=np.uint32), _checksum(code)

    def decode(self, words: np.ndarray, checksum: int, planes: int, height: int, width: int) -> tuple[Code, Code]:
        """(code, reconstruction) of `planes` planes of height x width from the words `encode` made
        (DecodeError when the stream is corrupt). The reconstruction holds, in the code's units, every
        value's `centroid` under P: pass it to `dequantise` for the planes."""
        [decoded] = self.decode_tiles([(words, checksum)], planes, height, width)
        if isinstance(decoded, DecodeError):
            raise decoded
        return decoded

    @torch.inference_mode()
    def decode_tiles(self, streams: list[tuple[np.ndarray, int]], planes: int, height: int,
                     width: int) -> list[tuple[Code, Code] | DecodeError]:
        """`decode` of several tiles of one size, (words, checksum) each: P runs on their planes together,
        plane after plane. Each tile's (code, reconstruction), or the DecodeError of its stream (the other
        tiles still decode)."""
        tiles = len(streams)
        failed: dict[int, DecodeError] = {}
        decoders = [range_decoder(words) for words, _ in streams]
        # plane k of tile t is row k * tiles + t
        code = self.model.quantise(torch.zeros(planes * tiles, 1, height, width, dtype=torch.float64), 1.0)
        rebuilt = self.model.zeros(code)

        def fail(tile: int, err: Exception) -> None:
            failed.setdefault(tile, err if isinstance(err, DecodeError) else DecodeError(
                f"corrupt range-coded stream: {err}"))

        def visit(level: int, values: torch.Tensor, params: torch.Tensor, mask: torch.Tensor) -> None:
            where, rows, centres = self._pass(params, mask)
            decoding = flags[:, 0 if level == self.levels else 1 + level].clone()
            for tile in decoding.nonzero()[:, 0].tolist():
                try:
                    decoded = decode_from(decoders[tile], rows[tile], self.tables) + centres[tile]
                    values[tile][:, where] = torch.from_numpy(decoded).to(values.dtype)
                except DecodeError as err:
                    fail(tile, err)
                    decoding[tile] = False
            part = plane_rebuilt[0] if level == self.levels else plane_rebuilt[1][level]
            centroids = centroid(values[:, :, where], params[:, :, where])
            part[:, :, where] = torch.where(decoding[:, None, None], centroids, part[:, :, where])

        lows = None
        try:
            for (plane, previous), (plane_rebuilt, _) in zip(_planes(self.model, code, tiles),
                                                             _planes(self.model, rebuilt, tiles)):
                flags = torch.zeros(tiles, self.levels + 1, dtype=torch.bool)
                for tile in [t for t in range(tiles) if t not in failed]:
                    try:
                        flags[tile] = torch.from_numpy(decoders[tile].decode(FLAG_MODEL, self.levels + 1) != 0)
                    except (AssertionError, ValueError, RuntimeError) as err:
                        fail(tile, err)
                # P runs on every tile of a level that some tile codes: it computes each as it does alone
                lows = self.model.walk(plane, previous, visit, flags.any(dim=0).expand(tiles, -1), lows)
        except (AssertionError, ValueError, RuntimeError) as err:  # not a stream's: each tile alone says whose
            if tiles == 1:
                return [DecodeError(f"corrupt range-coded stream: {err}")]
            return [result for stream in streams for result in self.decode_tiles([stream], planes, height, width)]
        results: list[tuple[Code, Code] | DecodeError] = []
        for tile, (_, checksum) in enumerate(streams):
            tile_code, tile_rebuilt = (_sliced(c, slice(tile, None, tiles)) for c in (code, rebuilt))
            try:
                if tile in failed:
                    raise failed[tile]
                check_exhausted(decoders[tile])
                if _checksum(tile_code) != checksum:
                    raise DecodeError("decoded values fail their checksum (bitstream desynchronised)")
                results.append((tile_code, tile_rebuilt))
            except DecodeError as err:
                results.append(err)
        return results

    def _pass(self, params: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """(positions, table rows, integer parts of the means) of the values one pass codes, (N, channels,
        positions): each value's Gaussian (P's) is coded with the scale of SCALE_TABLE nearest in log scale
        (scales below SCALE_BOUND take it) and the mean n / MEAN_GRID, n = round(MEAN_GRID * mean), whose
        integer part b = floor(n / MEAN_GRID + 1/2) is subtracted from the value and whose fraction picks the
        row (all exact in float64)."""
        where = mask[0, 0].bool()
        means, scales = (t[:, :, where].to(torch.float64) for t in params.chunk(2, dim=1))
        scale_rows = torch.bucketize(scales.clamp_min(SCALE_BOUND), self.bounds)
        grid = torch.round(means * MEAN_GRID)
        bases = torch.floor((grid + MEAN_GRID // 2) / MEAN_GRID)
        rows = scale_rows * MEAN_GRID + (grid - bases * MEAN_GRID).long() + MEAN_GRID // 2
        return where, rows.numpy().astype(np.int32), bases.numpy().astype(np.int64)


def _shifted(t: torch.Tensor) -> torch.Tensor:
    """Each plane's previous plane (zeros before the first)."""
    return torch.cat([torch.zeros_like(t[:1]), t[:-1]])


def _sliced(code: Code, planes: slice) -> Code:
    return code[0][planes], [b[planes] for b in code[1]]


def _levels_coded(code: Code) -> torch.Tensor:
    """(N, L + 1) bool: whether each plane's level holds a non-zero value (the low band, then levels 0 ... L-1);
    the coder codes (and flags) only those."""
    return torch.stack([t.flatten(1).any(dim=1) for t in (code[0], *code[1])], dim=1)


def _planes(model: WaveletPyramid, code: Code, tiles: int) -> list[tuple[Code, Code]]:
    """(plane's code, previous plane's code) of every plane, in coding order, each a batch of `tiles` tiles
    (plane k of tile t at row k * tiles + t)."""
    planes = [_sliced(code, slice(k, k + tiles)) for k in range(0, code[0].shape[0], tiles)]
    return [(plane, planes[k - 1] if k else model.zeros(plane)) for k, plane in enumerate(planes)]


def _checksum(code: Code) -> int:
    low, details = code
    return symbol_checksum(np.concatenate([t.flatten().numpy().astype(np.int64) for t in (low, *details)]))
