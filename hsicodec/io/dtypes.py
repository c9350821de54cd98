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
SUPPORTED: tuple[np.dtype, ...] = tuple(ENVI_CODES.values())


def native(dtype: np.dtype | str, where: str) -> np.dtype:
    """`dtype` in native byte order; InputError naming `where` if hsicodec cannot store it."""
    dt = np.dtype(dtype).newbyteorder("=")
    if dt not in ENVI_CODE_OF:
        names = ", ".join(d.name for d in SUPPORTED)
        raise InputError(f"{where}: unsupported sample type {dt.name} (supported: {names})")
    return dt
