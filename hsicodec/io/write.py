"""`write_scene`: a scene to ENVI or GeoTIFF, tile by tile, all or nothing."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from hsicodec.errors import InputError
from hsicodec.atomic import staged
from hsicodec.io.dtypes import envi_code, native
from hsicodec.io.envi import write_envi
from hsicodec.io.gtiff import write_gtiff
from hsicodec.io.meta import SceneMeta
from hsicodec.io.scene import check_shape

FORMATS = ("envi", "gtiff")


def write_scene(
    path: Path,
    fmt: str,
    shape: tuple[int, int, int],
    dtype: np.dtype,
    meta: SceneMeta,
    tiles: Iterable[tuple[int, int, np.ndarray]],
) -> list[Path]:
    """Write `tiles` ((row0, col0, (h, w, B) array) covering the scene) as `fmt`.

    Files appear under their final names only once the last tile is written; on any
    error the temporaries are deleted and the error re-raised. Returns the final paths
    (ENVI: data file and header). Existing files are replaced. ContainerError if `meta`
    does not fit `shape` (per-band lists of another length).
    """
    path = Path(path)
    if fmt not in FORMATS:
        raise InputError(f"unknown output format {fmt!r} (expected {' or '.join(FORMATS)})")
    shape = check_shape(shape, str(path))
    dtype = native(dtype, str(path))
    if fmt == "envi":
        envi_code(dtype, str(path))
    meta.check_bands(shape[2])
    if not path.parent.is_dir():
        raise InputError(f"{path.parent}: output folder does not exist")
    writer = write_envi if fmt == "envi" else write_gtiff
    with staged() as staging:
        writer(path, shape, dtype, meta, _checked(tiles, shape, dtype), staging)
    return staging.finals


def _checked(
    tiles: Iterable[tuple[int, int, np.ndarray]], shape: tuple[int, int, int], dtype: np.dtype
) -> Iterator[tuple[int, int, np.ndarray]]:
    """The tiles, each checked against the scene; ValueError if they leave pixels uncovered."""
    h, w, b = shape
    covered = 0
    for row0, col0, tile in tiles:
        if not isinstance(tile, np.ndarray) or tile.ndim != 3 or tile.shape[2] != b:
            raise ValueError(f"tile at ({row0}, {col0}) is not an (h, w, {b}) array")
        if tile.dtype.newbyteorder("=") != dtype:
            raise ValueError(f"tile at ({row0}, {col0}) is {tile.dtype}, the scene is {dtype}")
        th, tw = tile.shape[:2]
        if row0 < 0 or col0 < 0 or row0 + th > h or col0 + tw > w:
            raise ValueError(f"tile {th} x {tw} at ({row0}, {col0}) leaves the {h} x {w} scene")
        covered += th * tw
        yield row0, col0, tile.astype(dtype, copy=False)
    if covered < h * w:
        raise ValueError(f"tiles cover {covered} of the scene's {h * w} pixels")
