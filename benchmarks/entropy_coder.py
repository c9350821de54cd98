"""Throughput and efficiency of hsicodec's range coder.

Codes 1e6 symbols of a realistic Gaussian-conditional distribution (compressai's
64-scale table, 0.11..256) and prints encode/decode MSymbols/s and the coded
size against the ideal information content under the integer tables.

    $ python benchmarks/entropy_coder.py [--symbols N] [--repeat R]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from hsicodec._compressai import GaussianConditional
from hsicodec.entropy import CdfTables, decode_symbols, encode_symbols


def scale_tables() -> tuple[CdfTables, np.ndarray]:
    """compressai's GaussianConditional tables for 64 log-spaced scales 0.11..256."""
    scales = torch.exp(torch.linspace(np.log(0.11), np.log(256.0), 64))
    model = GaussianConditional(None)
    model.update_scale_table(scales)
    return CdfTables.from_entropy_model(model), scales.numpy().astype(np.float64)


def sample(n: int, scales: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Rows skewed to small scales (as in trained latents) and values round(N(0, scale))."""
    rows = np.minimum(rng.geometric(1 / 12, n) - 1, len(scales) - 1)
    values = np.round(rng.normal(0.0, scales[rows])).astype(np.int32)
    return values, rows


def in_table(values: np.ndarray, rows: np.ndarray, tables: CdfTables) -> np.ndarray:
    """Which values their row codes directly (the others are escaped)."""
    symbols = values.astype(np.int64) - tables.offset[rows]
    return (symbols >= 0) & (symbols < tables.length[rows] - 2)


def ideal_bits(values: np.ndarray, rows: np.ndarray, tables: CdfTables) -> float:
    """Sum of -log2 p(symbol) under the integer tables (escaped values not counted)."""
    inside = in_table(values, rows, tables)
    r, s = rows[inside], values[inside].astype(np.int64) - tables.offset[rows[inside]]
    p = (tables.cdf[r, s + 1] - tables.cdf[r, s]) / 65536.0
    return float(-np.log2(p).sum())


def best_time(fn, repeat: int) -> float:
    """Fastest of ``repeat`` wall-clock runs of ``fn()``."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    tables, scales = scale_tables()
    values, rows = sample(args.symbols, scales, np.random.default_rng(0))
    words = encode_symbols(values, rows, tables)
    assert np.array_equal(decode_symbols(words, rows, tables), values)

    t_enc = best_time(lambda: encode_symbols(values, rows, tables), args.repeat)
    t_dec = best_time(lambda: decode_symbols(words, rows, tables), args.repeat)
    coded = words.size * 32
    ideal = ideal_bits(values, rows, tables)
    print(f"symbols: {args.symbols}, rows used: {np.unique(rows).size}, escapes: "
          f"{int((~in_table(values, rows, tables)).sum())}")
    print(f"encode: {args.symbols / t_enc / 1e6:.1f} MSym/s ({t_enc * 1e3:.1f} ms)")
    print(f"decode: {args.symbols / t_dec / 1e6:.1f} MSym/s ({t_dec * 1e3:.1f} ms)")
    print(f"coded: {coded} bits ({coded / args.symbols:.4f} bit/sym); ideal: {ideal:.0f} bits; "
          f"overhead {100 * (coded / ideal - 1):+.3f} %")


if __name__ == "__main__":
    main()
