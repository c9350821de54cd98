"""Classic baselines for `hsicodec bench`: band-wise JPEG 2000 and PCA + JPEG 2000.

Both code a scene cube (H, W, B) with OpenJPEG through rasterio's bundled GDAL
``JP2OpenJPEG`` driver (irreversible 9/7 wavelet, ``REVERSIBLE=NO``; no colour
transform, ``YCC=NO``, so the B components are coded independently inside one
codestream whose rate allocation is shared by all of them). One option is set
that GDAL would otherwise choose badly: ``RESOLUTIONS``, 6 (five wavelet levels,
OpenJPEG's own default) or as many as the tile allows; GDAL's default stops at a
128-pixel level, i.e. no wavelet transform at all for scenes of 128 x 128 or
less, which costs band-wise JPEG 2000 about 10 dB at 0.5 bpp on a CAVE crop.
Other options keep their defaults (tiles of 1024 x 1024, one quality layer,
64 x 64 code blocks). Temporary files go to a private folder inside
``workdir`` (which must exist) and are removed before returning.

Rates are in bpp = 8 * every byte / (H * W), all bands together: the ``.jp2``
file plus the side information a decoder would need (value mapping, PCA mean,
basis and scale), counted exactly.

Rate control. GDAL's ``QUALITY`` option is the size of the codestream as a
percentage of the raw samples (QUALITY=5 on uint16 gives 0.8 bit per sample).
GDAL accepts 0 < QUALITY <= 100 (anything else is ignored with a warning and the
default, 25, is used), so QUALITY is clipped to [`QUALITY_MIN`, `QUALITY_MAX`].
Below roughly 0.05 the file no longer shrinks: it is then headers and empty
packets, about 5 bytes per component plus 1 per component and resolution level
(1976 bytes for 193 bands of 100 x 100 with 6 levels, 985 with 1), and every
component decodes as its mid-grey. When that floor is above the target, fewer
resolution levels are used (down to 1); a target below the 1-level floor is not
an error: the result's ``bpp`` says what was achieved. QUALITY is only
approximate on real data, so when the first encode misses the target by
more than `RATE_GOAL` (2 %) a short secant search on log QUALITY follows (at most
`MAX_ENCODES` encodes) and the encode nearest the target is kept, preferring
those at most `RATE_TOLERANCE` (5 %) above it.
"""
from __future__ import annotations

import math
import tempfile
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning

QUALITY_MIN = 1e-6
"""Smallest QUALITY passed to GDAL (it refuses 0; the file size floors near 0.05 anyway)."""
QUALITY_MAX = 100.0
"""Largest QUALITY GDAL accepts."""
RATE_TOLERANCE = 0.05
"""Relative bpp error accepted; an encode more than this above the target is kept only if nothing else is."""
RATE_GOAL = 0.02
"""Relative bpp error at which the QUALITY search stops early."""
MAX_ENCODES = 6
"""Encodes per rate match (the first guess included)."""
MAX_COMPONENTS = 16384
"""Components of one JPEG 2000 codestream."""
TILE_SIZE = 1024
"""GDAL's default JPEG 2000 tile side (BLOCKXSIZE, BLOCKYSIZE)."""
BASIS_ERROR_BUDGET = 1e-7
"""MSE the rounded PCA basis may add, as a fraction of the value range squared (70 dB below the peak)."""
MAX_PCA_TRIALS = 12
"""Numbers of principal components tried, at most, when `components` is None."""

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


# --------------------------------------------------------------------------- band-wise


def jpeg2000_bandwise(cube: np.ndarray, target_bpp: float, workdir: Path) -> BaselineResult:
    """Every band a component of one JPEG 2000 codestream, at `target_bpp`.

    uint8, uint16 and int16 are coded as they are; int8 is shifted by 128 into
    uint8 (exact, no side information); other types (int32, uint32, floats...)
    are mapped linearly onto uint16 with the scene's min and max, whose two
    float64 (16 bytes) count in the rate. The reconstruction is mapped back to
    the source dtype (rounded and clipped for integers). Values must be finite.
    """
    source_dtype, cube = _checked_cube(cube, target_bpp)
    height, width, bands = cube.shape
    if bands > MAX_COMPONENTS:
        raise ValueError(f"{bands} bands: a JPEG 2000 codestream holds at most {MAX_COMPONENTS} components")
    coded, decode, side_bytes = _to_jpeg2000_type(cube)
    stack = np.ascontiguousarray(coded.transpose(2, 0, 1))
    target_bytes = target_bpp * height * width / 8
    with tempfile.TemporaryDirectory(dir=workdir, prefix="jp2-bandwise-") as tmp:
        path, size = _encode_at_rate(stack, target_bytes, side_bytes, Path(tmp))
        decoded = _read_jp2(path)
    reconstruction = decode(decoded.transpose(1, 2, 0)).astype(source_dtype, copy=False)
    total = size + side_bytes
    return BaselineResult("JPEG 2000", float(target_bpp), total, 8 * total / (height * width), reconstruction)


def _to_jpeg2000_type(cube: np.ndarray) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray], int]:
    """(array JPEG 2000 can code, its inverse back to the source dtype, side-information bytes)."""
    dtype = cube.dtype
    if dtype in _NATIVE:
        return cube, lambda a: a, 0
    if dtype == np.int8:
        coded = (cube.astype(np.int16) + 128).astype(np.uint8)
        return coded, lambda a: (a.astype(np.int16) - 128).astype(np.int8), 0
    lo, hi = float(cube.min()), float(cube.max())
    scale = (hi - lo) / _U16_MAX if hi > lo else 0.0
    if scale > 0:
        coded = np.rint((cube.astype(np.float64) - lo) / scale)
    else:
        coded = np.zeros(cube.shape)
    coded = np.clip(coded, 0, _U16_MAX).astype(np.uint16)
    return coded, lambda a: _to_dtype(lo + a.astype(np.float64) * scale, dtype), 16  # lo, hi as float64


# --------------------------------------------------------------------------- PCA


def pca_jpeg2000(cube: np.ndarray, target_bpp: float, workdir: Path,
                 components: int | None = None) -> BaselineResult:
    """PCA over bands, then the K principal-component images in one JPEG 2000 codestream.

    After Du & Fowler (2007): the cube is centred on its mean spectrum, projected on
    the top K eigenvectors of its B x B covariance (float64 ``eigh``), and the K
    component images are coded as the K components of one codestream, so that
    OpenJPEG's rate allocation spreads the bits over all of them. The cube must be
    free of nodata (every value is used for the mean and the covariance) and finite.

    Scaling: the components share one quantisation step, step = max |PC| / 32767,
    and are stored as uint16 round(PC / step) + 32768. A shared step keeps the
    components' relative variances, so the MSE OpenJPEG's rate allocation
    minimises is the scene's MSE (the basis is orthonormal); scaling each
    component to its own min/max would weight a minor component's error by its
    inverse range squared and measured 2-12 dB worse at matched rate. Centring on
    32768 makes a component that receives no bits decode as zero (the mean).

    Side information, counted in ``bytes``: zlib (level 9) of the float32 values
    mean (B), basis (K x B, row by row) and step (1); the decoder reads K from the
    codestream and the reconstruction uses exactly these stored values. Before
    storage the mean is rounded to a power-of-two grid of about 2**-12 of the value
    range (free: the decoder adds back exactly the centre the encoder removed) and
    each basis row to the coarsest power-of-two grid that keeps the error it adds
    under 1/K of `BASIS_ERROR_BUDGET` (70 dB below the peak, all rows together);
    the components are computed with the pseudo-inverse of the stored basis. With
    the rounded values sitting on grids, zlib shortens them 2.5 to 5 times (193
    bands, K = 1: 611 bytes instead of 1506), without which PCA + JPEG 2000 could
    not reach 1 bpp on a 100 x 100 x 193 scene at all.

    K: Du & Fowler keep every component and let JPEG 2000's rate allocation
    decide, which is right when the basis is small beside the budget. At the rates
    compared here (bpp for all bands together) it is not: the 31 x 31 basis of a
    CAVE scene, 128 x 128 pixels, costs more than the whole budget of 0.5 bpp, and
    a component whose share of the bits is tiny costs its basis row and header
    anyway. So when `components` is None, K is chosen per rate on the encoder
    side: candidates 1, 2, 3, 4, 6, 8, 11, 16... up to the number of components
    whose eigenvalue exceeds 1e-10 of the largest are each coded at the target rate
    and the one with the smallest MSE among those not above the rate tolerance is
    kept (the search stops once two consecutive candidates are worse, then halves
    the gaps around the best; at most `MAX_PCA_TRIALS` values of K). Among the K
    kept, the bits are still allocated by JPEG 2000. If no K reaches the target,
    the smallest achievable rate is returned (K = 1). `components` fixes K instead
    (1 <= components <= B).
    """
    source_dtype, cube = _checked_cube(cube, target_bpp)
    height, width, bands = cube.shape
    if components is not None and not (isinstance(components, (int, np.integer))
                                       and 1 <= components <= min(bands, MAX_COMPONENTS)):
        raise ValueError(f"components must be an integer in [1, {min(bands, MAX_COMPONENTS)}], got {components!r}")
    pixels = cube.reshape(-1, bands).astype(np.float64)
    value_range = float(pixels.max() - pixels.min())
    centred = pixels - pixels.mean(axis=0)
    eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred / pixels.shape[0])
    eigenvalues, eigenvectors = np.maximum(eigenvalues[::-1], 0.0), eigenvectors[:, ::-1]
    del centred
    mean = _on_grid(pixels.mean(axis=0), _mean_step(value_range))
    pca = _Pca(cube, pixels, mean, eigenvalues, eigenvectors, value_range)
    target_bytes = target_bpp * height * width / 8

    with tempfile.TemporaryDirectory(dir=workdir, prefix="jp2-pca-") as tmp:
        def trial(k: int) -> _Trial:
            return pca.trial(k, target_bytes, Path(tmp) / f"k{k}")

        if components is not None:
            best = trial(int(components))
        else:
            rank = int(np.count_nonzero(eigenvalues > 1e-10 * eigenvalues[0])) if eigenvalues[0] > 0 else 1
            best = _search_components(trial, max(1, min(rank, bands, MAX_COMPONENTS)), target_bytes)
    return BaselineResult("PCA + JPEG 2000", float(target_bpp), best.bytes, 8 * best.bytes / (height * width),
                          best.reconstruction.astype(source_dtype, copy=False))


@dataclass
class _Trial:
    """PCA + JPEG 2000 with one number of components, rate-matched and decoded."""

    components: int
    bytes: int
    mse: float
    reconstruction: np.ndarray


@dataclass
class _Pca:
    """A scene's PCA, ready to be coded with any number of components."""

    cube: np.ndarray  # (H, W, B), native order
    pixels: np.ndarray  # (H * W, B) float64
    mean: np.ndarray  # (B,) on its storage grid
    eigenvalues: np.ndarray  # (B,), descending
    eigenvectors: np.ndarray  # (B, B), columns
    value_range: float

    def stored(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Mean (B,) and basis (K, B) as stored: rounded to their grids, float32 values."""
        steps = _basis_steps(self.eigenvalues[:k], self.value_range)
        basis = _on_grid(self.eigenvectors[:, :k].T, steps[:, None])
        return (self.mean.astype(np.float32).astype(np.float64),
                basis.astype(np.float32).astype(np.float64))

    def trial(self, k: int, target_bytes: float, folder: Path) -> _Trial:
        """Code K components at the target rate and decode them exactly as a decoder would."""
        height, width, bands = self.cube.shape
        mean, basis = self.stored(k)
        scores = (self.pixels - mean) @ np.linalg.pinv(basis)  # basis is orthonormal up to its grid
        peak = float(np.abs(scores).max(initial=0.0))
        step = np.float32(peak / (_MID - 1) if peak > 0 else 1.0)
        levels = np.clip(np.rint(scores / float(step)) + _MID, 0, _U16_MAX).astype(np.uint16)
        side = zlib.compress(np.concatenate([mean, basis.ravel(), [step]]).astype("<f4").tobytes(), 9)

        folder.mkdir()
        path, size = _encode_at_rate(np.ascontiguousarray(levels.T.reshape(k, height, width)),
                                     target_bytes, len(side), folder)
        decoded = _read_jp2(path)
        for leftover in folder.iterdir():
            leftover.unlink()
        folder.rmdir()

        stored = np.frombuffer(zlib.decompress(side), dtype="<f4").astype(np.float64)
        s_mean, s_basis, s_step = stored[:bands], stored[bands:-1].reshape(k, bands), stored[-1]
        scores = (decoded.reshape(k, -1).T.astype(np.float64) - _MID) * s_step
        reconstruction = _to_dtype((scores @ s_basis + s_mean).reshape(height, width, bands), self.cube.dtype)
        mse = float(np.mean((reconstruction.reshape(-1, bands) - self.pixels) ** 2))
        return _Trial(k, size + len(side), mse, reconstruction)


def _mean_step(value_range: float) -> float:
    """Grid of the stored mean: 2**-12 of the value range, as a power of two.

    Any centre works (the decoder adds back exactly the stored one), so rounding the
    mean costs no accuracy; it only lets zlib shorten the float32 values.
    """
    return float(2.0 ** (math.floor(math.log2(value_range)) - 12)) if value_range > 0 else 0.0


def _basis_steps(eigenvalues: np.ndarray, value_range: float) -> np.ndarray:
    """Grid of each stored basis row, a power of two (0: no rounding, for a constant scene).

    Row k rounded to steps s adds about eigenvalue_k * s**2 / 12 to the per-band
    MSE; each row gets 1/K of `BASIS_ERROR_BUDGET` * value_range**2.
    """
    k = len(eigenvalues)
    if value_range <= 0:
        return np.zeros(k)
    budget = BASIS_ERROR_BUDGET * value_range**2 / k
    steps = np.sqrt(12 * budget / np.maximum(eigenvalues, 1e-300))
    return np.exp2(np.floor(np.log2(np.minimum(steps, 1.0))))


def _on_grid(values: np.ndarray, step: float | np.ndarray) -> np.ndarray:
    """`values` rounded to multiples of `step` (unchanged where step is 0)."""
    step = np.asarray(step, dtype=np.float64)
    safe = np.where(step > 0, step, 1.0)
    return np.where(step > 0, np.rint(values / safe) * safe, values)


def _search_components(trial: Callable[[int], _Trial], k_max: int, target_bytes: float) -> _Trial:
    """The trial of least MSE among those within the rate tolerance (else the smallest file)."""
    tried: dict[int, _Trial] = {}

    def run(k: int) -> _Trial:
        if k not in tried:
            tried[k] = trial(k)
        return tried[k]

    def score(t: _Trial) -> tuple[int, float]:
        within = t.bytes <= target_bytes * (1 + RATE_TOLERANCE)
        return (0, t.mse) if within else (1, float(t.bytes))

    best, worse = None, 0
    for k in _component_grid(k_max):
        if len(tried) >= MAX_PCA_TRIALS:
            break
        t = run(k)
        if best is None or score(t) < score(best):
            best, worse = t, 0
        else:
            worse += 1
            if worse >= 2 or score(t)[0] == 1:  # worse twice, or the rate is already missed
                break
    assert best is not None
    # refine: halve the gaps between the best K and its nearest tried neighbours
    while len(tried) < MAX_PCA_TRIALS:
        below = max((k for k in tried if k < best.components), default=None)
        above = min((k for k in tried if k > best.components), default=None)
        candidates = [(best.components + n) // 2 for n in (below, above) if n is not None]
        candidates = [k for k in candidates if k not in tried]
        if not candidates:
            break
        for k in candidates[:MAX_PCA_TRIALS - len(tried)]:
            if score(run(k)) < score(best):
                best = tried[k]
    return best


def _component_grid(k_max: int) -> list[int]:
    """1, 2, 3, 4, 6, 8, 11, 16, 23, 32... (about sqrt 2 apart), capped at and ending with k_max."""
    grid, k = [1, 2, 3], 4.0
    while round(k) < k_max:
        grid.append(int(round(k)))
        k *= math.sqrt(2)
    grid.append(k_max)
    return sorted({g for g in grid if g <= k_max})


# --------------------------------------------------------------------------- JPEG 2000


def _encode_at_rate(stack: np.ndarray, target_bytes: float, side_bytes: int, folder: Path) -> tuple[Path, int]:
    """Encode (C, H, W) at `target_bytes` for file + side bytes; (file, its size).

    First with `_resolutions` levels; if even the smallest codestream (headers and
    empty packets, which grow with components x levels) is too big, with fewer
    levels, down to 1. Of all encodes, the one nearest the target without exceeding
    it by more than `RATE_TOLERANCE` is kept (else the smallest); only its file is
    left in `folder`.
    """
    attempts = _Attempts(stack, folder, target_bytes, side_bytes)
    if not attempts.reachable(0):  # the side information alone is over: the smallest file
        attempts.encode(QUALITY_MIN, 1)
        return attempts.best
    top = _resolutions(*stack.shape[1:])
    count = stack.shape[0]
    for levels in range(top, 0, -1):
        near_floor = target_bytes - side_bytes < 2 * (200 + count * (4 + levels))  # about twice the headers
        probe = levels > 1 and (levels < top or near_floor)
        if probe and not attempts.reachable(attempts.encode(QUALITY_MIN, levels)):
            continue  # headers alone overshoot: fewer levels
        _search_quality(attempts, levels)
        if attempts.reachable(attempts.best[1]):
            break
    return attempts.best


class _Attempts:
    """Encodes of one stack; keeps the file of the best one (see `_miss`)."""

    def __init__(self, stack: np.ndarray, folder: Path, target_bytes: float, side_bytes: int) -> None:
        self.stack, self.folder, self.target, self.side = stack, folder, target_bytes, side_bytes
        self.count = 0
        self.best: tuple[Path, int] = (folder / "none", 0)
        self.best_miss: tuple[int, float] | None = None

    def encode(self, quality: float, levels: int) -> int:
        """Codestream size at `quality` with `levels` resolution levels."""
        path = self.folder / f"attempt{self.count}.jp2"
        self.count += 1
        size = _write_jp2(self.stack, path, quality, levels)
        miss = _miss(size + self.side, self.target)
        if self.best_miss is None or miss < self.best_miss:
            if self.best_miss is not None:
                self.best[0].unlink()
            self.best, self.best_miss = (path, size), miss
        else:
            path.unlink()
        return size

    def reachable(self, size: int) -> bool:
        """Whether a codestream of `size` bytes keeps the total within the tolerance above the target."""
        return size + self.side <= self.target * (1 + RATE_TOLERANCE)


def _search_quality(attempts: _Attempts, levels: int) -> None:
    """Secant search on QUALITY (at most `MAX_ENCODES` encodes) for the target."""
    want = attempts.target - attempts.side  # for the codestream
    quality = _clip_quality(100 * want / attempts.stack.nbytes) if want > 0 else QUALITY_MIN
    points: list[tuple[float, int]] = []  # (quality, file size)
    for _ in range(MAX_ENCODES):
        size = attempts.encode(quality, levels)
        points.append((quality, size))
        if abs((size + attempts.side) / attempts.target - 1) <= RATE_GOAL:
            return
        if want <= 0 or (size > want and quality <= QUALITY_MIN) or (size < want and quality >= QUALITY_MAX):
            return  # out of reach
        quality = _next_quality(points, want)
        if any(abs(quality / q - 1) < 1e-6 for q, _ in points):
            return


def _miss(total: float, target: float) -> tuple[int, float]:
    """Order of preference: within the tolerance above the target first, then nearest in log."""
    over = total > target * (1 + RATE_TOLERANCE)
    return (1, total) if over else (0, abs(math.log(max(total, 1) / target)))


def _next_quality(points: list[tuple[float, int]], want: float) -> float:
    """Secant step on log size against log QUALITY, kept inside the bracket found so far.

    Sizes are a step function of QUALITY on small images (OpenJPEG truncates whole
    coding passes), so a flat stretch gets the steepest step allowed (size ~ QUALITY**0.25).
    """
    below = [p for p in points if p[1] < want]
    above = [p for p in points if p[1] > want]
    if below and above:
        lo, hi = max(below), min(above)  # largest QUALITY still too small, smallest already too big
        quality = math.exp(_secant(lo, hi, want))
        if not lo[0] < quality < hi[0]:
            quality = math.sqrt(lo[0] * hi[0])
        return _clip_quality(quality)
    side = below or above
    nearest = max(side) if below else min(side)  # the point of that side nearest the target
    others = [p for p in side if p[0] != nearest[0]]
    if not others:
        slope = 1.0
    else:
        other = min(others, key=lambda p: abs(math.log(p[0] / nearest[0])))
        slope = (math.log(nearest[1] / other[1]) / math.log(nearest[0] / other[0]))
        slope = min(max(slope, 0.25), 4.0)
    return _clip_quality(nearest[0] * math.exp(math.log(want / nearest[1]) / slope))


def _secant(a: tuple[float, int], b: tuple[float, int], want: float) -> float:
    """log QUALITY where the line through (log q, log size) of a and b reaches `want`."""
    if a[1] == b[1]:
        return 0.5 * (math.log(a[0]) + math.log(b[0]))
    t = (math.log(want) - math.log(a[1])) / (math.log(b[1]) - math.log(a[1]))
    return math.log(a[0]) + t * (math.log(b[0]) - math.log(a[0]))


def _clip_quality(quality: float) -> float:
    return float(min(max(quality, QUALITY_MIN), QUALITY_MAX))


def _write_jp2(stack: np.ndarray, path: Path, quality: float, levels: int) -> int:
    """Write (C, H, W) as one JPEG 2000 codestream; the file's size in bytes."""
    count, height, width = stack.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", driver="JP2OpenJPEG", height=height, width=width, count=count,
                           dtype=stack.dtype.name, QUALITY=f"{quality:.9g}", REVERSIBLE="NO", YCC="NO",
                           RESOLUTIONS=str(levels)) as dst:
            dst.write(stack)
    return path.stat().st_size


def _resolutions(height: int, width: int) -> int:
    """Resolution levels: OpenJPEG's default 6 (5 wavelet levels), fewer if a tile is too small.

    GDAL's own default stops as soon as the smallest level is at most 128 pixels,
    which for a scene of 128 x 128 or less means no wavelet transform at all.
    GDAL accepts n while the smaller tile side is at least 2**n.
    """
    side = min(height, width, TILE_SIZE)
    return max(1, min(6, side.bit_length() - 1))


def _read_jp2(path: Path) -> np.ndarray:
    """(C, H, W) samples of a JPEG 2000 file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as src:
            return src.read()


# --------------------------------------------------------------------------- helpers


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


def _to_dtype(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Float values in `dtype`: rounded and clipped for integers."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype)
