"""Sample types hsicodec reads and writes, and their ENVI `data type` codes."""
from __future__ import annotations

import numpy as np

from hsicodec.errors import InputError

ENVI_CODES: dict[int, np.dtype] = {
    1: np.dtype("uint8"),
    2: np.dtype("int16"),
    3: np.dtype("int32"),
    4: np.dtype("float32"),
    5: np.dtype("float64"),
    12: np.dtype("uint16"),
    13: np.dtype("uint32"),
    14: np.dtype("int64"),
    15: np.dtype("uint64"),
}
ENVI_CODE_OF: dict[np.dtype, int] = {dt: code for code, dt in ENVI_CODES.items()}
# what a .hsic file can describe (ENVI has no int8; 64-bit integers do not fit the codec's float path)
SUPPORTED: tuple[np.dtype, ...] = tuple(np.dtype(name) for name in (
    "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64"))


def native(dtype: np.dtype | str, where: str) -> np.dtype:
    """`dtype` in native byte order; InputError naming `where` if hsicodec cannot store it."""
    dt = np.dtype(dtype).newbyteorder("=")
    if dt not in SUPPORTED:
        names = ", ".join(d.name for d in SUPPORTED)
        raise InputError(f"{where}: unsupported sample type {dt.name} (supported: {names})")
    return dt


def envi_code(dtype: np.dtype, where: str) -> int:
    """ENVI `data type` of `dtype`; InputError for types ENVI cannot hold (int8)."""
    if np.dtype(dtype) not in ENVI_CODE_OF:
        raise InputError(f"{where}: ENVI has no {np.dtype(dtype).name} sample type; write GeoTIFF (-f gtiff)")
    return ENVI_CODE_OF[np.dtype(dtype)]
