"""ENVI scenes (`.hdr` + raw data file): memory-mapped windowed reads and tile-by-tile writes."""
from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from hsicodec.errors import InputError
from hsicodec.atomic import Staging
from hsicodec.io.dtypes import ENVI_CODES, envi_code, native
from hsicodec.io.enviheader import format_header, meta_fields, parse_header, split_fields
from hsicodec.io.georef import GEOREF_FIELDS, envi_georef, georef_of_envi
from hsicodec.io.meta import INTERLEAVES, SceneMeta
from hsicodec.io.scene import SceneReader, check_shape

DATA_EXTENSIONS = ("", ".img", ".dat", ".raw", ".bsq", ".bil", ".bip")
MAX_HEADER_BYTES = 64 << 20


def data_file_of(header: Path) -> Path | None:
    """The data file next to an ENVI header (`x.hdr` -> `x`, `x.img`, ...; `x.img.hdr` -> `x.img`)."""
    base = header.with_suffix("")
    for ext in DATA_EXTENSIONS:
        for candidate in (base.with_name(base.name + ext), base.with_name(base.name + ext.upper())):
            if candidate.is_file():
                return candidate
    return None


def header_of(data: Path) -> Path | None:
    """The ENVI header of a data file (`x.img` -> `x.img.hdr` or `x.hdr`), if there is one."""
    candidates = [data.with_name(data.name + ".hdr"), data.with_name(data.name + ".HDR")]
    if data.suffix:
        candidates += [data.with_suffix(".hdr"), data.with_suffix(".HDR")]
    return next((c for c in candidates if c.is_file()), None)


def envi_paths(path: Path) -> tuple[Path, Path]:
    """(data, header) paths for an output named by either (`x.hdr` -> `x.img` + `x.hdr`)."""
    if path.suffix.lower() == ".hdr":
        return path.with_suffix(".img"), path
    return path, (path.with_suffix(".hdr") if path.suffix else path.with_name(path.name + ".hdr"))


def _int_field(fields: dict[str, str], key: str, where: str, default: int | None = None) -> int:
    if key not in fields:
        if default is None:
            raise InputError(f"{where}: header has no '{key}'")
        return default
    try:
        value = int(fields[key].strip())
    except ValueError:
        raise InputError(f"{where}: header field '{key}' is not an integer: {fields[key]!r}") from None
    if value < 0:
        raise InputError(f"{where}: header field '{key}' is negative: {value}")
    return value


class EnviReader(SceneReader):
    """An ENVI scene, read window by window through numpy memmaps of its data file (BSQ, BIL or BIP)."""

    def __init__(self, header: Path, data: Path | None = None) -> None:
        where = str(header)
        if header.stat().st_size > MAX_HEADER_BYTES:
            raise InputError(f"{where}: too large for an ENVI header")
        raw = header.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
        fields = parse_header(text, where)
        h = _int_field(fields, "lines", where)
        w = _int_field(fields, "samples", where)
        b = _int_field(fields, "bands", where)
        self.shape = check_shape((h, w, b), where)
        code = _int_field(fields, "data type", where)
        if code not in ENVI_CODES:
            raise InputError(f"{where}: unsupported ENVI data type {code}")
        self.dtype = native(ENVI_CODES[code], where)
        order = _int_field(fields, "byte order", where, default=0)
        if order not in (0, 1):
            raise InputError(f"{where}: header field 'byte order' must be 0 or 1, not {order}")
        byteorder = "<" if order == 0 else ">"
        interleave = fields.get("interleave", "bsq").strip().lower()
        if interleave not in INTERLEAVES:
            raise InputError(f"{where}: unknown interleave {interleave!r} (expected bsq, bil or bip)")
        offset = _int_field(fields, "header offset", where, default=0)

        data = data or data_file_of(header)
        if data is None:
            raise InputError(f"{where}: data file not found next to the header")
        size = data.stat().st_size
        need = offset + h * w * b * self.dtype.itemsize
        if size < need:
            raise InputError(
                f"{data}: data file too short for its header ({size} bytes, needs {need})"
            )
        self.path = header
        self.data_path = data
        self.storage_bytes = size + len(raw)
        layout = {"bsq": (b, h, w), "bil": (h, b, w), "bip": (h, w, b)}[interleave]
        self._interleave = interleave
        self._layout: tuple[np.dtype, int, tuple[int, int, int]] | None = (
            self.dtype.newbyteorder(byteorder), offset, layout)
        crs_wkt, transform = georef_of_envi(data) if "map info" in fields else (None, None)
        self.meta = SceneMeta(
            byteorder=byteorder,
            interleave=interleave,
            crs_wkt=crs_wkt,
            transform=transform,
            source_format="envi",
            **split_fields(fields, b),
        )

    def _read(self, row0: int, col0: int, height: int, width: int) -> np.ndarray:
        if self._layout is None:
            raise ValueError(f"{self.path}: reader is closed")
        dtype, offset, layout = self._layout
        # A map per read, dropped after it: pages read leave the process instead of piling up in its RSS.
        data = np.memmap(self.data_path, dtype=dtype, mode="r", offset=offset, shape=layout)
        rows, cols = slice(row0, row0 + height), slice(col0, col0 + width)
        out = np.empty((height, width, self.shape[2]), dtype=self.dtype)
        if self._interleave == "bsq":
            out[...] = data[:, rows, cols].transpose(1, 2, 0)
        elif self._interleave == "bil":
            out[...] = data[rows, :, cols].transpose(0, 2, 1)
        else:
            out[...] = data[rows, cols, :]
        del data
        return out

    def close(self) -> None:
        self._layout = None


def _reserve(fd: int, size: int) -> None:
    """Allocate the data file's blocks now: a full disk is an OSError here, not a SIGBUS in the memmap."""
    if size == 0:
        return
    try:
        os.posix_fallocate(fd, 0, size)
        return
    except AttributeError:  # not on this platform (macOS)
        pass
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise
    os.ftruncate(fd, size)  # space is then claimed while writing


def write_envi(
    path: Path,
    shape: tuple[int, int, int],
    dtype: np.dtype,
    meta: SceneMeta,
    tiles: Iterable[tuple[int, int, np.ndarray]],
    staging: Staging,
) -> None:
    """Data file (memmap, in `meta.interleave` and `meta.byteorder`) plus header, under temp names."""
    h, w, b = shape
    data_path, header_path = envi_paths(path)
    interleave = meta.interleave or "bsq"
    fields = meta_fields(meta)
    header: dict[str, str] = {}
    if "description" in fields:
        header["description"] = fields.pop("description")
    header.update({
        "samples": str(w),
        "lines": str(h),
        "bands": str(b),
        "header offset": "0",
        "file type": "ENVI Standard",
        "data type": str(envi_code(dtype, str(path))),
        "interleave": interleave,
        "byte order": "0" if meta.byteorder == "<" else "1",
    })
    georef = {k: fields.pop(k) for k in GEOREF_FIELDS if k in fields}
    if "map info" not in georef:
        georef = envi_georef(meta.crs_wkt, meta.transform) or georef
    header.update(georef)
    header.update(fields)

    layout = {"bsq": (b, h, w), "bil": (h, b, w), "bip": (h, w, b)}[interleave]
    stored = dtype.newbyteorder(meta.byteorder)
    temp = staging.temp(data_path)
    with temp.open("wb") as fh:
        _reserve(fh.fileno(), h * w * b * dtype.itemsize)
    for row0, col0, tile in tiles:
        # A map per tile, dropped after it: written pages leave the process (to the page cache, which writes
        # them back) instead of piling up in its RSS.
        out = np.memmap(temp, dtype=stored, mode="r+", shape=layout)
        rows, cols = slice(row0, row0 + tile.shape[0]), slice(col0, col0 + tile.shape[1])
        if interleave == "bsq":
            out[:, rows, cols] = tile.transpose(2, 0, 1)
        elif interleave == "bil":
            out[rows, :, cols] = tile.transpose(0, 2, 1)
        else:
            out[rows, cols, :] = tile
        del out
    staging.temp(header_path).write_text(format_header(header))
