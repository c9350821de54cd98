"""Range coding over compressai's integer CDF tables (hsicodec.entropy)."""
from __future__ import annotations

import zlib

import constriction
import numpy as np
import pytest
import torch

from hsicodec._compressai import EntropyBottleneck, GaussianConditional
from hsicodec.entropy import (CdfTables, check_exhausted, decode_from, decode_symbols, encode_into, encode_symbols,
                              range_decoder, symbol_checksum)
from hsicodec.errors import DecodeError

SCALES = np.exp(np.linspace(np.log(0.11), np.log(256.0), 64))


@pytest.fixture(scope="module")
def gaussian_tables() -> CdfTables:
    model = GaussianConditional(None)
    model.update_scale_table(torch.tensor(SCALES, dtype=torch.float32))
    return CdfTables.from_entropy_model(model)


@pytest.fixture(scope="module")
def bottleneck_tables() -> CdfTables:
    torch.manual_seed(0)
    model = EntropyBottleneck(8)
    model.update(force=True)
    return CdfTables.from_entropy_model(model)


def gaussian_sample(shape: tuple[int, ...], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random table rows and values round(N(0, scale of the row))."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(SCALES), shape)
    return np.round(rng.normal(0.0, SCALES[rows])).astype(np.int32), rows


def ideal_bits(values: np.ndarray, rows: np.ndarray, tables: CdfTables) -> float:
    symbols = values.ravel().astype(np.int64) - tables.offset[rows.ravel()]
    r = rows.ravel()
    p = (tables.cdf[r, symbols + 1] - tables.cdf[r, symbols]) / 65536.0
    return float(-np.log2(p).sum())


def test_round_trip_is_exact_through_gaussian_conditional_tables(gaussian_tables):
    values, rows = gaussian_sample((3, 40, 40))
    words = encode_symbols(values, rows, gaussian_tables)
    assert words.dtype == np.uint32 and words.ndim == 1
    decoded = decode_symbols(words, rows, gaussian_tables)
    assert decoded.dtype == np.int32 and decoded.shape == rows.shape
    np.testing.assert_array_equal(decoded, values)
    assert symbol_checksum(decoded) == symbol_checksum(values)


def test_round_trip_is_exact_through_entropy_bottleneck_tables(bottleneck_tables):
    rng = np.random.default_rng(1)
    rows = np.broadcast_to(np.arange(8)[:, None, None], (8, 12, 9))
    values = np.round(rng.normal(0, 3, rows.shape)).astype(np.int32)
    words = encode_symbols(values, rows, bottleneck_tables)
    np.testing.assert_array_equal(decode_symbols(words, rows, bottleneck_tables), values)


def test_rows_absent_from_the_input_are_fine(gaussian_tables):
    values, _ = gaussian_sample((500,), seed=2)
    rows = np.where(np.arange(500) % 2 == 0, 7, 40)
    words = encode_symbols(values, rows, gaussian_tables)
    np.testing.assert_array_equal(decode_symbols(words, rows, gaussian_tables), values)


def test_outliers_beyond_the_table_escape_and_return_exactly(gaussian_tables, bottleneck_tables):
    for tables in (gaussian_tables, bottleneck_tables):
        rng = np.random.default_rng(3)
        rows = rng.integers(0, tables.rows, 300)
        lo = tables.offset[rows].astype(np.int64)
        hi = lo + tables.length[rows] - 3
        edges = np.concatenate([lo - 1, hi + 1, lo, hi, lo - 2, hi + 70000])
        extremes = [2**30, -(2**30), 2**31 - 1, -(2**31), 0]
        values = np.concatenate([edges, extremes]).astype(np.int32)
        rows = np.concatenate([np.tile(rows, 6), rng.integers(0, tables.rows, len(extremes))])
        words = encode_symbols(values, rows, tables)
        np.testing.assert_array_equal(decode_symbols(words, rows, tables), values)


def test_empty_input_codes_to_a_stream_that_decodes_to_nothing(gaussian_tables):
    rows = np.zeros((0, 4), dtype=np.int64)
    words = encode_symbols(np.zeros((0, 4), dtype=np.int32), rows, gaussian_tables)
    decoded = decode_symbols(words, rows, gaussian_tables)
    assert decoded.shape == (0, 4) and decoded.dtype == np.int32


def test_coded_size_is_within_two_percent_of_the_information_content(gaussian_tables):
    values, rows = gaussian_sample((200_000,), seed=4)
    lo = gaussian_tables.offset[rows]
    values = np.clip(values, lo, lo + gaussian_tables.length[rows] - 3)  # in-table only
    words = encode_symbols(values, rows, gaussian_tables)
    ideal = ideal_bits(values, rows, gaussian_tables)
    assert words.size * 32 <= 1.02 * ideal + 64


def test_garbage_words_raise_decode_error_or_fail_the_checksum(gaussian_tables):
    values, rows = gaussian_sample((200,), seed=5)
    words = encode_symbols(values, rows, gaussian_tables)
    rng = np.random.default_rng(6)
    flipped = words.copy()
    flipped[len(flipped) // 2] ^= np.uint32(1 << 7)
    candidates = [
        flipped,
        words[:-1],
        np.concatenate([words, words[:3]]),
        rng.integers(0, 2**32, 40, dtype=np.uint32),
        np.zeros(0, dtype=np.uint32),
        np.full(5, 0xFFFFFFFF, dtype=np.uint32),
    ]
    for garbage in candidates:
        try:
            decoded = decode_symbols(garbage, rows, gaussian_tables)
        except DecodeError:
            continue
        assert symbol_checksum(decoded) != symbol_checksum(values)


def test_tables_survive_a_weights_only_checkpoint(gaussian_tables, tmp_path):
    path = tmp_path / "tables.pt"
    torch.save(gaussian_tables.state(), path)
    restored = CdfTables.from_state(torch.load(path, weights_only=True))
    for name in ("cdf", "length", "offset"):
        np.testing.assert_array_equal(getattr(restored, name), getattr(gaussian_tables, name))


def test_invalid_tables_and_rows_are_refused(gaussian_tables):
    bad = gaussian_tables.cdf.copy()
    bad[0, 1] = 0
    with pytest.raises(ValueError):
        CdfTables(bad, gaussian_tables.length, gaussian_tables.offset)
    with pytest.raises(ValueError):
        encode_symbols(np.zeros(3, np.int32), np.array([0, 1, 64]), gaussian_tables)
    with pytest.raises(ValueError):
        encode_symbols(np.zeros(3, np.int64) + 2**31, np.zeros(3, int), gaussian_tables)


def test_symbol_checksum_is_crc32_of_little_endian_int32():
    values = np.array([[1, -2], [300000, 0]], dtype=np.int64)
    assert symbol_checksum(values) == zlib.crc32(np.array([1, -2, 300000, 0], "<i4").tobytes())


def test_several_calls_make_one_stream_decoded_in_the_same_order(gaussian_tables):
    tables = gaussian_tables
    rng = np.random.default_rng(3)
    parts = [(rng.integers(-40, 40, size=n), rng.integers(0, tables.rows, size=n)) for n in (5, 300, 1)]
    encoder = constriction.stream.queue.RangeEncoder()
    for values, rows in parts:
        encode_into(encoder, values, rows, tables)
    decoder = range_decoder(np.asarray(encoder.get_compressed(), dtype=np.uint32))
    for values, rows in parts:
        np.testing.assert_array_equal(decode_from(decoder, rows, tables), values)
    check_exhausted(decoder)
