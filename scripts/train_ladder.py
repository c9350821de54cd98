"""Train the shipped rate ladder of one model family on the shared scenes, and install it in models/.

    python scripts/train_ladder.py hificse --init hificse-klt16-0.4 --common-iterations 0 --runs ../runs
    python scripts/train_ladder.py hific --common-iterations 6000 --runs ../runs
    python scripts/train_ladder.py hific3d --init hific-klt16-0.6 --common-iterations 900 --runs ../runs

A common stage-1 model (rate-distortion only, target 0.6 bpp) is trained
first, from scratch or from an installed model (--init; taken as it is with
--common-iterations 0; a model of another family lends the layers the two
share and the others start fresh); each rung (0.2 ... 1.0,
2, 4 bpp) is then fine-tuned from it: `--rung-iterations` rate-distortion
steps at its own target, then `--gan-iterations` steps with the conditional
GAN. Training uses the `train` split scenes of at least 64 px a side; the
`eval` scenes of at least 64 px validate. Every run lives in --runs and
resumes: run the same command again after an interruption. Finished rungs
are copied to models/ and registered in models/manifest.json; measure them
with scripts/measure_models.py.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

from hsicodec.checkpoints import find_model, install, load_model, read_manifest
from hsicodec.errors import InputError
from hsicodec.training.config import parse_config
from hsicodec.training.loop import Trainer
from hsicodec.training.scenes import TrainingScene, load_scene
from shared_data import DATA, manifest_scenes

RUNGS = (0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 4.0)
COMMON_TARGET = 0.6
MIN_SIDE = 64


def split_scenes(data: Path, split: str, components: int) -> list[TrainingScene]:
    """The split's scenes that open as listed in the manifest and are at least MIN_SIDE a side."""
    loaded = []
    for scene_id, path, var in manifest_scenes(data, split):
        try:
            scene = load_scene(path, "klt", components, var)
        except InputError as exc:
            print(f"skip {scene_id}: {exc}", file=sys.stderr)
            continue
        if min(scene.planes.shape[1:]) >= MIN_SIDE:
            loaded.append(dataclasses.replace(scene, name=scene_id))
    return loaded


def config(name: str, arch: str, target: float, mse: int, gan: int, lr: float = 1e-4) -> dict:
    """A rung's configuration. lambda_a = 16 / target: the distortion falls steeply at low rates,
    so a low target needs a much stronger rate penalty to be reached (lambda_b = lambda_a / 16)."""
    lambda_a = 16.0 / target
    return {"name": name, "front_end": "klt", "components": 16, "model": {"arch": arch, "size": "small"},
            "rate": {"target_bpp": target, "lambda_a": lambda_a, "lambda_b": lambda_a / 16},
            "training": {"mse_iterations": mse, "gan_iterations": gan, "lr": lr, "final_lr": lr / 5,
                         "validate_every": 500, "checkpoint_every": 100, "validation_crop": 128}}


def train(cfg: dict, train_scenes, validation, run: Path, init: tuple | None = None) -> Trainer:
    trainer = Trainer(parse_config(cfg, run), train_scenes, validation, run)
    trainer.start(init)
    run.mkdir(parents=True, exist_ok=True)

    def report(step: int, row: dict) -> None:
        if step % 100 == 0 or "val_psnr" in row:
            print(f"{cfg['name']} step {step} " + " ".join(
                f"{k}={v:.4g}" for k, v in row.items() if isinstance(v, float)), file=sys.stderr, flush=True)

    trainer.run(report)
    return trainer


def common_model(args: argparse.Namespace, train_scenes, validation) -> tuple:
    """(model, name) of the stage-1 model all rungs start from, trained in its own run folder.

    It is trained for --common-iterations rate-distortion steps, from scratch or
    from the installed --init model; with --init and 0 iterations the installed
    model is copied there as it is, so that installing a rung of the same name
    later does not change what the other rungs start from.
    """
    name = f"{args.arch}-klt16-common"
    folder = args.runs / name
    if not (folder / "manifest.json").exists():
        init = None
        if args.init:
            entry = find_model(args.init)
            if args.common_iterations == 0 and entry.arch != args.arch:
                sys.exit(f"--init {entry.name} is a {entry.arch} model: a {args.arch} common model needs "
                         "--common-iterations to train the layers it does not share")
            if args.common_iterations == 0:
                folder.mkdir(parents=True, exist_ok=True)
                install(entry, folder)
            else:
                init = (load_model(entry), entry.name)
        if not (folder / "manifest.json").exists():
            train(config(name, args.arch, COMMON_TARGET, args.common_iterations, 0, args.common_lr),
                  train_scenes, validation, folder, init).export()
    [entry] = read_manifest(folder)
    return load_model(entry), entry.name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("arch", choices=["hific", "hificse", "hific3d"])
    parser.add_argument("--init", help="installed model to use as the common stage-1 model")
    parser.add_argument("--common-iterations", type=int, default=6000)
    parser.add_argument("--common-lr", type=float, default=1e-4,
                        help="Adam learning rate of the common model (cosine to a fifth of it)")
    parser.add_argument("--rung-iterations", type=int, default=1000)
    parser.add_argument("--gan-iterations", type=int, default=300)
    parser.add_argument("--rungs", type=float, nargs="+", default=RUNGS)
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    train_scenes, validation = split_scenes(DATA, "train", 16), split_scenes(DATA, "eval", 16)
    print(f"{len(train_scenes)} training, {len(validation)} validation scenes", file=sys.stderr)
    common = common_model(args, train_scenes, validation)
    for rate in args.rungs:
        name = f"{args.arch}-klt16-{rate:.1f}"
        run = args.runs / name
        trainer = train(config(name, args.arch, rate, args.rung_iterations, args.gan_iterations), train_scenes,
                        validation, run, common)
        entry = install(trainer.export())
        print(f"installed {name}: {entry.metrics['validation']}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
