"""What `-r`'s choices buy: eval scenes under `-r`, with every choice and without one of them.

    python benchmarks/rate_choices.py --without groups [--model hificse-klt16-1.0] [--rates 0.2 0.4 0.8]
    python benchmarks/rate_choices.py --without gain [--min-side 256]
    python benchmarks/rate_choices.py --without refine --rates 0.2 0.4 1 [--refine 50]

``--without groups`` codes every scene with the plane groups chosen
(`hsicodec.plane_groups`) and with one group; ``--without gain`` with the plane
gain chosen (`hsicodec.plane_gain`) and with gain 1, both with one group;
``--without refine`` with latent refinement (`hsicodec.latent_refinement`; ``--refine N``
iterations, default compress's) and without it; for the other two, ``--refine N``
is the refinement of both arms.
Prints, per scene and rate, the number of groups and group 0's gain, the bpp,
PSNR and compress time of both (the same model, the same rate control), and
the mean PSNR change per rate.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from shared_data import DATA, manifest_scenes  # noqa: E402

from hsicodec.checkpoints import find_model, load_model  # noqa: E402
from hsicodec.codec import compress_scene  # noqa: E402
from hsicodec.container import HsicReader, rate_figures  # noqa: E402
from hsicodec.io import open_scene  # noqa: E402
from hsicodec.latent_coding import LatentCoder  # noqa: E402
from hsicodec.latent_refinement import REFINE_ITERATIONS  # noqa: E402
from hsicodec.verify import verify_file  # noqa: E402

ARMS = {"groups": ({}, {"choose_groups": False}),
        "gain": ({"choose_groups": False}, {"choose_groups": False, "choose_plane_gain": False}),
        "refine": ({}, {"refine_iterations": 0})}
"""compress_scene's arguments with the choice and without it."""


def coded(path: Path, var: str | None, packed: Path, entry, coder: LatentCoder, rate: float,
          choices: dict[str, bool]) -> tuple[str, float, float, float]:
    """(groups x gain, bpp, PSNR, compress seconds) of one scene's file at `rate`."""
    with open_scene(path, var=var) as reader:
        started = time.perf_counter()
        compress_scene(reader, packed, entry, coder, target_bpp=rate, **choices)
        seconds = time.perf_counter() - started
        psnr = verify_file(packed, reader, coder)["psnr"]
        bpp = rate_figures(packed.stat().st_size, reader.shape, reader.storage_bytes)["bpp"]
    with HsicReader(packed) as hsic:
        return f"{len(hsic.header.groups)} x {hsic.header.plane_gain:.3g}", bpp, psnr, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--without", choices=sorted(ARMS), required=True, help="the choice left out")
    parser.add_argument("--model", default="hificse-klt16-1.0")
    parser.add_argument("--rates", type=float, nargs="+", default=[0.2, 0.4, 0.8])
    parser.add_argument("--min-side", type=int, default=256, help="eval scenes at least this large (pixels a side)")
    parser.add_argument("--refine", type=int, default=REFINE_ITERATIONS, help="latent refinement iterations")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    entry = find_model(args.model)
    coder = LatentCoder(load_model(entry), torch.device("cpu"))
    print(f"{entry.name} under -r, without {args.without}: second half of each row\n"
          "| scene | -r | groups x gain | bpp | PSNR dB | s | groups x gain | bpp | PSNR dB | s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    changes: dict[float, list[float]] = {rate: [] for rate in args.rates}
    with tempfile.TemporaryDirectory() as tmp:
        for scene_id, path, var in manifest_scenes(DATA, "eval"):
            with open_scene(path, var=var) as reader:
                if min(reader.shape[:2]) < args.min_side or not entry.fits(reader.shape[2]):
                    continue
            for rate in args.rates:
                with_it, without_it = ({"refine_iterations": args.refine, **arm} for arm in ARMS[args.without])
                layout, bpp, psnr, seconds = coded(path, var, Path(tmp) / "a.hsic", entry, coder, rate, with_it)
                layout_1, bpp_1, psnr_1, seconds_1 = coded(path, var, Path(tmp) / "b.hsic", entry, coder, rate,
                                                           without_it)
                changes[rate].append(psnr - psnr_1)
                print(f"| {scene_id} | {rate:g} | {layout} | {bpp:.3f} | {psnr:.2f} | {seconds:.1f} "
                      f"| {layout_1} | {bpp_1:.3f} | {psnr_1:.2f} | {seconds_1:.1f} |", flush=True)
    for rate, change in changes.items():
        print(f"-r {rate:g}: mean PSNR change {np.mean(change):+.2f} dB over {len(change)} scenes "
              f"(min {np.min(change):+.2f}, max {np.max(change):+.2f})")


if __name__ == "__main__":
    main()
