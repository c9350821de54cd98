"""The paper's Table 2 question on our data: where to put the SE blocks and the 3D convs.

    python scripts/placement_study.py --runs ../runs/placements [--iterations 600] [--output docs/placements.md]
    python scripts/placement_study.py --runs ../runs/placements-seed1 --seed 1 --placements hific --output seed1.md

Trains each placement from scratch with the same recipe, seed, scenes and
number of rate-distortion steps (klt front-end, K = 16, `small` widths,
target 0.4 bpp), then compresses the `eval` scenes with the real coder and
writes a Markdown table of PSNR, bpp and training iterations per second.
HiFiC-opt (no SE, no 3D) is trained too, as the reference. Runs resume:
run the same command again after an interruption. --seed and --placements
train another seed of some placements, to see how far the seed alone moves
the figures.
"""
from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

import torch

from hsicodec.training.config import parse_config
from hsicodec.training.loop import Trainer
from measure_models import measure_run
from shared_data import DATA, manifest_scenes
from train_ladder import split_scenes

TARGET = 0.4
PLACEMENTS = (  # (label, model section of the configuration), cheapest first
    ("HiFiC-opt (no SE, no 3D)", {"arch": "hific"}),
    ("SE: E initial", {"arch": "hificse", "se_placement": "encoder_first"}),
    ("SE: E initial + after norm", {"arch": "hificse", "se_placement": "encoder"}),
    ("SE: E and G after norm", {"arch": "hificse", "se_placement": "encoder_generator"}),
    ("3D: E initial + G final", {"arch": "hific3d", "spectral_placement": "ends"}),
    ("3D: all places", {"arch": "hific3d", "spectral_placement": "all"}),
)


def run_name(model: dict) -> str:
    return "-".join([model["arch"], *(v for k, v in model.items() if k != "arch")])


def config(model: dict, iterations: int, seed: int = 0) -> dict:
    """The same recipe for every placement: rate-distortion steps at TARGET, `small` widths."""
    return {"name": run_name(model), "front_end": "klt", "components": 16, "model": {"size": "small", **model},
            "rate": {"target_bpp": TARGET, "lambda_a": 16.0 / TARGET, "lambda_b": 1.0 / TARGET},
            "training": {"seed": seed, "mse_iterations": iterations, "gan_iterations": 0, "lr": 1e-4, "final_lr": 2e-5,
                         "validate_every": iterations, "checkpoint_every": 100, "validation_crop": 128}}


def timed_speed(model: dict, scenes, validation, steps: int = 20) -> float:
    """Training iterations/s of a fresh run of the placement."""
    with tempfile.TemporaryDirectory() as tmp:
        return Trainer(parse_config(config(model, steps), Path(tmp)), scenes, validation, Path(tmp)).timed_steps(steps)


def train_placement(model: dict, iterations: int, seed: int, scenes, validation, run: Path) -> dict:
    """Train one placement (or resume it) and return its summary.json."""
    summary = run / "summary.json"
    if not summary.exists():
        cfg = config(model, iterations, seed)
        run.mkdir(parents=True, exist_ok=True)
        trainer = Trainer(parse_config(cfg, run), scenes, validation, run)
        trainer.start()
        trainer.run(lambda step, row: print(f"{cfg['name']} step {step}", flush=True) if step % 100 == 0 else None)
        trainer.export()
    return json.loads(summary.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--iterations", type=int, default=600)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--placements", nargs="+", choices=[run_name(model) for _, model in PLACEMENTS],
                        help="run names of the placements to train (default: all)")
    parser.add_argument("--output", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "placements.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    scenes, validation = split_scenes(DATA, "train", 16), split_scenes(DATA, "eval", 16)
    eval_scenes = manifest_scenes(DATA, "eval")
    chosen = [(label, model) for label, model in PLACEMENTS
              if args.placements is None or run_name(model) in args.placements]
    rows = []
    for label, model in chosen:
        run = args.runs / run_name(model)
        summary = train_placement(model, args.iterations, args.seed, scenes, validation, run)
        metrics = measure_run(run, eval_scenes)
        rows.append([label, metrics, summary["iterations_per_second"]])
        print(f"{label}: {metrics['eval_mean']['psnr']:.2f} dB at {metrics['eval_mean']['bpp']:.3f} bpp", flush=True)
    for row, (_, model) in zip(rows, chosen):  # back to back, so the speeds compare on a shared machine
        row.append(timed_speed(model, scenes, validation))
    write_table(args.output, rows, args, len(eval_scenes))


def write_table(path: Path, rows: list, args: argparse.Namespace, n_scenes: int) -> None:
    iterations, options = args.iterations, f"--iterations {args.iterations}"
    if args.seed:
        options += f" --seed {args.seed}"
    if args.placements:
        options += " --placements " + " ".join(args.placements)
    lines = [
        "# SE and 3D placements (the paper's Table 2, on our data)",
        "",
        f"Produced by `python scripts/placement_study.py --runs RUNS {options}` on "
        f"{platform.machine()} ({args.threads} CPU threads, no GPU). Every placement is trained from scratch with "
        f"the same seed ({args.seed}), scenes and recipe: klt front-end (K = 16), `small` widths, {iterations} "
        f"rate-distortion steps of batch 8 on 96x96 patches at target {TARGET} bpp. PSNR and bpp are measured "
        f"with the real coder on the {n_scenes} `eval` scenes (every byte of the .hsic file; the mean over all "
        "of them is dominated by the tiny scenes, whose side information costs many bpp) and on those of at "
        f"least 256x256, at each model's own rate and, for a comparison at matched rate, with `-r {TARGET}`. "
        "Iterations/s: training steps timed back to back for every placement after the "
        "runs (comparable with each other), and the speed of each whole run (validation and checkpoints "
        "included; it depends on what else ran on the machine, so it is only roughly comparable).",
        "",
        f"| placement | PSNR dB at {TARGET} bpp (`-r {TARGET}`, eval >= 256x256) | PSNR dB (own rate, eval >= 256x256) "
        "| bpp (own rate, eval >= 256x256) | PSNR dB (own rate, all eval) | bpp (own rate, all eval) "
        "| iterations/s (timed together) | iterations/s (whole run) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, metrics, run_speed, speed in rows:
        mean, large = metrics["eval_mean"], metrics.get("large_mean", {})
        matched = next((p["psnr"] for p in metrics.get("curve", []) if p["rate"] == TARGET), float("nan"))
        lines.append(f"| {label} | {matched:.2f} | {large.get('psnr', float('nan')):.2f} "
                     f"| {large.get('bpp', float('nan')):.3f} | {mean['psnr']:.2f} | {mean['bpp']:.3f} "
                     f"| {speed:.2f} | {run_speed:.2f} |")
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
