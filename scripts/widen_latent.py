"""Does a wider latent lift the quality ceiling? Widen a shipped model's y and fine-tune it against a control.

    python scripts/widen_latent.py hificse-klt16-2.0 --factor 3 --iterations 1500 --runs ../runs/widen

The `small` network carries 64 latent channels for each 16x16 block of 16
KLT planes. This script makes a copy of MODEL with FACTOR times as many
latent channels that computes the same function (every channel of y is
repeated FACTOR times, with a little noise on the copies so that they can
part; the layers reading y share each channel's weights among its copies),
then fine-tunes that copy and, as the control, MODEL itself with the same
recipe and number of steps (rate-distortion only, at the model's target
rate). Both are measured on the `eval` scenes with the real coder, and
a line per run is printed: PSNR at the run's own rate and under `-r` on the
scenes of at least 256x256. Runs resume: run the same command again after
an interruption. Nothing is installed in models/.
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch

from hsicodec.checkpoints import ModelEntry, find_model, load_model
from hsicodec.nn.hific import HiFiC
from measure_models import measure_run
from shared_data import DATA, manifest_scenes
from train_ladder import config, split_scenes, train

COPY_NOISE = 0.01  # of the encoder's last filters' scale: lets the copies of a channel part


def widened(model: HiFiC, factor: int, noise: float = COPY_NOISE, seed: int = 0) -> HiFiC:
    """`model` with `factor` x its latent channels; with `noise` 0 it computes exactly the same function."""
    n = model.config.latent_channels
    wide = HiFiC(dataclasses.replace(model.config, latent_channels=n * factor))
    generator = torch.Generator().manual_seed(seed)
    source = dict(model.named_parameters())
    with torch.no_grad():
        for key, target in wide.named_parameters():
            value = source[key]
            if value.shape == target.shape:
                target.copy_(value)
            elif key.startswith("encoder."):  # y's producer: every output channel repeated
                repeated = value.repeat(factor, *([1] * (value.dim() - 1)))
                jitter = torch.randn(repeated.shape, generator=generator) * repeated.std() * noise
                target.copy_(repeated + jitter)
            elif key.startswith("hyperprior.synthesis."):  # (means, scales) of y: each half repeated
                means, scales = value.chunk(2, dim=0)
                target.copy_(torch.cat([means.repeat(factor, *([1] * (value.dim() - 1))),
                                        scales.repeat(factor, *([1] * (value.dim() - 1)))]))
            elif value.dim() == 4 and value.shape[0] == 1:  # G's channel norm over y: gamma and beta repeated
                target.copy_(value.repeat(1, factor, 1, 1))
            else:  # a conv reading y: each channel's weights shared among its copies
                target.copy_(value.repeat(1, factor, 1, 1) / factor)
    return wide  # the entropy models' tables are baked when the fine-tuned model is exported


def run_config(name: str, base: ModelEntry, iterations: int, latent_channels: int) -> dict:
    """The rung recipe of train_ladder.py at `base`'s target, rate-distortion steps only."""
    cfg = config(name, base.arch, base.target_bpp, iterations, 0)
    cfg["model"]["latent_channels"] = latent_channels
    cfg["training"]["validate_every"] = iterations
    return cfg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--factor", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=1500)
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--only", choices=["widened", "control"], help="run one of the two (to run them side by side)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    entry = find_model(args.model)
    base = load_model(entry)
    n = base.config.latent_channels
    runs = {"control": (base, n), "widened": (widened(base, args.factor), n * args.factor)}
    scenes, validation = split_scenes(DATA, "train", 16), split_scenes(DATA, "eval", 16)
    for label, (init, channels) in runs.items():
        if args.only not in (None, label):
            continue
        name = f"{entry.name}-y{channels}"
        run = args.runs / name
        if not (run / "manifest.json").exists():  # train, or resume, the run
            train(run_config(name, entry, args.iterations, channels), scenes, validation, run,
                  (init, entry.name)).export()
        metrics = measure_run(run, manifest_scenes(DATA, "eval"))
        large = metrics["large_mean"]
        curve = " ".join(f"{p['rate']}:{p['psnr']:.2f}" for p in metrics.get("curve", []))
        print(f"{label} ({name}): own rate {large['bpp']:.3f} bpp {large['psnr']:.2f} dB on eval >= 256x256; "
              f"-r {curve}", flush=True)


if __name__ == "__main__":
    main()
