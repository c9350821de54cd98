"""ENVI `map info` <-> CRS and GDAL geotransform, through GDAL's own ENVI driver."""
from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import RasterioError

from hsicodec.io.enviheader import parse_header

GEOREF_FIELDS = ("map info", "coordinate system string")


def georef_of_envi(data_path: Path) -> tuple[str | None, list[float] | None]:
    """(CRS WKT, geotransform) that GDAL reads from an ENVI file's `map info`; Nones if it cannot."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with rasterio.open(data_path, driver="ENVI") as ds:
                crs = ds.crs.to_wkt() if ds.crs else None
                gt = None if ds.transform.is_identity else list(ds.transform.to_gdal())
    except (RasterioError, OSError):
        return None, None
    return crs, gt


def envi_georef(crs_wkt: str | None, transform: list[float] | None) -> dict[str, str]:
    """`map info` and `coordinate system string` fields as GDAL's ENVI driver writes them."""
    if transform is None:
        return {}
    try:
        crs = CRS.from_wkt(crs_wkt) if crs_wkt else None
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "georef.img"
            with rasterio.open(
                path, "w", driver="ENVI", width=1, height=1, count=1, dtype="uint8",
                crs=crs, transform=Affine.from_gdal(*transform),
            ):
                pass
            fields = parse_header((Path(tmp) / "georef.hdr").read_text(), "georef.hdr")
    except (RasterioError, OSError, ValueError):
        return {}
    return {k: fields[k] for k in GEOREF_FIELDS if k in fields}
