"""The summary of a `hsicodec bench` report, split by scene size: where side information matters and where not.

    python scripts/bench_by_size.py docs/bench/results.csv [--pixels 65536]

Scenes of at least --pixels spatial pixels (default 256 x 256) and the smaller
ones get a summary table each (mean bpp, PSNR, SAM and the gaps to both
baselines at matched bpp, as in report.md); the scene sizes come from the
shared data manifest.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hsicodec.bench import gaps, read_csv, summary_table
from shared_data import DATA


def scene_pixels() -> dict[str, int]:
    """Spatial pixels of every shared scene, by the file stem the bench names it with."""
    return {Path(f).stem: e["shape_hwb"][0] * e["shape_hwb"][1]
            for e in json.loads((DATA / "manifest.json").read_text()) if "shape_hwb" in e for f in e["files"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path)
    parser.add_argument("--pixels", type=int, default=256 * 256)
    args = parser.parse_args()
    try:
        points = read_csv(args.results)
    except (OSError, KeyError, ValueError) as exc:
        sys.exit(f"bench_by_size: {args.results}: not a readable bench results.csv ({exc})")
    pixels = scene_pixels()
    unknown = sorted({p.scene for p in points} - set(pixels))
    if unknown:
        sys.exit(f"bench_by_size: {', '.join(unknown)}: not a scene of {DATA / 'manifest.json'}")
    for title, keep in ((f"scenes of at least {args.pixels} pixels", lambda n: n >= args.pixels),
                        (f"scenes below {args.pixels} pixels", lambda n: n < args.pixels)):
        group = [p for p in points if keep(pixels[p.scene])]
        if group:
            names = ", ".join(sorted({p.scene for p in group}))
            print(f"## {title}: {names}\n\n{summary_table(gaps(group))}")


if __name__ == "__main__":
    main()
