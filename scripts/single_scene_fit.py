"""Can the network carry more KLT planes than the shipped model does? Fit a model to one scene and see.

    python scripts/single_scene_fit.py hificse-klt16-2.0 ../shared/data/cave/sponges.tif [--iterations 300]

Fine-tunes MODEL on SCENE alone (the rung recipe of scripts/train_ladder.py
at the model's own target: rate-distortion steps, batch 8, 96x96 patches),
in a temporary folder, and prints each leading plane's squared error over
its variance (y rounded, as coded), the scene's PSNR on the normalised
planes (the training's measure) and the entropy models' estimate of the
rate, before and after. If the planes that the shipped model leaves out come
back after a few hundred steps on one scene, the network can rebuild them
for that scene; a shipped model must do that for every scene at once.
Nothing is installed.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from hsicodec.checkpoints import find_model, load_model
from hsicodec.codec import pad_to_stride
from hsicodec.nn.hific import HiFiC
from hsicodec.training.scenes import TrainingScene, load_scene
from plane_errors import SHOWN, plane_errors
from train_ladder import config, train


def report(label: str, model: HiFiC, scene: TrainingScene) -> None:
    model.eval()
    error = plane_errors(model, scene.planes)["y rounded"]
    variance = scene.planes.var(axis=(1, 2))
    with torch.inference_mode():
        bpp = float(model(torch.from_numpy(pad_to_stride(scene.planes))[None]).bits()) / np.prod(scene.planes.shape[1:])
    print(f"{label:7s} error / variance {np.round(error[:SHOWN] / variance[:SHOWN], 2)}  "
          f"PSNR {-10 * np.log10(error.sum()):.2f} dB at {bpp:.3f} bpp (estimated, y and z)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("scene", type=Path)
    parser.add_argument("--var", help="variable holding the cube in a .mat file")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    entry = find_model(args.model)
    model = load_model(entry)
    scene = load_scene(args.scene, entry.front_end, entry.channels, args.var)
    print(f"{args.scene.name}, {entry.name}: plane variance / first's "
          f"{np.round(scene.planes.var(axis=(1, 2))[:SHOWN] / scene.planes[0].var(), 3)}")
    report("before", model, scene)
    cfg = config(f"{entry.name}-fit", entry.arch, entry.target_bpp, args.iterations, 0)
    cfg["training"]["validate_every"] = args.iterations
    with tempfile.TemporaryDirectory() as tmp:
        report("after", train(cfg, [scene], [scene], Path(tmp), (model, entry.name)).model, scene)


if __name__ == "__main__":
    main()
