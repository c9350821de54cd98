"""The `.hsic` container, version 6 (byte layout: docs/format.md).

A fixed little-endian header (magic, version, scene shape, model, quantisation step, value range) with
its own CRC32, then length-prefixed sections, each with a CRC32, ending with an END
section. Every byte counts in the rate of a small scene, so nothing is stored twice: a tile's
geometry follows from its index, and the metadata's JSON is deflated against a preset dictionary of
the keys and values every file repeats. Tiles are independent sections, so they can be written one at a time
and read in any order. Nothing from a file is ever evaluated: metadata is JSON
read with ``json.loads``, arrays are raw little-endian numbers.
"""
from __future__ import annotations

import json
import math
import numbers
import os
import struct
import threading
import zlib
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Iterable

import numpy as np

from hsicodec.atomic import Staging
from hsicodec.checkpoints import MODEL_ID_DIGITS
from hsicodec.errors import ContainerError
from hsicodec.metadata_dictionary import METADATA_DICTIONARY

MAGIC = b"\x89HSIC\r\n\x1a"
MAJOR = 6
MINOR = 0

MAX_BANDS = 65535
MAX_TILE_SIZE = 65535
MAX_COMPONENTS = 65535
MAX_HEADER_SIZE = 1 << 20
MAX_METADATA_SIZE = 1 << 26
MAX_SECTION_SIZE = 2**32 - 1
BASIS_SHARE = 0.05
"""The stored basis may add this share of one plane's quantisation error (D**2 / 12) to the per-band MSE:
a fixed budget would cap the quality at high rates or waste bytes at low ones (docs/core-bakeoff.md)."""
MAX_MEAN_EXPONENT = -2
"""The mean spectrum (normalised units, in [0, 1]) is stored in steps of at most 2**-2."""
MAX_LEVEL = (1 << 30) - 1
"""Basis rows are stored as int16 in [-32767, 32767] times a power of two."""
MIN_EXPONENT, MAX_EXPONENT = -149, 113
"""Range of a basis row's power-of-two exponent (keeps q * 2**e exact in float32)."""
MIN_STEP, MAX_STEP = 2.0**-30, 2.0**4
"""Range of the quantisation step D (normalised scene units)."""


class SectionId(IntEnum):
    """Numeric section identifiers (part of the format; never renumber)."""

    BASIS = 0x0002
    METADATA = 0x0003
    TILE = 0x0010
    END = 0xFFFF


DTYPE_CODES: dict[str, int] = {
    "uint8": 1, "int8": 2, "uint16": 3, "int16": 4,
    "uint32": 5, "int32": 6, "float32": 7, "float64": 8,
}
_DTYPE_NAMES = {code: name for name, code in DTYPE_CODES.items()}
_KNOWN_SECTIONS = frozenset(SectionId)

_PREFIX = struct.Struct("<8sHHI")  # magic, major, minor, header_size
_FIELDS = struct.Struct(f"<IIHHHBB{MODEL_ID_DIGITS // 2}sH")  # H, W, B, tile, K, dtype, byteorder, model, name length
_AFTER_NAME = struct.Struct("<ddd")  # quantisation step D, value range lo, hi
_SECTION = struct.Struct("<HI")  # id, payload length
_CRC = struct.Struct("<I")
_BASIS_HEAD = struct.Struct("<II")  # K, B
_TILE_HEAD = struct.Struct("<III")  # index, value crc, mask bytes
_TILE_SECTION_MIN = _SECTION.size + _TILE_HEAD.size + _CRC.size

Rect = tuple[int, int, int, int]
"""(row0, col0, height, width) of a tile."""


def tile_rects(height: int, width: int, tile_size: int) -> list[Rect]:
    """Row-major tiles of at most tile_size x tile_size pixels covering a height x width scene."""
    return [(r, c, min(tile_size, height - r), min(tile_size, width - c))
            for r in range(0, height, tile_size) for c in range(0, width, tile_size)]


@dataclass
class FileHeader:
    """Scene shape, source sample type, tiling, model, coded planes K and quantisation step D of a `.hsic`
    file."""

    height: int
    width: int
    bands: int
    dtype: str
    byteorder: str
    tile_size: int
    components: int
    model_name: str
    model_id: str
    """The first MODEL_ID_DIGITS hex digits of the checkpoint file's SHA-256."""
    step: float

    @property
    def grid_shape(self) -> tuple[int, int]:
        """Number of tile rows and tile columns."""
        return -(-self.height // self.tile_size), -(-self.width // self.tile_size)

    @property
    def n_tiles(self) -> int:
        """Number of tiles of the grid."""
        rows, cols = self.grid_shape
        return rows * cols

    def tile_rect(self, index: int) -> Rect:
        """(row0, col0, height, width) of tile ``index`` (row-major)."""
        if not 0 <= index < self.n_tiles:
            raise IndexError(f"tile {index} outside the grid of {self.n_tiles} tiles")
        r, c = divmod(index, self.grid_shape[1])
        row0, col0 = r * self.tile_size, c * self.tile_size
        return row0, col0, min(self.tile_size, self.height - row0), min(self.tile_size, self.width - col0)

    def tile_grid(self) -> list[Rect]:
        """Every tile's (row0, col0, height, width), row-major."""
        return tile_rects(self.height, self.width, self.tile_size)


@dataclass
class Normalisation:
    """Value range of the scene: the codec maps [lo, hi] to [0, 1]."""

    lo: float
    hi: float


@dataclass
class SpectralBasis:
    """Per-scene KLT: mean spectrum (B,) and K orthonormal rows (K, B), float32.

    ``exponents`` (K + 1,) are the power-of-two quantisation steps of the mean and
    of each row, set by `quantise_basis` and by the reader; None before quantisation.
    """

    mean: np.ndarray
    basis: np.ndarray
    exponents: np.ndarray | None = None


@dataclass
class TilePayload:
    """One coded tile: geometry, the range-coder words of its K planes, their values' CRC32, nodata mask."""

    index: int
    row0: int
    col0: int
    height: int
    width: int
    words: np.ndarray
    value_crc: int
    nodata_mask: np.ndarray | None


def quantise_basis(b: SpectralBasis, variances: np.ndarray | None, error_budget: float) -> SpectralBasis:
    """The basis exactly as a `.hsic` file stores it (idempotent for the same variances and budget).

    The budget is shared by the mean and the n rows of non-zero variance: the
    mean is stored in steps of the largest power of two s_0 <= 2**MAX_MEAN_EXPONENT
    with s_0**2 / 12 <= error_budget / (n + 1), row k in steps of the largest
    power of two s_k with variances[k] * s_k**2 / 12 <= error_budget / (n + 1),
    so the basis adds at most about `error_budget` to the per-band MSE of the
    normalised scene (variances: of the KLT components; 1 when not given). A row
    of zero variance is stored as zeros, with exponent 0.
    """
    mean, basis = _checked_basis(b)
    k = basis.shape[0]
    variances = np.ones(k) if variances is None else np.asarray(variances, dtype=np.float64)
    share = error_budget / (np.count_nonzero(variances > 0) + 1)
    steps = np.sqrt(12 * share / np.maximum(variances, 1e-30))
    row_exponents = np.where(variances > 0, np.clip(np.floor(np.log2(steps)), MIN_EXPONENT, MAX_EXPONENT), 0)
    mean_exponent = np.clip(np.floor(np.log2(np.sqrt(12 * share))), MIN_EXPONENT, MAX_MEAN_EXPONENT)
    exponents = np.concatenate([[mean_exponent], row_exponents]).astype(np.int16)
    values = np.concatenate([mean[None], np.where(variances[:, None] > 0, basis, 0.0)])
    levels = np.rint(np.ldexp(values.astype(np.float64), -exponents.astype(np.int64)[:, None]))
    if np.abs(levels).max(initial=0) > MAX_LEVEL:
        raise ValueError("basis or mean too large to store")
    stored = _dequantise(levels.astype(np.int32), exponents)
    return SpectralBasis(stored[0], stored[1:], exponents)


def _checked_basis(b: SpectralBasis) -> tuple[np.ndarray, np.ndarray]:
    """Mean and basis as float32 arrays of consistent, finite shape (ValueError otherwise)."""
    mean = np.asarray(b.mean, dtype=np.float32)
    basis = np.asarray(b.basis, dtype=np.float32)
    if mean.ndim != 1 or basis.ndim != 2 or basis.shape[1] != mean.shape[0]:
        raise ValueError(f"basis must be mean (B,) and basis (K, B), got {mean.shape} and {basis.shape}")
    if not (np.isfinite(mean).all() and np.isfinite(basis).all()):
        raise ValueError("basis and mean must be finite")
    return mean, basis


def _dequantise(levels: np.ndarray, exponents: np.ndarray) -> np.ndarray:
    """float32 rows from integer levels and per-row exponents (exact)."""
    return np.ldexp(levels.astype(np.float64), exponents.astype(np.int32)[:, None]).astype(np.float32)


# --------------------------------------------------------------------------- validation


def _header_problem(h: FileHeader) -> str | None:
    """Why a header cannot be stored or trusted, or None."""
    bounds = {
        "height": (h.height, 1, 2**32 - 1), "width": (h.width, 1, 2**32 - 1), "bands": (h.bands, 1, MAX_BANDS),
        "tile_size": (h.tile_size, 1, MAX_TILE_SIZE), "components": (h.components, 0, MAX_COMPONENTS),
    }
    for name, (value, lo, hi) in bounds.items():
        if not isinstance(value, numbers.Integral) or not lo <= value <= hi:
            return f"header {name} {value!r} outside [{lo}, {hi}]"
    if h.dtype not in DTYPE_CODES:
        return f"header dtype {h.dtype!r} not one of {sorted(DTYPE_CODES)}"
    if h.byteorder not in ("<", ">"):
        return f"header byteorder {h.byteorder!r} is not '<' or '>'"
    if len(h.model_id) != MODEL_ID_DIGITS or not set(h.model_id) <= set("0123456789abcdef"):
        return f"header model_id {h.model_id!r} is not {MODEL_ID_DIGITS} lowercase hex digits"
    if len(h.model_name.encode("utf-8")) > 0xFFFF:
        return "header model_name longer than 65535 UTF-8 bytes"
    if h.components > h.bands:
        return f"header components {h.components} exceed its {h.bands} bands"
    if not (isinstance(h.step, numbers.Real) and MIN_STEP <= h.step <= MAX_STEP):
        return f"header step {h.step!r} outside [{MIN_STEP}, {MAX_STEP}]"
    return None


def _tile_problem(tile: TilePayload, header: FileHeader) -> str | None:
    """Why a tile does not fit its header, or None."""
    if not isinstance(tile.index, numbers.Integral) or not 0 <= tile.index < header.n_tiles:
        return f"tile index {tile.index!r} outside [0, {header.n_tiles})"
    rect = (tile.row0, tile.col0, tile.height, tile.width)
    if rect != header.tile_rect(tile.index):
        return f"tile {tile.index}: geometry {rect} differs from the grid's {header.tile_rect(tile.index)}"
    if not 0 <= tile.value_crc < 2**32:
        return f"tile {tile.index}: value_crc {tile.value_crc} is not a 32-bit value"
    return None


def _words(words: np.ndarray, what: str) -> np.ndarray:
    """Range-coder words as a contiguous little-endian uint32 array (ValueError otherwise)."""
    words = np.asarray(words)
    if words.ndim != 1 or words.dtype != np.uint32:
        raise ValueError(f"{what} must be a 1-D uint32 array, got {words.dtype} {words.shape}")
    return np.ascontiguousarray(words, dtype="<u4")


def _finite_norm(norm: Normalisation) -> bool:
    return math.isfinite(norm.lo) and math.isfinite(norm.hi)


# --------------------------------------------------------------------------- writing


def _header_bytes(h: FileHeader, norm: Normalisation) -> bytes:
    """Fixed header including its CRC32."""
    name = h.model_name.encode("utf-8")
    fields = _FIELDS.pack(h.height, h.width, h.bands, h.tile_size, h.components, DTYPE_CODES[h.dtype],
                          ord(h.byteorder), bytes.fromhex(h.model_id), len(name)) + name
    fields += _AFTER_NAME.pack(h.step, norm.lo, norm.hi)
    head = _PREFIX.pack(MAGIC, MAJOR, MINOR, len(fields)) + fields
    return head + _CRC.pack(zlib.crc32(head))


def _basis_payload(basis: SpectralBasis) -> bytes:
    """K, B, exponents, then zlib of the int32 level differences along the bands."""
    if basis.exponents is None:
        raise ValueError("basis is not quantised; pass it through quantise_basis")
    mean, rows = _checked_basis(basis)
    exponents = np.asarray(basis.exponents, dtype=np.int16)
    values = np.concatenate([mean[None], rows]).astype(np.float64)
    levels = np.rint(np.ldexp(values, -exponents.astype(np.int64)[:, None])).astype(np.int64)
    if not np.array_equal(_dequantise(levels, exponents), values.astype(np.float32)):
        raise ValueError("basis is not on its exponents' grid; pass it through quantise_basis")
    deltas = np.diff(levels, axis=1, prepend=0).astype("<i4")
    return (_BASIS_HEAD.pack(rows.shape[0], rows.shape[1]) + exponents.astype("<i2").tobytes()
            + zlib.compress(deltas.tobytes(), 9))


def _metadata_payload(metadata: dict) -> bytes:
    if not isinstance(metadata, dict):
        raise ValueError(f"metadata must be a dict, got {type(metadata).__name__}")
    try:
        text = json.dumps(metadata, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError) as err:
        raise ValueError(f"metadata is not JSON-serialisable: {err}") from err
    deflater = zlib.compressobj(9, zdict=METADATA_DICTIONARY)
    return deflater.compress(text) + deflater.flush()


def _mask_payload(mask: np.ndarray | None, shape: tuple[int, int, int], index: int) -> bytes:
    """zlib of the bit-packed mask, or b"" for no mask."""
    if mask is None:
        return b""
    mask = np.asarray(mask)
    if mask.shape != shape or mask.dtype != np.bool_:
        raise ValueError(f"tile {index}: nodata_mask must be bool {shape}, got {mask.dtype} {mask.shape}")
    return zlib.compress(np.packbits(mask, axis=None, bitorder="big").tobytes(), 6)


def _leading_sections(header: FileHeader, norm: Normalisation, basis: SpectralBasis,
                      metadata: dict) -> list[tuple[SectionId, bytes]]:
    """The sections before the tiles, checked against the header (ValueError otherwise)."""
    problem = _header_problem(header)
    if problem:
        raise ValueError(problem)
    if not _finite_norm(norm):
        raise ValueError(f"normalisation {norm} is not finite")
    if np.shape(basis.basis) != (header.components, header.bands):
        raise ValueError(f"basis shape {np.shape(basis.basis)} is not ({header.components}, {header.bands})")
    return [(SectionId.BASIS, _basis_payload(basis)), (SectionId.METADATA, _metadata_payload(metadata))]


def side_bytes(header: FileHeader, norm: Normalisation, basis: SpectralBasis, metadata: dict) -> int:
    """Bytes of a file with this header, these sections and END: everything but the tile sections."""
    sections = _leading_sections(header, norm, basis, metadata)
    return len(_header_bytes(header, norm)) + sum(_SECTION.size + len(p) + _CRC.size for _, p in sections) + \
        _SECTION.size + _CRC.size


def tile_section_bytes(words: int, nodata_mask: np.ndarray | None = None) -> int:
    """Bytes of a TILE section holding that many range-coder words and this nodata mask."""
    mask = b"" if nodata_mask is None else _mask_payload(nodata_mask, nodata_mask.shape, 0)
    return _TILE_SECTION_MIN + 4 * words + len(mask)


class HsicWriter:
    """Streams a `.hsic` file: header sections at once, then one tile at a time.

    Writes to a temporary file next to ``path``; leaving the ``with`` block
    normally with every tile written adds END, syncs it to disk and renames it
    to ``path`` (`atomic.Staging.commit`). Otherwise the temporary file is
    deleted and ``path`` is left untouched.
    """

    def __init__(self, path: Path, header: FileHeader, norm: Normalisation, basis: SpectralBasis,
                 metadata: dict) -> None:
        sections = _leading_sections(header, norm, basis, metadata)
        self.path = Path(path)
        self.header = header
        self._written: set[int] = set()
        self._staging = Staging()
        self._file: BinaryIO | None = open(self._staging.temp(self.path), "xb")
        try:
            self._file.write(_header_bytes(header, norm))
            for section_id, payload in sections:
                self._write_section(section_id, [payload])
        except BaseException:
            self._abort()
            raise

    def __enter__(self) -> HsicWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None:
            self._abort()
            return
        if len(self._written) != self.header.n_tiles:
            self._abort()
            raise ContainerError(f"{self.path}: only {len(self._written)} of {self.header.n_tiles} tiles written; "
                                 "file not created")
        try:
            self._finish()
        except BaseException:
            self._abort()
            raise

    def add_tile(self, tile: TilePayload) -> None:
        """Append one tile (any order, each index once)."""
        if self._file is None:
            raise ValueError("writer is closed")
        problem = _tile_problem(tile, self.header)
        if problem:
            raise ValueError(problem)
        if tile.index in self._written:
            raise ValueError(f"tile {tile.index} written twice")
        words = _words(tile.words, "words")
        mask = _mask_payload(tile.nodata_mask, (tile.height, tile.width, self.header.bands), tile.index)
        head = _TILE_HEAD.pack(tile.index, tile.value_crc, len(mask))
        self._write_section(SectionId.TILE, [head, words.data.cast("B"), mask])
        self._written.add(tile.index)

    def _write_section(self, section_id: SectionId, parts: list[bytes | memoryview]) -> None:
        """id, length, payload parts, CRC32 of all three."""
        length = sum(len(p) for p in parts)
        if length > MAX_SECTION_SIZE:
            raise ValueError(f"{section_id.name} section of {length} bytes exceeds the format's {MAX_SECTION_SIZE} "
                             "(code the scene in smaller tiles)")
        head = _SECTION.pack(section_id, length)
        crc = zlib.crc32(head)
        self._file.write(head)
        for part in parts:
            crc = zlib.crc32(part, crc)
            self._file.write(part)
        self._file.write(_CRC.pack(crc))

    def _finish(self) -> None:
        self._write_section(SectionId.END, [])
        self._file.close()
        self._file = None
        self._staging.commit()

    def _abort(self) -> None:
        """Delete the temporary file, even when closing it fails (a full disk cannot flush)."""
        try:
            if self._file is not None:
                self._file.close()
        except OSError:
            pass
        finally:
            self._file = None
            self._staging.abort()


def rate_figures(file_bytes: int, shape: tuple[int, int, int], source_bytes: int) -> dict[str, float]:
    """bpp = file bits / (H*W); bpppb = bpp / B; ratio = source storage / file size."""
    height, width, bands = shape
    bpp = 8 * file_bytes / (height * width)
    return {"bytes": file_bytes, "bpp": bpp, "bpppb": bpp / bands, "ratio": source_bytes / file_bytes}


def source_bytes(reader: HsicReader) -> int:
    """Storage size of the scene a .hsic file was made from (its raw size if not recorded)."""
    h = reader.header
    raw = h.height * h.width * h.bands * np.dtype(h.dtype).itemsize
    return int(reader.metadata.get("source_bytes", 0)) or raw


def is_hsic(path: Path) -> bool:
    """Whether `path` starts with the .hsic magic bytes (an .hsic file, valid or damaged)."""
    with path.open("rb") as fh:
        return fh.read(len(MAGIC)) == MAGIC


def _crc_holds(section: bytes) -> bool:
    """Whether a whole section's trailing CRC32 matches its id, length and payload."""
    return zlib.crc32(section[:-_CRC.size]) == _CRC.unpack_from(section, len(section) - _CRC.size)[0]


# --------------------------------------------------------------------------- reading


class HsicReader:
    """Opens a `.hsic` file: checks it and indexes its tiles without reading them.

    Opening verifies the magic, the version, the header CRC, the CRC of every
    non-tile section and the END section, so a file that opens is complete;
    tiles are CRC-checked when read.

    With ``salvage=True`` a damaged tile area is tolerated: the walk skips to the
    next tile section whose CRC checks, stops at a truncation, and lists the
    tiles it could not find in ``missing_tiles``. The header and the basis and
    metadata sections must still be intact.
    """

    path: Path
    file_bytes: int
    version: tuple[int, int]
    header: FileHeader
    norm: Normalisation
    basis: SpectralBasis
    metadata: dict

    def __init__(self, path: Path, salvage: bool = False) -> None:
        self.path = Path(path)
        self.salvage = salvage
        self.missing_tiles: list[int] = []
        self._file = open(self.path, "rb")
        self._lock = threading.Lock()
        self._tiles: dict[int, tuple[int, int]] = {}  # index -> (section offset, payload length)
        try:
            self.file_bytes = os.fstat(self._file.fileno()).st_size
            self.version, self.header, self.norm, start = self._read_header()
            self._index_sections(start)
        except BaseException:
            self._file.close()
            raise

    def __enter__(self) -> HsicReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Release the file."""
        self._file.close()

    def read_tile(self, index: int) -> TilePayload:
        """Tile ``index``, CRC-checked (ContainerError naming the tile otherwise)."""
        if not 0 <= index < self.header.n_tiles:
            raise IndexError(f"tile {index} outside the grid of {self.header.n_tiles} tiles")
        if index not in self._tiles:
            raise self._fail(f"tile {index} is missing (damaged or cut off)")
        offset, length = self._tiles[index]
        raw = self._read_section(offset, length)
        if not _crc_holds(raw):
            raise ContainerError(f"{self.path}: tile {index} is corrupt (CRC mismatch)")
        return self._parse_tile(memoryview(raw)[_SECTION.size:-_CRC.size], index)

    def damaged_tiles(self, indices: Iterable[int]) -> dict[int, str]:
        """The tiles among `indices` that are missing or fail their CRC, with the reason."""
        damaged = {}
        for index in indices:
            try:
                self.read_tile(index)
            except ContainerError as exc:
                damaged[index] = str(exc)
        return damaged

    def tiles_in_window(self, row0: int, col0: int, height: int, width: int) -> list[int]:
        """Indices (ascending) of the tiles that intersect a window inside the scene."""
        h = self.header
        if height < 1 or width < 1 or row0 < 0 or col0 < 0 or row0 + height > h.height or col0 + width > h.width:
            raise ValueError(f"window ({row0}, {col0}, {height}, {width}) is not inside the {h.height}x{h.width} scene")
        ts, cols = h.tile_size, h.grid_shape[1]
        rows = range(row0 // ts, (row0 + height - 1) // ts + 1)
        return [r * cols + c for r in rows for c in range(col0 // ts, (col0 + width - 1) // ts + 1)]

    # ------------------------------------------------------------------ internals

    def _fail(self, message: str) -> ContainerError:
        return ContainerError(f"{self.path}: {message}")

    def _read_at(self, offset: int, size: int) -> bytes:
        """Exactly ``size`` bytes at ``offset`` (ContainerError if the file ends first)."""
        if offset + size > self.file_bytes:
            raise self._fail(f"truncated: {size} bytes needed at byte {offset}, file has {self.file_bytes}")
        with self._lock:
            self._file.seek(offset)
            data = self._file.read(size)
        if len(data) != size:
            raise self._fail(f"truncated: {size} bytes needed at byte {offset}, got {len(data)}")
        return data

    def _read_header(self) -> tuple[tuple[int, int], FileHeader, Normalisation, int]:
        """Version, header, value range and the offset of the first section."""
        first = self._file.read(_PREFIX.size)
        if first[:len(MAGIC)] != MAGIC[:len(first)]:
            raise self._fail("not a .hsic file (bad magic bytes)")
        if len(first) >= 12:
            major, minor = struct.unpack_from("<HH", first, len(MAGIC))
            if major != MAJOR:
                raise self._fail(f"unsupported .hsic version {major}.{minor} (this hsicodec reads {MAJOR}.x)")
        if len(first) < _PREFIX.size:
            raise self._fail(f"truncated: {len(first)}-byte file")
        _, major, minor, size = _PREFIX.unpack(first)
        if not _FIELDS.size <= size <= MAX_HEADER_SIZE:
            raise self._fail(f"header size {size} outside [{_FIELDS.size}, {MAX_HEADER_SIZE}]")
        fields = self._read_at(_PREFIX.size, size + _CRC.size)
        if zlib.crc32(first + fields[:size]) != _CRC.unpack_from(fields, size)[0]:
            raise self._fail("header is corrupt (CRC mismatch)")
        header, norm = self._parse_header(fields[:size])
        return (major, minor), header, norm, _PREFIX.size + size + _CRC.size

    def _parse_header(self, fields: bytes) -> tuple[FileHeader, Normalisation]:
        h, w, b, tile, k, dtype, order, model_id, name_len = _FIELDS.unpack_from(fields)
        after_name = _FIELDS.size + name_len
        if after_name + _AFTER_NAME.size > len(fields):
            raise self._fail(f"header model name of {name_len} bytes overruns the header")
        step, lo, hi = _AFTER_NAME.unpack_from(fields, after_name)
        try:
            name = fields[_FIELDS.size:after_name].decode("utf-8")
        except UnicodeDecodeError as err:
            raise self._fail("header model name is not UTF-8") from err
        header = FileHeader(h, w, b, _DTYPE_NAMES.get(dtype, f"code {dtype}"), chr(order), tile, k, name,
                            model_id.hex(), step)
        problem = _header_problem(header)
        if problem:
            raise self._fail(problem)
        norm = Normalisation(lo, hi)
        if not _finite_norm(norm):
            raise self._fail(f"header value range {norm} is not finite")
        # a whole file holds every tile; a salvaged one may have lost most of them, but a count beyond its
        # size is still corrupt (and would make the list of missing tiles unbounded)
        room = self.file_bytes if self.salvage else self.file_bytes // _TILE_SECTION_MIN
        if header.n_tiles > room:
            raise self._fail(f"truncated or corrupt: header declares {header.n_tiles} tiles, "
                             f"more than a {self.file_bytes}-byte file can hold")
        return header, norm

    def _index_sections(self, offset: int) -> None:
        """Walk the section headers to END; read and check the small sections, index the tiles."""
        payloads: dict[SectionId, bytes] = {}
        while True:
            try:
                section_id, end = self._index_section(offset, payloads)
            except ContainerError:
                if not self.salvage or not self._has_small_sections(payloads):
                    raise
                section_id, end = SectionId.END, self.file_bytes
                resumed = self._next_intact_tile(offset + 1)
                if resumed is not None:
                    offset = resumed
                    continue
            if section_id == SectionId.END:
                break
            offset = end
        if end != self.file_bytes and not self.salvage:
            raise self._fail(f"{self.file_bytes - end} bytes of trailing data after the END section")
        if payloads.get(SectionId.END):
            raise self._fail("END section is not empty")
        self._parse_sections(payloads)
        missing = sorted(set(range(self.header.n_tiles)) - self._tiles.keys())
        if missing and not self.salvage:
            raise self._fail(f"tile {missing[0]} missing ({len(missing)} of {self.header.n_tiles} tiles absent)")
        self.missing_tiles = missing

    def _index_section(self, offset: int, payloads: dict[SectionId, bytes]) -> tuple[int, int]:
        """Index the section at `offset`; returns its id and where the next one starts."""
        section_id, length = _SECTION.unpack(self._read_at(offset, _SECTION.size))
        end = offset + _SECTION.size + length + _CRC.size
        if end > self.file_bytes:
            raise self._fail(f"truncated: section {section_id} at byte {offset} declares {length} bytes, "
                             f"only {max(self.file_bytes - offset - _SECTION.size - _CRC.size, 0)} remain")
        if section_id == SectionId.TILE:
            self._index_tile(offset, length)
        elif section_id in _KNOWN_SECTIONS:
            if section_id in payloads:
                raise self._fail(f"section {SectionId(section_id).name} appears twice")
            payloads[SectionId(section_id)] = self._checked_payload(offset, length, SectionId(section_id).name)
        return section_id, end

    def _has_small_sections(self, payloads: dict[SectionId, bytes]) -> bool:
        return {SectionId.BASIS, SectionId.METADATA} <= payloads.keys()

    def _next_intact_tile(self, start: int, chunk: int = 1 << 24) -> int | None:
        """Offset of the next tile section at or after `start` whose CRC checks (salvage only)."""
        marker = _SECTION.pack(SectionId.TILE, 0)[:2]
        while start < self.file_bytes:
            with self._lock:
                self._file.seek(start)
                window = self._file.read(chunk + len(marker) - 1)
            found = window.find(marker)
            while 0 <= found < chunk:
                if self._is_intact_tile(start + found):
                    return start + found
                found = window.find(marker, found + 1)
            start += chunk
        return None

    def _is_intact_tile(self, offset: int) -> bool:
        if offset + _SECTION.size > self.file_bytes:
            return False
        _, length = _SECTION.unpack(self._read_at(offset, _SECTION.size))
        if not _TILE_HEAD.size <= length <= self.file_bytes - offset - _SECTION.size - _CRC.size:
            return False
        return _crc_holds(self._read_section(offset, length))

    def _read_section(self, offset: int, length: int) -> bytes:
        """The whole section at `offset` with a payload of `length` bytes: id, length, payload, CRC."""
        return self._read_at(offset, _SECTION.size + length + _CRC.size)

    def _checked_payload(self, offset: int, length: int, name: str) -> bytes:
        raw = self._read_section(offset, length)
        if not _crc_holds(raw):
            raise self._fail(f"{name} section is corrupt (CRC mismatch)")
        return raw[_SECTION.size:-_CRC.size]

    def _index_tile(self, offset: int, length: int) -> None:
        if length < _TILE_HEAD.size:
            raise self._fail(f"tile section at byte {offset} is too short ({length} bytes)")
        (index,) = struct.unpack("<I", self._read_at(offset + _SECTION.size, 4))
        if index >= self.header.n_tiles:
            raise self._fail(f"{self._tile_section(offset)} has index {index}, grid has {self.header.n_tiles}; "
                             "damaged (--salvage writes the intact tiles)")
        if index in self._tiles:
            raise self._fail(f"tile {index} appears twice ({self._tile_section(offset)})")
        self._tiles[index] = (offset, length)

    def _tile_section(self, offset: int) -> str:
        return f"tile section at byte {offset} (tile section no. {len(self._tiles) + 1} in the file)"

    def _parse_sections(self, payloads: dict[SectionId, bytes]) -> None:
        for required in (SectionId.BASIS, SectionId.METADATA):
            if required not in payloads:
                raise self._fail(f"{required.name} section missing")
        self.metadata = self._parse_metadata(payloads[SectionId.METADATA])
        self.basis = self._parse_basis(payloads[SectionId.BASIS])

    def _parse_metadata(self, payload: bytes) -> dict:
        inflater = zlib.decompressobj(zdict=METADATA_DICTIONARY)
        try:
            text = inflater.decompress(payload, MAX_METADATA_SIZE)
        except zlib.error as err:
            raise self._fail(f"METADATA section is not zlib data: {err}") from err
        if inflater.unconsumed_tail or not inflater.eof:
            raise self._fail(f"METADATA section is truncated or inflates beyond {MAX_METADATA_SIZE} bytes")
        try:
            metadata = json.loads(text.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as err:
            raise self._fail(f"METADATA section is not UTF-8 JSON: {err}") from err
        if not isinstance(metadata, dict):
            raise self._fail("METADATA section is not a JSON object")
        return metadata

    def _parse_basis(self, payload: bytes) -> SpectralBasis:
        k, b = _BASIS_HEAD.unpack_from(payload) if len(payload) >= _BASIS_HEAD.size else (-1, -1)
        if (k, b) != (self.header.components, self.header.bands):
            raise self._fail(f"BASIS section shape ({k}, {b}) differs from the header's "
                             f"({self.header.components}, {self.header.bands})")
        at = _BASIS_HEAD.size + 2 * (k + 1)
        if len(payload) < at:
            raise self._fail("BASIS section is truncated")
        exponents = np.frombuffer(payload, "<i2", k + 1, _BASIS_HEAD.size).astype(np.int16)
        size = 4 * (k + 1) * b
        inflater = zlib.decompressobj()
        try:
            raw = inflater.decompress(payload[at:], size)
        except zlib.error as err:
            raise self._fail(f"BASIS levels are not zlib data: {err}") from err
        if len(raw) != size or inflater.unconsumed_tail or not inflater.eof:
            raise self._fail(f"BASIS levels do not inflate to {size} bytes")
        levels = np.cumsum(np.frombuffer(raw, "<i4").reshape(k + 1, b).astype(np.int64), axis=1)
        if ((exponents < MIN_EXPONENT) | (exponents > MAX_EXPONENT)).any() or np.abs(levels).max() > MAX_LEVEL:
            raise self._fail("BASIS section holds an out-of-range exponent or level")
        stored = _dequantise(levels, exponents)
        return SpectralBasis(stored[0], stored[1:], exponents)

    def _parse_tile(self, payload: memoryview, index: int) -> TilePayload:
        stored_index, value_crc, mask_bytes = _TILE_HEAD.unpack_from(payload)
        if stored_index != index:  # the index was read when the file was opened: it changed since
            raise self._fail(f"tile {index}: its section now holds tile {stored_index} (the file changed while open)")
        word_bytes = len(payload) - _TILE_HEAD.size - mask_bytes
        if word_bytes < 0 or word_bytes % 4:
            raise self._fail(f"tile {index}: a {mask_bytes}-byte mask does not fit its {len(payload)}-byte section")
        tile = TilePayload(index, *self.header.tile_rect(index), np.empty(0, np.uint32), value_crc, None)
        tile.words = np.frombuffer(payload, "<u4", word_bytes // 4, _TILE_HEAD.size).astype(np.uint32)
        if mask_bytes:
            shape = (tile.height, tile.width, self.header.bands)
            tile.nodata_mask = self._parse_mask(payload[_TILE_HEAD.size + word_bytes:], shape, index)
        return tile

    def _parse_mask(self, data: memoryview, shape: tuple[int, int, int], index: int) -> np.ndarray:
        count = math.prod(shape)
        expected = -(-count // 8)
        inflater = zlib.decompressobj()
        try:
            packed = inflater.decompress(data, expected)
        except zlib.error as err:
            raise self._fail(f"tile {index}: nodata mask is not valid zlib data: {err}") from err
        if len(packed) != expected or not inflater.eof or inflater.unconsumed_tail or inflater.unused_data:
            raise self._fail(f"tile {index}: nodata mask does not hold {count} bits")
        bits = np.unpackbits(np.frombuffer(packed, np.uint8), count=count, bitorder="big")
        return bits.view(np.bool_).reshape(shape)
