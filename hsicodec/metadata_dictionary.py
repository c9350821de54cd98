"""The preset dictionary (zlib's zdict) of a `.hsic` file's METADATA section.

Deflate codes a string it has seen before as a short back-reference. Metadata
is small and every file repeats the same keys (`wavelengths`,
`second_differences`, `wavelength_units`, ...) and often the same values (a
WGS 84 / UTM coordinate system, ENVI's map info): deflated against a typical
metadata object, those cost back-references instead of literals. The
dictionary is the compact JSON of TEMPLATE. It is part of the format: a
change is a new major version (tests hold its CRC32).
"""
from __future__ import annotations

import json

_WGS84 = ('GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563,AUTHORITY["EPSG","7030"]],'
          'AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0,AUTHORITY["EPSG","8901"]],UNIT["degree",0.0174532925199433,'
          'AUTHORITY["EPSG","9122"]],AUTHORITY["EPSG","4326"]]')
_UTM = ('PROJCS["WGS 84 / UTM zone 33N",' + _WGS84 + ',PROJECTION["Transverse_Mercator"],'
        'PARAMETER["latitude_of_origin",0],PARAMETER["central_meridian",15],PARAMETER["scale_factor",0.9996],'
        'PARAMETER["false_easting",500000],PARAMETER["false_northing",0],UNIT["metre",1,AUTHORITY["EPSG","9001"]],'
        'AXIS["Easting",EAST],AXIS["Northing",NORTH],AUTHORITY["EPSG","32633"]]')

TEMPLATE = {
    "scene": {
        "byteorder": "<", "interleave": "bsq", "nodata": -9999.0,
        "wavelengths": {"decimals": 3, "second_differences": [0] * 16},
        "wavelength_units": "Nanometers", "fwhm": {"decimals": 3, "second_differences": [0] * 4},
        "bbl": {"decimals": 0, "second_differences": [1, -1] + [0] * 14},
        "band_names": "wavelengths", "description": "",
        "envi": {"map info": "{UTM, 1.000, 1.000, 0.000, 0.000, 3.0000000000e+01, 3.0000000000e+01, 33, North, "
                             "WGS-84, units=Meters}",
                 "coordinate system string": "{" + _UTM + "}", "data ignore value": "-9999",
                 "sensor type": "Unknown"},
        "crs_wkt": _UTM, "transform": [0.0, 30.0, 0.0, 0.0, 0.0, -30.0],
        "tags": {"AREA_OR_POINT": "Area"}, "band_tags": [{"wavelength": "", "wavelength_units": "Nanometers"}],
        "source_format": "envi",
    },
    "source_name": ".tif", "source_bytes": 0, "target_bpp": 0.2,
}

METADATA_DICTIONARY = json.dumps(TEMPLATE, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
