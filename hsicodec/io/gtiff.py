"""GeoTIFF scenes through rasterio: windowed reads, tiled windowed writes, metadata both ways."""
from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window

from hsicodec.errors import InputError
from hsicodec.atomic import Staging
from hsicodec.io.dtypes import native
from hsicodec.io.enviheader import STRUCTURAL, STRUCTURED, fmt_number, meta_fields, split_fields
from hsicodec.io.georef import GEOREF_FIELDS
from hsicodec.io.meta import SceneMeta
from hsicodec.io.scene import SceneReader, check_shape, first_line

ENVI_NS = "ENVI"
_SPACED_KEYS = set(STRUCTURAL + STRUCTURED + GEOREF_FIELDS)


class GeoTiffReader(SceneReader):
    """A GeoTIFF whose bands are the spectral bands."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                self._ds = rasterio.open(path)
        except RasterioError as e:
            raise InputError(f"{path}: not a readable GeoTIFF ({first_line(e)})") from None
        try:
            self._init(path)
        except BaseException:
            self._ds.close()
            raise

    def _init(self, path: Path) -> None:
        ds = self._ds
        if ds.driver not in ("GTiff", "COG"):
            raise InputError(f"{path}: not a GeoTIFF (GDAL reads it as {ds.driver})")
        if len(set(ds.dtypes)) != 1:
            raise InputError(f"{path}: bands of different sample types {sorted(set(ds.dtypes))}")
        self.shape = check_shape((ds.height, ds.width, ds.count), str(path))
        self.dtype = native(ds.dtypes[0], str(path))
        self.storage_bytes = path.stat().st_size
        self.meta = _read_meta(ds, path, self.shape[2])

    def _read(self, row0: int, col0: int, height: int, width: int) -> np.ndarray:
        if self._ds.closed:
            raise ValueError(f"{self.path}: reader is closed")
        bands = self._ds.read(window=Window(col0, row0, width, height))
        return np.ascontiguousarray(bands.transpose(1, 2, 0), dtype=self.dtype)

    def close(self) -> None:
        self._ds.close()


def _read_meta(ds: rasterio.DatasetReader, path: Path, bands: int) -> SceneMeta:
    with open(path, "rb") as f:
        byteorder = ">" if f.read(2) == b"MM" else "<"
    envi = ds.tags(ns=ENVI_NS) if ENVI_NS in ds.tag_namespaces() else {}
    fields = {}
    for key, value in envi.items():
        k = key.lower()
        fields[k.replace("_", " ") if k.replace("_", " ") in _SPACED_KEYS else k] = value
    kw = split_fields(fields, bands)
    band_tags = [ds.tags(i) for i in range(1, bands + 1)]
    if not any(band_tags):
        band_tags = []
    for attr, key in (("wavelengths", "wavelength"), ("fwhm", "fwhm"), ("bbl", "bbl")):
        if kw.get(attr) is None:
            kw[attr] = _band_numbers(band_tags, key)
    if kw.get("wavelength_units") is None:
        units = {t.get("wavelength_units") for t in band_tags}
        kw["wavelength_units"] = units.pop() if len(units) == 1 else None
    if kw.get("band_names") is None and all(ds.descriptions):
        kw["band_names"] = list(ds.descriptions)
    if ds.nodata is not None:
        kw["nodata"] = float(ds.nodata)
    band_tags = _without_derived(band_tags, kw)
    georeferenced = ds.crs is not None or not ds.transform.is_identity
    return SceneMeta(
        byteorder=byteorder,
        interleave=None,
        crs_wkt=ds.crs.to_wkt() if ds.crs else None,
        transform=list(ds.transform.to_gdal()) if georeferenced else None,
        tags=ds.tags(),
        band_tags=band_tags,
        source_format="gtiff",
        **kw,
    )


def _without_derived(band_tags: list[dict[str, str]], kw: dict) -> list[dict[str, str]]:
    """Band tags minus the wavelength/fwhm/bbl/units entries that `_band_tags` writes back identically."""
    structured = {"wavelength": kw.get("wavelengths"), "fwhm": kw.get("fwhm"), "bbl": kw.get("bbl")}
    kept = []
    for i, tags in enumerate(band_tags):
        tags = {k: v for k, v in tags.items()
                if not (structured.get(k) is not None and fmt_number(structured[k][i]) == v)
                and not (k == "wavelength_units" and v == kw.get("wavelength_units")
                         and kw.get("wavelengths") is not None)}
        kept.append(tags)
    return kept if any(kept) else []


def _band_numbers(band_tags: list[dict[str, str]], key: str) -> list[float] | None:
    if not band_tags or not all(key in t for t in band_tags):
        return None
    try:
        return [float(t[key]) for t in band_tags]
    except ValueError:
        return None


def _fits(value: float, dtype: np.dtype) -> bool:
    """Whether `value` is representable exactly as a `dtype` sample (GeoTIFF nodata)."""
    if dtype.kind == "f":
        return not np.isfinite(value) or abs(value) <= np.finfo(dtype).max
    info = np.iinfo(dtype)
    return float(value).is_integer() and info.min <= value <= info.max


def _band_tags(meta: SceneMeta, bands: int) -> list[dict[str, str]]:
    """Per-band tags: the source's, plus wavelength/fwhm/bbl/units as GDAL's ENVI driver names them."""
    tags = [dict(t) for t in meta.band_tags] or [{} for _ in range(bands)]
    for key, values in (("wavelength", meta.wavelengths), ("fwhm", meta.fwhm), ("bbl", meta.bbl)):
        if values is not None:
            for t, v in zip(tags, values):
                t.setdefault(key, fmt_number(v))
    if meta.wavelength_units and meta.wavelengths is not None:
        for t in tags:
            t.setdefault("wavelength_units", meta.wavelength_units)
    return tags


def _block(n: int) -> int:
    return min(256, -(-n // 16) * 16)


def write_gtiff(
    path: Path,
    shape: tuple[int, int, int],
    dtype: np.dtype,
    meta: SceneMeta,
    tiles: Iterable[tuple[int, int, np.ndarray]],
    staging: Staging,
) -> None:
    """Tiled, deflate-compressed GeoTIFF with georeferencing and metadata, under a temp name."""
    h, w, b = shape
    envi = meta_fields(meta)
    band_tags = _band_tags(meta, b)
    profile = {
        "driver": "GTiff",
        "width": w,
        "height": h,
        "count": b,
        "dtype": dtype.name,
        "tiled": True,
        "blockxsize": _block(w),
        "blockysize": _block(h),
        "interleave": "band",
        "compress": "deflate",
        "predictor": 3 if dtype.kind == "f" else 2 if dtype.itemsize <= 4 else 1,
        "bigtiff": "IF_SAFER",
        "crs": CRS.from_wkt(meta.crs_wkt) if meta.crs_wkt else None,
        "transform": Affine.from_gdal(*meta.transform) if meta.transform else None,
        "nodata": meta.nodata if meta.nodata is not None and _fits(meta.nodata, dtype) else None,
    }
    tmp = staging.temp(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(tmp, "w", **profile) as ds:
            if meta.tags:
                ds.update_tags(**meta.tags)
            if envi:
                ds.update_tags(ns=ENVI_NS, **envi)
            for i, t in enumerate(band_tags, start=1):
                if t:
                    ds.update_tags(i, **t)
            for i, name in enumerate(meta.band_names or [], start=1):
                ds.set_band_description(i, name)
            for row0, col0, tile in tiles:
                window = Window(col0, row0, tile.shape[1], tile.shape[0])
                ds.write(tile.transpose(2, 0, 1), window=window)
    sidecar = tmp.with_name(tmp.name + ".aux.xml")
    if sidecar.exists():
        staging.adopt(sidecar, path.with_name(path.name + ".aux.xml"))
