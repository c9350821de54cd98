"""Classical anchors for `hsicodec bench`, coded in memory with imagecodecs.

- band-wise JPEG 2000: every band a component of one OpenJPEG codestream
  (irreversible 9/7, no colour transform), whose rate allocation spreads the
  bits over all bands;
- PCA + JPEG 2000 (Du & Fowler 2007): the scene's principal-component planes
  as the components of one codestream;
- PCA + JPEG XL: the same planes, each a grayscale JPEG XL image at one
  distance;
- 3-D SPERR: the cube as one 3-D volume at a fixed bits-per-value budget.

A rate is bpp = 8 * every byte / (H * W), all bands together, as for `.hsic`
files: codestreams plus the side information a decoder would need (value
mapping, PCA mean and basis), counted exactly. JPEG 2000 and JPEG XL take a
quality knob (OpenJPEG's target PSNR, JPEG XL's distance), so each rate is met
by a short search on it (`_at_rate`); SPERR takes the rate itself. A rate
below what a codec's headers take (band-wise JPEG 2000 of many bands on a small
scene) is not an error: the result's bpp says what was reached.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import imagecodecs
import numpy as np

from hsicodec.klt import SpectralStats, fit_klt

RATE_TOLERANCE = 0.05
"""Relative bpp error accepted; an encode more than this above the target is kept only if nothing else is."""
RATE_GOAL = 0.02
"""Relative bpp error at which a knob search stops early."""
MAX_ENCODES = 10
"""Encodes per rate match."""
MAX_COMPONENTS = 16384
"""Components of one JPEG 2000 codestream."""
PCA_COMPONENTS = (1, 2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 64, 91, 128, 181, 256)
"""Numbers of principal components a PCA anchor tries (up to the scene's rank); see `_best_components`."""

_NATIVE = {np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.int16)}
_U16_MAX = 65535
_MID = 32768


@dataclass
class BaselineResult:
    """One coded version of a scene."""

    method: str
    target_bpp: float
    bytes: int
    bpp: float
    reconstruction: np.ndarray  # (H, W, B), the source's dtype


@dataclass(frozen=True)
class _PlaneCodec:
    """A still-image codec for a stack of uint16 planes (K, H, W), driven by one increasing quality knob."""

    encode: Callable[[np.ndarray, float], list[bytes]]
    decode: Callable[[list[bytes]], np.ndarray]
    knobs: tuple[float, float]  # the knob's range, smallest files first


def _jpeg2000_encode(stack: np.ndarray, psnr: float) -> list[bytes]:
    """One codestream, the planes as its components, at OpenJPEG's target PSNR (dB)."""
    return [imagecodecs.jpeg2k_encode(np.ascontiguousarray(stack.transpose(1, 2, 0)), level=psnr,
                                      codecformat="j2k", planar=False, mct=False, reversible=False, numthreads=1)]


def _jpeg2000_decode(streams: list[bytes]) -> np.ndarray:
    decoded = imagecodecs.jpeg2k_decode(streams[0], numthreads=1)
    return (decoded[..., None] if decoded.ndim == 2 else decoded).transpose(2, 0, 1)


def _jpegxl_encode(stack: np.ndarray, knob: float) -> list[bytes]:
    """Every plane a grayscale image at JPEG XL distance 2**-knob."""
    return [imagecodecs.jpegxl_encode(np.ascontiguousarray(plane), distance=2.0 ** -knob, numthreads=1)
            for plane in stack]


def _jpegxl_decode(streams: list[bytes]) -> np.ndarray:
    return np.stack([imagecodecs.jpegxl_decode(s, numthreads=1) for s in streams])


JPEG2000 = _PlaneCodec(_jpeg2000_encode, _jpeg2000_decode, (5.0, 120.0))
JPEGXL = _PlaneCodec(_jpegxl_encode, _jpegxl_decode, (-math.log2(25.0), 6.0))  # distances 25 .. 1/64


def jpeg2000_bandwise(cube: np.ndarray, target_bpp: float) -> BaselineResult:
    """Every band a component of one JPEG 2000 codestream, at `target_bpp`.

    uint8, uint16 and int16 are coded as they are; int8 is shifted by 128 into
    uint8 (exact, no side information); other types (int32, uint32, floats...)
    are mapped linearly onto uint16 with the scene's min and max, whose two
    float64 (16 bytes) count in the rate. The reconstruction is mapped back to
    the source dtype (rounded and clipped for integers).
    """
    source_dtype, cube = _checked_cube(cube, target_bpp)
    height, width, bands = cube.shape
    if bands > MAX_COMPONENTS:
        raise ValueError(f"{bands} bands: a JPEG 2000 codestream holds at most {MAX_COMPONENTS} components")
    coded, decode, side_bytes = _to_jpeg2000_type(cube)
    streams = _at_rate(JPEG2000, np.ascontiguousarray(coded.transpose(2, 0, 1)), _bytes(target_bpp, cube),
                       side_bytes)
    total = _size(streams) + side_bytes
    reconstruction = decode(JPEG2000.decode(streams).transpose(1, 2, 0)).astype(source_dtype, copy=False)
    return BaselineResult("JPEG 2000", float(target_bpp), total, 8 * total / (height * width), reconstruction)


def pca_jpeg2000(cube: np.ndarray, target_bpp: float, components: int | None = None) -> BaselineResult:
    """PCA over bands, the K component planes as the components of one JPEG 2000 codestream (`_pca`)."""
    return _pca("PCA + JPEG 2000", JPEG2000, cube, target_bpp, components)


def pca_jpegxl(cube: np.ndarray, target_bpp: float, components: int | None = None) -> BaselineResult:
    """PCA over bands, each of the K component planes a JPEG XL image at one common distance (`_pca`)."""
    return _pca("PCA + JPEG XL", JPEGXL, cube, target_bpp, components)


def sperr_3d(cube: np.ndarray, target_bpp: float) -> BaselineResult:
    """The cube as one 3-D SPERR volume (bands, rows, columns) in float64 at target_bpp / B bits per value;
    when the stream's own header overshoots the rate, the budget is scaled down and the cube coded again."""
    source_dtype, cube = _checked_cube(cube, target_bpp)
    height, width, bands = cube.shape
    volume = np.ascontiguousarray(cube.transpose(2, 0, 1), dtype=np.float64)
    target = _bytes(target_bpp, cube)
    budget = 8 * target / volume.size
    for _ in range(3):
        stream = imagecodecs.sperr_encode(volume, budget, "bpp", numthreads=1)
        if len(stream) <= target * (1 + RATE_GOAL):
            break
        budget *= target / len(stream)
    decoded = imagecodecs.sperr_decode(stream, numthreads=1)
    reconstruction = _to_dtype(decoded.transpose(1, 2, 0), source_dtype)
    return BaselineResult("3-D SPERR", float(target_bpp), len(stream), 8 * len(stream) / (height * width),
                          reconstruction)


ANCHORS: dict[str, Callable[[np.ndarray, float], BaselineResult]] = {
    "JPEG 2000": jpeg2000_bandwise, "PCA + JPEG 2000": pca_jpeg2000, "PCA + JPEG XL": pca_jpegxl,
    "3-D SPERR": sperr_3d}
"""The anchors `hsicodec bench` reports, by the name its tables give them."""


# --------------------------------------------------------------------------- PCA


def _pca(method: str, codec: _PlaneCodec, cube: np.ndarray, target_bpp: float,
         components: int | None) -> BaselineResult:
    """PCA over bands, then the K component planes coded with `codec` at `target_bpp`.

    The mean spectrum (in units of the scene's range, whose two ends are
    stored as float64) and the K leading eigenvectors of the band covariance
    (`klt.fit_klt`) are stored as float16, and the planes are the projections
    of the cube, less the stored mean, on the stored rows, so the decoder
    rebuilds from exactly what the file holds. The planes share one scale,
    max |plane| / 32767, and are stored as uint16 round(plane / scale) + 32768:
    a shared scale keeps the planes' relative variances, so the MSE the
    codec's allocation (or one common distance) spreads is the scene's MSE,
    and a plane given no bits decodes as zero. Side information: the float16
    mean (B) and basis (K x B), the range's ends and the planes' scale as
    float64.

    K: when `components` is None, the best K for this rate (`_best_components`);
    the basis rows a small file cannot afford are the reason K is not simply B.
    """
    source_dtype, cube = _checked_cube(cube, target_bpp)
    height, width, bands = cube.shape
    spectra = cube.reshape(-1, bands).astype(np.float64)
    stats = SpectralStats(bands)
    stats.update(spectra)
    lo, hi = float(spectra.min()), float(spectra.max())
    scale = hi - lo if hi > lo else 1.0
    mean, basis, variances = fit_klt(stats, bands)
    stored_mean = mean.astype(np.float16).astype(np.float64) * scale + lo  # fit_klt's mean is in range units
    centred = spectra - stored_mean
    target = _bytes(target_bpp, cube)
    rank = max(1, int(np.count_nonzero(variances > 1e-10 * variances[0]))) if variances[0] > 0 else 1

    def trial(k: int) -> tuple[int, float, np.ndarray]:
        rows = basis[:k].astype(np.float16).astype(np.float64)
        planes = (centred @ rows.T).T.reshape(k, height, width)
        step = max(float(np.abs(planes).max()), 1e-300) / (_MID - 1)
        stack = (np.rint(planes / step) + _MID).astype(np.uint16)
        side = 2 * (bands + k * bands) + 3 * 8
        streams = _at_rate(codec, stack, target, side)
        decoded = (codec.decode(streams).astype(np.float64) - _MID) * step
        rebuilt = decoded.reshape(k, -1).T @ rows + stored_mean
        return _size(streams) + side, float(np.mean((rebuilt - spectra) ** 2)), rebuilt

    if components is not None:
        if not (isinstance(components, (int, np.integer)) and 1 <= components <= min(bands, MAX_COMPONENTS)):
            raise ValueError(f"components must be an integer in [1, {min(bands, MAX_COMPONENTS)}], "
                             f"got {components!r}")
        size, _, rebuilt = trial(int(components))
    else:
        size, _, rebuilt = _best_components(trial, min(rank, MAX_COMPONENTS), target)
    reconstruction = _to_dtype(rebuilt.reshape(height, width, bands), source_dtype)
    return BaselineResult(method, float(target_bpp), size, 8 * size / (height * width), reconstruction)


def _best_components(trial: Callable[[int], tuple[int, float, np.ndarray]], most: int,
                     target: float) -> tuple[int, float, np.ndarray]:
    """The trial of least MSE among K in PCA_COMPONENTS (and `most`) within the rate tolerance, trying K in
    increasing order until two in a row are worse than the best; the smallest file if none is within."""
    def rank(result: tuple[int, float, np.ndarray]) -> tuple[bool, float]:
        within = result[0] <= target * (1 + RATE_TOLERANCE)
        return not within, result[1] if within else result[0]

    best, worse = None, 0
    for k in sorted({k for k in PCA_COMPONENTS if k < most} | {most}):
        result = trial(k)
        if best is None or rank(result) < rank(best):
            best, worse = result, 0
        elif (worse := worse + 1) == 2:
            break
    return best


# --------------------------------------------------------------------------- rate matching


def _at_rate(codec: _PlaneCodec, stack: np.ndarray, target: float, side: int) -> list[bytes]:
    """The encode whose size plus `side` bytes is nearest `target`, preferring those at most RATE_TOLERANCE
    above it: a search on the codec's knob, interpolating log size linearly between the bracketing encodes."""
    low, high = codec.knobs
    tried: list[tuple[float, list[bytes]]] = []
    knob = (low + high) / 2
    below, above = (low, None), (high, None)
    for _ in range(MAX_ENCODES):
        streams = codec.encode(stack, knob)
        total = _size(streams) + side
        tried.append((total, streams))
        if abs(total / target - 1) <= RATE_GOAL:
            break
        if total < target:
            below = (knob, total)
        else:
            above = (knob, total)
        if below[1] is not None and above[1] is not None:
            share = math.log(target / below[1]) / math.log(above[1] / below[1])
            knob = below[0] + min(max(share, 0.1), 0.9) * (above[0] - below[0])
        else:
            knob = (below[0] + above[0]) / 2
    return min(tried, key=lambda t: (t[0] > target * (1 + RATE_TOLERANCE), abs(t[0] - target)))[1]


# --------------------------------------------------------------------------- helpers


def _to_jpeg2000_type(cube: np.ndarray) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray], int]:
    """(array JPEG 2000 can code, its inverse back to the source dtype, side-information bytes)."""
    dtype = cube.dtype
    if dtype in _NATIVE:
        return cube, lambda a: a.astype(dtype, copy=False), 0
    if dtype == np.int8:
        coded = (cube.astype(np.int16) + 128).astype(np.uint8)
        return coded, lambda a: (a.astype(np.int16) - 128).astype(np.int8), 0
    lo, hi = float(cube.min()), float(cube.max())
    scale = (hi - lo) / _U16_MAX if hi > lo else 0.0
    coded = np.rint((cube.astype(np.float64) - lo) / scale) if scale > 0 else np.zeros(cube.shape)
    coded = np.clip(coded, 0, _U16_MAX).astype(np.uint16)
    return coded, lambda a: _to_dtype(lo + a.astype(np.float64) * scale, dtype), 16  # lo, hi as float64


def _checked_cube(cube: np.ndarray, target_bpp: float) -> tuple[np.dtype, np.ndarray]:
    """(source dtype, the cube in native byte order); ValueError for what a baseline cannot code."""
    cube = np.asarray(cube)
    if cube.ndim != 3:
        raise ValueError(f"a scene cube must be 3-D (H, W, B), got shape {cube.shape}")
    if cube.size == 0:
        raise ValueError(f"empty scene cube {cube.shape}")
    if cube.dtype.kind not in "iuf":
        raise ValueError(f"scene cube dtype {cube.dtype} is not an integer or float type")
    if cube.dtype.kind == "f" and not np.isfinite(cube).all():
        raise ValueError("scene cube has NaN or infinite values; the baselines need finite values")
    if not (isinstance(target_bpp, (int, float, np.number)) and math.isfinite(target_bpp) and target_bpp > 0):
        raise ValueError(f"target_bpp must be a positive number, got {target_bpp!r}")
    return cube.dtype, cube.astype(cube.dtype.newbyteorder("="), copy=False)


def _bytes(target_bpp: float, cube: np.ndarray) -> float:
    return target_bpp * cube.shape[0] * cube.shape[1] / 8


def _size(streams: list[bytes]) -> int:
    return sum(len(s) for s in streams)


def _to_dtype(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Float values in `dtype`: rounded and clipped for integers."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype)
