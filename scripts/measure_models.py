"""Measure installed models on the `eval` split with the real coder; record it in models/manifest.json.

    python scripts/measure_models.py [--models NAME ...]

For every eval scene the model codes (a `bands` model: its sensor's only):
compress to a temporary .hsic, decode it again, and measure bpp (every byte
of the file over H*W), PSNR, SSIM, SAM and the compress / decode throughput
in MB/s of raw input (decode: streams to samples, without writing a file).
Prints a table and stores per-scene figures and their means under each model's `metrics`,
`rate_bpp`: the median bpp on the eval scenes of at least 256x256 pixels, and
`curve`: mean bpp and PSNR on those scenes under rate control (`-r`) at a
range of rates, from which `compress -r` picks the best model for a rate, and
`refine_iterations`: the latent refinement every file was coded with (--refine, by default
compress's own).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hsicodec.checkpoints import ModelEntry, load_model, read_manifest, write_manifest
from hsicodec.codec import compress_scene, decode_tiles
from hsicodec.container import HsicReader, rate_figures
from hsicodec.io import open_scene
from hsicodec.latent_coding import LatentCoder
from hsicodec.latent_refinement import REFINE_ITERATIONS
from hsicodec.verify import verify_file
from shared_data import DATA, manifest_scenes

LARGE_PIXELS = 256 * 256  # eval scenes this large are where the rate of a model is measured
CURVE_RATES = (0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.25, 1.5)


def measure(entry: ModelEntry, scenes: list[tuple[str, Path, str | None]], refine: int = REFINE_ITERATIONS) -> dict:
    coder = LatentCoder(load_model(entry), torch.device("cpu"))
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        packed = Path(tmp) / "scene.hsic"
        for name, path, var in scenes:
            with open_scene(path, var) as reader:
                if not entry.fits(reader.shape[2]):  # a bands model measures its own sensor's scenes only
                    continue
                raw_mb = np.prod(reader.shape) * reader.dtype.itemsize / 1e6
                started = time.perf_counter()
                compress_scene(reader, packed, entry, coder, refine_iterations=refine)
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
    large_names = [name for name, r in rows.items() if r["shape"][0] * r["shape"][1] >= LARGE_PIXELS]
    large = [rows[name] for name in large_names]
    metrics = {"eval": rows, "eval_mean": {k: float(np.mean([r[k] for r in rows.values()])) for k in keys},
               "refine_iterations": refine}
    if large:  # where side information no longer dominates: what `-r` is matched against
        metrics["large_mean"] = {k: float(np.mean([r[k] for r in large])) for k in keys}
        metrics["rate_bpp"] = float(np.median([r["bpp"] for r in large]))
        metrics["curve"] = rate_curve(entry, coder, [s for s in scenes if s[0] in large_names], refine)
    return metrics


def rate_curve(entry: ModelEntry, coder: LatentCoder, scenes: list[tuple[str, Path, str | None]],
               refine: int = REFINE_ITERATIONS) -> list[dict]:
    """Mean bpp and PSNR over `scenes` when compressing with `-r RATE`, for every CURVE_RATES
    that rate control reaches on all of them: what `compress -r` uses to pick a model."""
    curve = []
    with tempfile.TemporaryDirectory() as tmp:
        packed = Path(tmp) / "scene.hsic"
        for rate in CURVE_RATES:
            points = []
            for _, path, var in scenes:
                with open_scene(path, var) as reader:
                    choice = compress_scene(reader, packed, entry, coder, target_bpp=rate, refine_iterations=refine)
                    if not choice.reachable:
                        break
                    bpp = rate_figures(packed.stat().st_size, reader.shape, reader.storage_bytes)["bpp"]
                    points.append((bpp, verify_file(packed, reader, coder)["psnr"]))
            else:
                bpp, psnr = np.mean(points, axis=0)
                curve.append({"rate": rate, "bpp": float(bpp), "psnr": float(psnr)})
    return curve


def measure_run(run: Path, scenes: list[tuple[str, Path, str | None]]) -> dict:
    """`measure` of the one model a training run folder exported, kept in RUN/measured.json for the next call."""
    measured = run / "measured.json"
    if not measured.exists():
        [entry] = read_manifest(run)
        measured.write_text(json.dumps(measure(entry, scenes), indent=2))
    return json.loads(measured.read_text())


def record_metrics(measured: ModelEntry, metrics: dict) -> None:
    """Store one model's metrics in the manifest as it is now (a ladder run may have added rungs meanwhile)."""
    write_manifest([ModelEntry(**{**e.to_json(), "metrics": metrics}) if e.sha256 == measured.sha256 else e
                    for e in read_manifest()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", help="names to measure (default: all installed)")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--refine", type=int, default=REFINE_ITERATIONS,
                        help=f"latent refinement of every file (default {REFINE_ITERATIONS}, compress's own)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    scenes = manifest_scenes(args.data, "eval")
    for entry in read_manifest():
        if args.models and entry.name not in args.models:
            continue
        metrics = measure(entry, scenes, args.refine)
        record_metrics(entry, metrics)
        print(f"\n{entry.name}\n| scene | H x W x B | bytes | bpp | bpppb | PSNR dB | SSIM | SAM deg | compress MB/s | decode MB/s |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, r in metrics["eval"].items():
            shape = "x".join(map(str, r["shape"]))
            print(f"| {name} | {shape} | {r['bytes']} | {r['bpp']:.3f} | {r['bpppb']:.4f} | {r['psnr']:.2f} "
                  f"| {r['ssim']:.4f} | {r['sam']:.2f} | {r['compress_mb_s']:.2f} | {r['decode_mb_s']:.2f} |")
        m = metrics["eval_mean"]
        print(f"| mean | | | {m['bpp']:.3f} | {m['bpppb']:.4f} | {m['psnr']:.2f} | {m['ssim']:.4f} "
              f"| {m['sam']:.2f} | | |")


if __name__ == "__main__":
    main()
