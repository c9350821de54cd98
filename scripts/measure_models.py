"""Measure installed models on the `eval` split with the real coder; record it in models/manifest.json.

    python scripts/measure_models.py [--models NAME ...] [--markdown]

For every eval scene: compress to a temporary .hsic, decode it again, and
measure bpp (every byte of the file over H*W), PSNR, SSIM, SAM and the
compress / decode throughput in MB/s of raw input (decode: streams to
samples, without writing a file). Prints a table and
stores per-scene figures and their means under each model's `metrics`, and
`rate_bpp`: the median bpp on the eval scenes of at least 256x256 pixels,
which `compress -r` matches (the nominal target is what training aimed at).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hsicodec.checkpoints import ModelEntry, load_model, read_manifest, write_manifest
from hsicodec.codec import compress_scene, decode_tiles, rate_figures
from hsicodec.container import HsicReader
from hsicodec.io import open_scene
from hsicodec.latent_coding import LatentCoder
from hsicodec.verify import verify_file
from shared_data import DATA, manifest_scenes

LARGE_PIXELS = 256 * 256  # eval scenes this large are where the rate of a model is measured


def measure(entry: ModelEntry, scenes: list[tuple[str, Path, str | None]]) -> dict:
    coder = LatentCoder(load_model(entry), torch.device("cpu"))
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        packed = Path(tmp) / "scene.hsic"
        for name, path, var in scenes:
            with open_scene(path, var) as reader:
                raw_mb = np.prod(reader.shape) * reader.dtype.itemsize / 1e6
                started = time.perf_counter()
                compress_scene(reader, packed, entry, coder)
                compress_s = time.perf_counter() - started
                started = time.perf_counter()
                with HsicReader(packed) as stored:
                    for _ in decode_tiles(stored, coder, reader.meta.nodata):
                        pass
                decode_s = time.perf_counter() - started
                quality = verify_file(packed, reader, coder)
                rows[name] = {"shape": list(reader.shape),
                              **rate_figures(packed.stat().st_size, reader.shape, reader.storage_bytes),
                              **quality, "compress_mb_s": raw_mb / compress_s, "decode_mb_s": raw_mb / decode_s}
    keys = ("bpp", "bpppb", "psnr", "ssim", "sam")
    large = [r for r in rows.values() if r["shape"][0] * r["shape"][1] >= LARGE_PIXELS]
    metrics = {"eval": rows, "eval_mean": {k: float(np.mean([r[k] for r in rows.values()])) for k in keys}}
    if large:  # where side information no longer dominates: what `-r` is matched against
        metrics["large_mean"] = {k: float(np.mean([r[k] for r in large])) for k in keys}
        metrics["rate_bpp"] = float(np.median([r["bpp"] for r in large]))
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", help="names to measure (default: all installed)")
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    torch.set_num_threads(2)
    scenes = manifest_scenes(args.data, "eval")
    entries = read_manifest()
    updated = []
    for entry in entries:
        if args.models and entry.name not in args.models:
            updated.append(entry)
            continue
        metrics = measure(entry, scenes)
        updated.append(ModelEntry(**{**entry.to_json(), "metrics": metrics}))
        print(f"\n{entry.name}\n| scene | H x W x B | bytes | bpp | bpppb | PSNR dB | SSIM | SAM deg | compress MB/s | decode MB/s |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, r in metrics["eval"].items():
            shape = "x".join(map(str, r["shape"]))
            print(f"| {name} | {shape} | {r['bytes']} | {r['bpp']:.3f} | {r['bpppb']:.4f} | {r['psnr']:.2f} "
                  f"| {r['ssim']:.4f} | {r['sam']:.2f} | {r['compress_mb_s']:.2f} | {r['decode_mb_s']:.2f} |")
        m = metrics["eval_mean"]
        print(f"| mean | | | {m['bpp']:.3f} | {m['bpppb']:.4f} | {m['psnr']:.2f} | {m['ssim']:.4f} "
              f"| {m['sam']:.2f} | | |")
    write_manifest(updated)


if __name__ == "__main__":
    main()
