"""Range coding of integer symbols with constriction over compressai's CDF tables.

Symbols are grouped by table row: every row present (ascending) codes all of its
symbols with one constriction ``Categorical`` model in one vectorised call, so
there is no Python loop over symbols. Values outside a row's table are coded as
the row's escape symbol and their true value follows in the same stream
(Elias-gamma style: bit length, then raw bits). ``docs/format.md`` specifies the
bitstream.
"""
from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import constriction
import numpy as np
import torch

from hsicodec.errors import DecodeError

CDF_PRECISION = 16
"""compressai's integer CDFs end at ``1 << CDF_PRECISION``."""

MAX_ESCAPE_BITS = 34
"""Largest bit length of an escape code ``u + 1`` (int32 value, int32 table bound)."""

CHUNK_BITS = 16
"""Raw escape bits are coded in uniform chunks of at most this many bits."""

_INT32 = np.iinfo(np.int32)

Span = tuple[int, int, int]
"""(row, start, stop): the symbols of one table row in row-sorted order."""

_model = constriction.stream.model
_queue = constriction.stream.queue


@dataclass(frozen=True, eq=False)
class CdfTables:
    """Integer CDF tables in compressai's layout.

    Row ``r`` is ``cdf[r, :length[r]]`` (16-bit precision, ``cdf[r, 0] == 0``,
    last entry ``65536``); its last symbol (``length[r] - 2``) is the escape
    symbol. A value ``v`` coded with row ``r`` maps to symbol ``v - offset[r]``.
    """

    cdf: np.ndarray  # (R, L) int32
    length: np.ndarray  # (R,) int32
    offset: np.ndarray  # (R,) int32
    _categoricals: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for name in ("cdf", "length", "offset"):
            object.__setattr__(self, name, np.ascontiguousarray(getattr(self, name), dtype=np.int32))
        problem = _table_problem(self.cdf, self.length, self.offset)
        if problem:
            raise ValueError(f"invalid CDF tables: {problem}")

    @property
    def rows(self) -> int:
        """Number of table rows R."""
        return int(self.length.shape[0])

    @classmethod
    def from_entropy_model(cls, module: torch.nn.Module) -> CdfTables:
        """Tables of a compressai ``EntropyBottleneck`` / ``GaussianConditional``.

        Call ``update()`` (or ``update_scale_table()``) on the module first.
        """
        cdf = module._quantized_cdf.detach().cpu()
        if cdf.numel() == 0:
            raise ValueError("entropy model has no CDF tables yet; call update() first")
        return cls(
            cdf.numpy(),
            module._cdf_length.detach().cpu().numpy(),
            module._offset.detach().cpu().numpy(),
        )

    def state(self) -> dict[str, torch.Tensor]:
        """Tensors for a checkpoint state dict (``torch.load(weights_only=True)`` safe): every row's CDF
        without its padding, one after the other (wide tables of large scales pad the narrow ones)."""
        inside = np.arange(self.cdf.shape[1]) < self.length[:, None]
        return {
            "cdf": torch.from_numpy(self.cdf[inside]),
            "cdf_length": torch.from_numpy(self.length.copy()),
            "offset": torch.from_numpy(self.offset.copy()),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, torch.Tensor]) -> CdfTables:
        """Inverse of :meth:`state` (ValueError when its parts do not fit together)."""
        flat = state["cdf"].detach().cpu().numpy()
        length = state["cdf_length"].detach().cpu().numpy()
        if flat.ndim != 1 or length.ndim != 1 or length.size == 0 or length.min() < 1 or length.sum() != flat.size:
            raise ValueError(f"{flat.size} CDF values for rows of lengths summing to {length.sum()}")
        cdf = np.zeros((length.size, int(length.max())), dtype=np.int32)
        cdf[np.arange(cdf.shape[1]) < length[:, None]] = flat
        return cls(cdf, length, state["offset"].detach().cpu().numpy())

    def pmf(self, row: int) -> np.ndarray:
        """Integer probabilities (sum 65536) of one row's symbols, as float64."""
        return np.diff(self.cdf[row, : self.length[row]]).astype(np.float64)

    def categorical(self, row: int) -> constriction.stream.model.Categorical:
        """The constriction model that codes one row's symbols (built once per row)."""
        model = self._categoricals.get(row)
        if model is None:
            model = self._categoricals[row] = _model.Categorical(self.pmf(row), perfect=False)
        return model


def _table_problem(cdf: np.ndarray, length: np.ndarray, offset: np.ndarray) -> str | None:
    """Why these arrays are not valid tables, or None."""
    if cdf.ndim != 2 or length.ndim != 1 or offset.shape != length.shape:
        return f"shapes cdf {cdf.shape}, length {length.shape}, offset {offset.shape}"
    if cdf.shape[0] != length.shape[0] or cdf.shape[0] == 0:
        return f"{cdf.shape[0]} cdf rows for {length.shape[0]} lengths"
    if length.min() < 3 or length.max() > cdf.shape[1]:
        return f"row lengths must lie in [3, {cdf.shape[1]}]"
    if (cdf[:, 0] != 0).any() or (cdf[np.arange(len(length)), length - 1] != 1 << CDF_PRECISION).any():
        return f"rows must start at 0 and end at {1 << CDF_PRECISION}"
    inside = np.arange(1, cdf.shape[1]) < length[:, None]
    if (np.diff(cdf, axis=1)[inside] <= 0).any():
        return "rows must be strictly increasing"
    return None


def symbol_checksum(values: np.ndarray) -> int:
    """CRC32 of the values as little-endian int32 bytes (C order)."""
    return zlib.crc32(_as_int32(values).astype("<i4", copy=False).tobytes())


def encode_symbols(values: np.ndarray, rows: np.ndarray, tables: CdfTables) -> np.ndarray:
    """Range-code integer ``values``, each with table row ``rows`` (same shape).

    Returns the compressed words (1-D ``np.uint32``).
    """
    encoder = _queue.RangeEncoder()
    encode_into(encoder, values, rows, tables)
    return np.ascontiguousarray(encoder.get_compressed(), dtype=np.uint32)


def encode_into(encoder: _queue.RangeEncoder, values: np.ndarray, rows: np.ndarray, tables: CdfTables) -> None:
    """Append integer ``values``, each with table row ``rows``, to an open range coder: several calls
    make one stream, decoded by as many :func:`decode_from` calls in the same order."""
    values = _as_int32(values)
    order, spans = _group(rows, values.shape, tables)
    sorted_values = values.ravel()[order]
    escaped = []
    for row, start, stop in spans:
        symbols = sorted_values[start:stop].astype(np.int64) - tables.offset[row]
        escape = tables.length[row] - 2
        outliers = (symbols < 0) | (symbols >= escape)
        symbols[outliers] = escape
        encoder.encode(symbols.astype(np.int32), tables.categorical(row))
        escaped.append(np.flatnonzero(outliers) + start)
    escaped_at = np.concatenate(escaped) if escaped else np.empty(0, dtype=np.int64)
    _encode_escapes(encoder, sorted_values[escaped_at], _rows_at(spans, escaped_at), tables)


def range_decoder(words: np.ndarray) -> _queue.RangeDecoder:
    """A decoder over compressed words (1-D ``np.uint32``)."""
    words = np.asarray(words)
    if words.ndim != 1 or words.dtype != np.uint32:
        raise ValueError(f"words must be a 1-D uint32 array, got {words.dtype} {words.shape}")
    return _queue.RangeDecoder(np.ascontiguousarray(words))


def decode_symbols(words: np.ndarray, rows: np.ndarray, tables: CdfTables) -> np.ndarray:
    """Inverse of :func:`encode_symbols`: int32 values with the shape of ``rows``.

    Raises DecodeError when the words cannot be the coding of that many symbols.
    """
    decoder = range_decoder(words)
    values = decode_from(decoder, rows, tables)
    check_exhausted(decoder)
    return values


def decode_from(decoder: _queue.RangeDecoder, rows: np.ndarray, tables: CdfTables) -> np.ndarray:
    """The next values of a stream (inverse of one :func:`encode_into` call): int32 values with the shape
    of ``rows``. Raises DecodeError when the stream cannot hold them."""
    rows = np.asarray(rows)
    order, spans = _group(rows, rows.shape, tables)
    try:
        values = _decode_sorted(decoder, spans, order.size, tables)
    except (AssertionError, ValueError, KeyError, RuntimeError) as err:
        raise DecodeError(f"corrupt range-coded stream: {err}") from err
    out = np.empty(order.size, dtype=np.int32)
    out[order] = values
    return out.reshape(rows.shape)


def check_exhausted(decoder: _queue.RangeDecoder) -> None:
    """DecodeError unless the stream ends after the last value decoded."""
    try:
        exhausted = decoder.maybe_exhausted()
    except (AssertionError, ValueError, RuntimeError) as err:
        raise DecodeError(f"corrupt range-coded stream: {err}") from err
    if not exhausted:
        raise DecodeError("corrupt range-coded stream: data left over after the last symbol")


def _as_int32(values: np.ndarray) -> np.ndarray:
    """``values`` as int32, refusing non-integers and values outside int32."""
    values = np.asarray(values)
    if values.dtype.kind not in "iub":
        raise ValueError(f"symbol values must be integers, got {values.dtype}")
    if values.size and (values.min() < _INT32.min or values.max() > _INT32.max):
        raise ValueError("symbol values must fit in int32")
    return values.astype(np.int32, copy=False)


def _group(rows: np.ndarray, shape: tuple[int, ...], tables: CdfTables) -> tuple[np.ndarray, list[Span]]:
    """Stable order that sorts the flattened rows, and the span of each row present."""
    rows = np.asarray(rows)
    if rows.shape != shape:
        raise ValueError(f"rows shape {rows.shape} differs from values shape {shape}")
    if rows.dtype.kind not in "iu":
        raise ValueError(f"rows must be integers, got {rows.dtype}")
    flat = rows.ravel()
    if flat.size and (flat.min() < 0 or flat.max() >= tables.rows):
        raise ValueError(f"rows must lie in [0, {tables.rows})")
    # Stable sort of small unsigned keys is a radix sort in numpy: O(n).
    keys = flat.astype(np.min_scalar_type(tables.rows - 1), copy=False)
    order = np.argsort(keys, kind="stable")
    counts = np.bincount(keys, minlength=tables.rows)
    stops = np.cumsum(counts)
    present = np.flatnonzero(counts)
    return order, [(int(r), int(stops[r] - counts[r]), int(stops[r])) for r in present]


def _rows_at(spans: list[Span], positions: np.ndarray) -> np.ndarray:
    """Table row of each position (row-sorted order)."""
    starts = np.array([start for _, start, _ in spans], dtype=np.int64)
    rows = np.array([row for row, _, _ in spans], dtype=np.int64)
    return rows[np.searchsorted(starts, positions, side="right") - 1]


def _decode_sorted(decoder: _queue.RangeDecoder, spans: list[Span], size: int, tables: CdfTables) -> np.ndarray:
    """Values in row-sorted order, escapes resolved."""
    values = np.empty(size, dtype=np.int64)
    escaped = []
    for row, start, stop in spans:
        symbols = decoder.decode(tables.categorical(row), stop - start)
        values[start:stop] = symbols + np.int64(tables.offset[row])
        escaped.append(np.flatnonzero(symbols == tables.length[row] - 2) + start)
    escaped_at = np.concatenate(escaped) if escaped else np.empty(0, dtype=np.int64)
    values[escaped_at] = _decode_escapes(decoder, _rows_at(spans, escaped_at), tables)
    return values


def _escape_bounds(rows: np.ndarray, tables: CdfTables) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and largest in-table value (int64) of each row in ``rows``."""
    lo = tables.offset[rows].astype(np.int64)
    return lo, lo + tables.length[rows] - 3


def _length_model() -> constriction.stream.model.Categorical:
    """Model of ``k = bit_length(u + 1) - 1``: P(k) proportional to 2^-(k+1)."""
    return _model.Categorical(np.exp2(-np.arange(1, MAX_ESCAPE_BITS + 1, dtype=np.float64)), perfect=False)


def _chunks(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For escape bit counts ``k``: owning escape and bit shift of every raw-bit chunk."""
    count = (k + CHUNK_BITS - 1) // CHUNK_BITS
    owner = np.repeat(np.arange(k.size), count)
    first = np.repeat(np.cumsum(count) - count, count)
    shift = (np.arange(owner.size) - first) * CHUNK_BITS
    return owner, shift


def _encode_escapes(encoder: _queue.RangeEncoder, values: np.ndarray, rows: np.ndarray, tables: CdfTables) -> None:
    """Append the true values of escaped symbols: bit length, then raw bits."""
    if values.size == 0:
        return
    lo, hi = _escape_bounds(rows, tables)
    below = values < lo
    magnitude = np.where(below, lo - values, values - hi)  # >= 1
    code = 2 * (magnitude - 1) + below + 1  # u + 1 >= 1
    k = np.frexp(code.astype(np.float64))[1].astype(np.int64) - 1
    encoder.encode(k.astype(np.int32), _length_model())
    owner, shift = _chunks(k)
    if owner.size:
        width = np.minimum(CHUNK_BITS, k[owner] - shift)
        chunk = (code[owner] >> shift) & ((1 << width) - 1)
        encoder.encode(chunk.astype(np.int32), _model.Uniform(), (1 << width).astype(np.int32))


def _decode_escapes(decoder: _queue.RangeDecoder, rows: np.ndarray, tables: CdfTables) -> np.ndarray:
    """Inverse of :func:`_encode_escapes` for escapes coded with ``rows``."""
    if rows.size == 0:
        return np.empty(0, dtype=np.int64)
    k = decoder.decode(_length_model(), rows.size).astype(np.int64)
    code = np.left_shift(1, k)
    owner, shift = _chunks(k)
    if owner.size:
        width = np.minimum(CHUNK_BITS, k[owner] - shift)
        chunk = decoder.decode(_model.Uniform(), (1 << width).astype(np.int32)).astype(np.int64)
        np.add.at(code, owner, chunk << shift)
    u = code - 1
    magnitude = u // 2 + 1
    lo, hi = _escape_bounds(rows, tables)
    values = np.where(u % 2 == 1, lo - magnitude, hi + magnitude)
    if values.min() < _INT32.min or values.max() > _INT32.max:
        raise DecodeError("corrupt range-coded stream: escaped value outside int32")
    return values
