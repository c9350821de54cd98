"""Where a bench's baselines and models stand against sending each band's mean: the quality floor of a scene.

    python scripts/band_mean_floor.py docs/bench/results.csv

For every scene of the report (found in the shared data manifest), the PSNR of
a reconstruction that is each band's mean over the valid pixels (nodata kept
as it is), next to how many points of each method fall below it and the range
of bpp they span. A file costing a few hundred bytes does that well, so a
point below it is a codec failing at that rate (band-wise JPEG 2000 at its
floor decodes bands it had no room for to mid-grey), not a quality to beat.
`hsicodec bench` takes no gap against such a point; this script also reads
reports written before the bench measured the floor itself.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hsicodec.bench import band_means_point, is_curve, read_csv
from hsicodec.io import open_scene
from shared_data import DATA, manifest_scenes


def band_mean_psnr(path: Path, var: str | None) -> float:
    """PSNR of each band's mean over its valid samples (nodata samples kept as they are), as the bench
    measures it."""
    with open_scene(path, var) as reader:
        cube = reader.read(0, 0, reader.shape[0], reader.shape[1])
        return band_means_point(path.stem, cube, reader.meta.nodata).psnr


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
