"""Peak memory and throughput of compress/decompress on scenes mosaicked from real ones.

    python benchmarks/large_scene.py [--sizes 512 2048] [--bands 200] [--rate 1] [--work /tmp/hsicodec-bench]

Builds int16 ENVI (BSQ) mosaics of 90x90 blocks cut from the real >= 200-band
scenes of ../shared/data (ABU AVIRIS scenes, GatorSense AVIRIS), flipped and
turned for variety, written block by block so building them needs little memory.
Each size is then compressed and decompressed by the `hsicodec` command in a
child process that reports its own peak RSS (VmHWM, Linux), and, in the same
run, coded with band-wise JPEG 2000 (OpenJPEG through GDAL's JP2OpenJPEG, at
the rate hsicodec reached) and decoded back to ENVI, so that the figures can
be read as ratios that hold on a noisy machine. Prints one line per run.
hsicodec compresses with its defaults, or at `--rate`.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from hsicodec.io import open_scene

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BLOCK = 90


def source_blocks(bands: int) -> list[np.ndarray]:
    """90x90xbands int16 blocks of every real integer scene with at least `bands` bands."""
    blocks = []
    for entry in json.loads((DATA / "manifest.json").read_text()):
        shape = entry.get("shape_hwb")
        if (not shape or shape[2] < bands or entry["format"] != "mat" or shape[0] < BLOCK or shape[1] < BLOCK
                or entry.get("layout") != "HWB" or entry.get("dtype") not in ("int16", "uint16")):
            continue  # integer cubes stored as cubes (not unmixing matrices or [0, 1] floats)
        var = entry.get("var") if str(entry.get("var", "")).isidentifier() else None
        with open_scene(DATA / entry["files"][0], var) as reader:
            cube = reader.read(0, 0, BLOCK, BLOCK)[:, :, :bands]
        blocks.append(np.clip(cube, -32768, 32767).astype(np.int16))
    return blocks


def build_mosaic(path: Path, size: int, bands: int, blocks: list[np.ndarray]) -> None:
    """An ENVI BSQ int16 mosaic of size x size x bands."""
    cube = np.memmap(path.with_suffix(".img"), dtype="<i2", mode="w+", shape=(bands, size, size))
    rng = np.random.default_rng(0)
    for row in range(0, size, BLOCK):
        for col in range(0, size, BLOCK):
            block = np.rot90(blocks[rng.integers(len(blocks))], k=int(rng.integers(4)))
            h, w = min(BLOCK, size - row), min(BLOCK, size - col)
            cube[:, row : row + h, col : col + w] = block[:h, :w].transpose(2, 0, 1)
    cube.flush()
    del cube
    path.write_text(f"ENVI\nsamples = {size}\nlines = {size}\nbands = {bands}\nheader offset = 0\n"
                    f"file type = ENVI Standard\ndata type = 2\ninterleave = bsq\nbyte order = 0\n"
                    f"description = {{hsicodec benchmark mosaic of real AVIRIS blocks}}\n")


# VmHWM, not getrusage: Linux carries ru_maxrss across exec, so a child would report this
# benchmark's own peak (the mosaic it just wrote) when that is larger than its own.
PEAK_PROBE = (
    "import runpy, sys\n"
    "sys.argv = ['hsicodec', *sys.argv[1:]]\n"
    "try:\n"
    "    runpy.run_module('hsicodec', run_name='__main__')\n"
    "finally:\n"
    "    hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
    "    print('peak_rss_kib', hwm.split()[1], file=sys.stderr)\n"
)


# GDAL streams the copy; the JPEG 2000 options are those of the bench baseline (no colour transform).
JP2_PROBE = (
    "import sys, rasterio.shutil\n"
    "src, dst, quality = sys.argv[1:4]\n"
    "options = dict(QUALITY=quality, REVERSIBLE='NO', YCC='NO', RESOLUTIONS='6') if dst.endswith('.jp2') else {}\n"
    "rasterio.shutil.copy(src, dst, driver='JP2OpenJPEG' if dst.endswith('.jp2') else 'ENVI', **options)\n"
    "hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
    "print('peak_rss_kib', hwm.split()[1], file=sys.stderr)\n"
)


def run(args: list[str], probe: str = PEAK_PROBE, extra: tuple[str, ...] = ("-q", "--overwrite")) -> tuple[float, float]:
    """Seconds and peak RSS (MiB) of one child process (`hsicodec ARGS` or a JPEG 2000 copy)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", probe, *args, *extra], check=True,
                          stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    peak_kib = next(int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("peak_rss_kib"))
    return seconds, peak_kib / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048])
    parser.add_argument("--bands", type=int, default=200)
    parser.add_argument("--rate", type=float, help="compress -r (default: compress's own default)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/hsicodec-bench"))
    args = parser.parse_args()
    rate = [] if args.rate is None else ["-r", str(args.rate)]
    args.work.mkdir(parents=True, exist_ok=True)
    blocks = source_blocks(args.bands)
    print(f"{len(blocks)} real source scenes with >= {args.bands} bands", flush=True)
    for size in args.sizes:
        scene = args.work / f"mosaic_{size}.hdr"
        build_mosaic(scene, size, args.bands, blocks)
        raw_mb = size * size * args.bands * 2 / 1e6
        packed, restored = args.work / f"mosaic_{size}.hsic", args.work / f"restored_{size}.hdr"
        seconds, rss = run(["compress", str(scene), "-o", str(packed), *rate])
        print(f"compress   {size}x{size}x{args.bands} int16 ({raw_mb:.0f} MB): {seconds:.1f} s, "
              f"{raw_mb / seconds:.2f} MB/s, peak RSS {rss:.0f} MiB, {packed.stat().st_size} bytes", flush=True)
        ours_compress = seconds
        seconds, rss = run(["decompress", str(packed), "-o", str(restored)])
        print(f"decompress {size}x{size}x{args.bands} int16 ({raw_mb:.0f} MB): {seconds:.1f} s, "
              f"{raw_mb / seconds:.2f} MB/s, peak RSS {rss:.0f} MiB", flush=True)
        ours_decompress = seconds
        jp2, jp2_restored = args.work / f"mosaic_{size}.jp2", args.work / f"jp2_restored_{size}.img"
        quality = 100 * packed.stat().st_size / (raw_mb * 1e6)  # the same file size as hsicodec's
        seconds, rss = run([str(scene.with_suffix(".img")), str(jp2), f"{quality:.6f}"], JP2_PROBE, ())
        print(f"JPEG 2000 encode  {size}x{size}x{args.bands}: {seconds:.1f} s, {raw_mb / seconds:.2f} MB/s, "
              f"peak RSS {rss:.0f} MiB, {jp2.stat().st_size} bytes; speed of hsicodec / JPEG 2000 "
              f"{seconds / ours_compress:.2f}", flush=True)
        seconds, rss = run([str(jp2), str(jp2_restored), "0"], JP2_PROBE, ())
        print(f"JPEG 2000 decode  {size}x{size}x{args.bands}: {seconds:.1f} s, {raw_mb / seconds:.2f} MB/s, "
              f"peak RSS {rss:.0f} MiB; speed of hsicodec / JPEG 2000 {seconds / ours_decompress:.2f}", flush=True)
        for path in (scene, scene.with_suffix(".img"), packed, restored, restored.with_suffix(".img"), jp2,
                     jp2_restored, jp2_restored.with_suffix(".hdr")):
            path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
