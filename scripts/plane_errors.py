"""How well a model rebuilds each KLT plane of a scene: squared error over the plane's variance.

    python scripts/plane_errors.py hificse-klt16-0.4 ../shared/data/cave/sponges.tif [...]

Per scene, the planes u of the klt front-end go through E and G with y rounded
(as coded, without the range coder) and with y unquantised; a ratio near 1
means the plane comes back no better than if it were not coded at all. The
ratio of each plane's variance to the first's shows how much it matters.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from hsicodec.checkpoints import find_model, load_model
from hsicodec.codec import pad_to_stride, scene_statistics
from hsicodec.container import tile_rects
from hsicodec.frontend import fit_front_end
from hsicodec.io import open_scene
from hsicodec.nn.hific import HiFiC

SHOWN = 6  # leading planes printed


def plane_errors(model: HiFiC, planes: np.ndarray) -> dict[str, np.ndarray]:
    """Mean squared error of each plane after E and G, with y rounded and with y unquantised."""
    h, w = planes.shape[1:]
    with torch.inference_mode():
        y = model.encoder(torch.from_numpy(pad_to_stride(planes))[None])
        rebuilt = {"y rounded": model.generator(torch.round(y))[0, :, :h, :w].numpy(),
                   "y unquantised": model.generator(y)[0, :, :h, :w].numpy()}
    return {label: ((planes - x) ** 2).mean(axis=(1, 2)) for label, x in rebuilt.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("scenes", nargs="+", type=Path)
    args = parser.parse_args()
    entry = find_model(args.model)
    model = load_model(entry).eval()
    for path in args.scenes:
        with open_scene(path) as reader:
            front = fit_front_end(scene_statistics(reader, tile_rects(*reader.shape[:2], 256)), "klt", entry.channels)
            planes = front.planes(reader.read(0, 0, *reader.shape[:2]))
        variance = planes.var(axis=(1, 2))
        print(f"{path.name}: plane variance / first's {np.round(variance[:SHOWN] / variance[0], 3)}")
        for label, error in plane_errors(model, planes).items():
            print(f"  {label:14s} error / variance {np.round(error[:SHOWN] / variance[:SHOWN], 2)}")


if __name__ == "__main__":
    main()
