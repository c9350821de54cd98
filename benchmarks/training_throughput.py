"""Training throughput (iterations/s) and parameter counts of each model, on real scenes.

Times full training steps at the paper's setting (batch 8, 96x96 patches,
klt front-end with K = 16 on the CAVE `train` scenes), for stage 1
(rate-distortion) and stage 2 (conditional GAN: one D step per G step), for
HiFiC-opt, HiFiCSE and HiFiC3D and the SE / 3D placements of the paper's
Table 2. The paper reports 7-9 iterations/s on a V100 at its full widths.

    $ python benchmarks/training_throughput.py [--size small|paper|tiny] [--steps 20] [--device cpu|cuda]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from hsicodec.nn.hific import parameter_count
from hsicodec.training.config import parse_config
from hsicodec.training.distributed import Processes
from hsicodec.training.loop import Trainer
from hsicodec.training.scenes import load_scenes

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
VARIANTS = {
    "HiFiC-opt": {"arch": "hific"},
    "HiFiCSE (E initial)": {"arch": "hificse", "se_placement": "encoder_first"},
    "HiFiCSE (E initial + after norm)": {"arch": "hificse", "se_placement": "encoder"},
    "HiFiCSE (E and G after norm)": {"arch": "hificse"},
    "HiFiC3D (E initial + G final)": {"arch": "hific3d"},
    "HiFiC3D (all places)": {"arch": "hific3d", "spectral_placement": "all"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="small", choices=["tiny", "small", "paper"])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--scenes", type=int, default=6, help="CAVE training scenes to draw patches from")
    args = parser.parse_args()
    processes = Processes(device=torch.device(args.device))
    cave = sorted((DATA / "cave").glob("*.tif"))[: args.scenes]
    scenes = load_scenes(cave, "klt", 16)
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"batch 8, 96x96 patches, klt K=16, size {args.size}, {args.steps} steps, {device_name}\n")
    print("| model | E+P+G params | D params | stage 1 it/s | stage 2 (GAN) it/s |")
    print("|---|---:|---:|---:|---:|")
    for label, model in VARIANTS.items():
        rates = []
        for stage in ({"mse_iterations": 10**6}, {"mse_iterations": 0, "gan_iterations": 10**6}):
            config = parse_config({"name": "bench", "front_end": "klt", "components": 16,
                                   "model": {"size": args.size, **model}, "training": stage}, Path("."))
            with tempfile.TemporaryDirectory() as run:
                trainer = Trainer(config, scenes, scenes[:1], Path(run), processes)
                rates.append(trainer.timed_steps(args.steps))
        print(f"| {label} | {parameter_count(trainer.model):,} | {parameter_count(trainer.discriminator):,} "
              f"| {rates[0]:.2f} | {rates[1]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
