"""Reading and writing hyperspectral scenes: ENVI, GeoTIFF and MATLAB `.mat`.

`open_scene` gives a `SceneReader` with windowed reads in (H, W, B); `write_scene`
writes ENVI or GeoTIFF tile by tile, atomically; `SceneMeta` carries the metadata
(wavelengths, band names, map info, CRS, tags...) from one to the other.
"""
from hsicodec.atomic import clear_stale
from hsicodec.io.discover import find_scenes, open_scene
from hsicodec.io.dtypes import SUPPORTED as SUPPORTED_DTYPES
from hsicodec.io.meta import SceneMeta
from hsicodec.io.scene import SceneReader
from hsicodec.io.write import write_scene

__all__ = [
    "clear_stale",
    "SUPPORTED_DTYPES",
    "SceneMeta",
    "SceneReader",
    "find_scenes",
    "open_scene",
    "write_scene",
]
