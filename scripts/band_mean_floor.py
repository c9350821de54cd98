"""Where a bench's baselines and models stand against sending each band's mean: the quality floor of a scene.

    python scripts/band_mean_floor.py docs/bench/results.csv

For every scene of the report (found in the shared data manifest), the PSNR of
a reconstruction that is each band's mean over the valid pixels (nodata kept
as it is), next to how many points of each method fall below it and the range
of bpp they span. A file costing a few hundred bytes does that well, so a
point below it is a codec failing at that rate (band-wise JPEG 2000 at its
floor decodes bands it had no room for to mid-grey), not a quality to beat.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from hsicodec.bench import is_curve, read_csv
from hsicodec.codec import nodata_mask
from hsicodec.io import open_scene
from hsicodec.metrics import quality
from shared_data import DATA, manifest_scenes


def band_mean_psnr(path: Path, var: str | None) -> float:
    """PSNR of each band's mean over its valid samples (nodata samples kept as they are), as the bench
    measures it."""
    with open_scene(path, var) as reader:
        cube = reader.read(0, 0, reader.shape[0], reader.shape[1])
        nodata = reader.meta.nodata
    mask = nodata_mask(cube, nodata)
    valid = np.ones(cube.shape, bool) if mask is None else ~mask
    values = np.where(valid, cube, 0).astype(np.float64)
    means = values.sum(axis=(0, 1)) / np.maximum(valid.sum(axis=(0, 1)), 1)
    return quality(cube, np.where(valid, means, cube.astype(np.float64)), nodata)["psnr"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path)
    args = parser.parse_args()
    try:
        points = read_csv(args.results)
    except (OSError, KeyError, ValueError) as exc:
        sys.exit(f"band_mean_floor: {args.results}: not a readable bench results.csv ({exc})")
    files = {path.stem: (path, var) for split in ("train", "eval", "io")
             for _, path, var in manifest_scenes(DATA, split)}
    unknown = sorted({p.scene for p in points} - set(files))
    if unknown:
        sys.exit(f"band_mean_floor: {', '.join(unknown)}: not a scene of {DATA / 'manifest.json'}")
    print("| scene | band means PSNR dB | method | points below it | their bpp |")
    print("|---|---:|---|---:|---|")
    for scene in sorted({p.scene for p in points}):
        floor = band_mean_psnr(*files[scene])
        for method in sorted({p.method for p in points if p.scene == scene and is_curve(p.method)}):
            curve = [p for p in points if p.scene == scene and p.method == method]
            below = sorted(p.bpp for p in curve if p.psnr < floor)
            span = f"{below[0]:.2f}–{below[-1]:.2f}" if below else ""
            print(f"| {scene} | {floor:.2f} | {method} | {len(below)}/{len(curve)} | {span} |")


if __name__ == "__main__":
    main()
