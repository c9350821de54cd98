"""`hsicodec train`: fit P to your own scenes (a sensor, an archive) and export a model compress can use."""
from __future__ import annotations

import csv
import importlib.util
import time
from pathlib import Path

import click
from tqdm import tqdm

from hsicodec.checkpoints import export_checkpoint, find_model, load_model, write_manifest
from hsicodec.cli.options import emit, json_option, quiet_option
from hsicodec.errors import HsicodecError, InputError
from hsicodec.io import find_scenes
from hsicodec.io.discover import SCENE_EXTENSIONS

STATE = "state.pt"
LOG = "log.csv"
SAVE_EVERY = 100
"""Steps between saves of the state (and rows of the log)."""


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Run folder: state.pt (to resume), log.csv, NAME.pt and manifest.json.")
@click.option("--name", default="mine", show_default=True, help="Name of the exported model.")
@click.option("--steps", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Optimiser steps in all (a resumed run goes on to this count).")
@click.option("--init", "init_model",
              help="Start from this installed model's P [default: the default model; 'none' starts afresh].")
@click.option("--patch", type=click.IntRange(min=32), default=64, show_default=True,
              help="Crop size; scenes smaller than it on either side are left out.")
@click.option("--batch", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-4, show_default=True,
              help="Adam's learning rate.")
@click.option("--var", help="Variable holding the cube in .mat files.")
@click.option("--minutes", type=click.FloatRange(min=0, min_open=True),
              help="Stop after this many minutes of training (wall clock) even before --steps, and export.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where P trains: auto takes a CUDA GPU when there is one. The exported model codes on "
                   "any machine (compress and decompress run P on the CPU).")
@json_option("the exported model's manifest entry as one JSON object")
@quiet_option
def train(inputs: tuple[Path, ...], output: Path, name: str, steps: int, init_model: str | None, patch: int,
          batch: int, lr: float, var: str | None, minutes: float | None, device: str, as_json: bool,
          quiet: bool) -> None:
    """Fit the probability model P to SCENES (files or folders) and export it to the run folder.

    Each step codes random crops of random KLT planes of the scenes at random
    quantisation steps and lowers the bits P gives them, so the model keeps
    serving every rate. Running the same command again resumes from
    state.pt. The exported model is used by pointing $HSICODEC_MODELS at
    the run folder.

    \b
    Examples:
      $ hsicodec train archive/ -o runs/mine --steps 5000
      $ HSICODEC_MODELS=runs/mine hsicodec compress scene.hdr -m mine -r 0.4
    """
    import torch

    from hsicodec.nn.pyramid import WaveletPyramid
    from hsicodec.training import STEP_RANGE, Trainer, klt_planes

    if importlib.util.find_spec("compressai") is None:  # checked before training: the export needs it
        raise HsicodecError("hsicodec train needs compressai to bake the exported model's range-coder tables "
                            "(pip install --no-deps compressai==1.2.8 beside a CPU torch, else hsicodec[train])")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device == "cuda" and not torch.cuda.is_available():
        raise HsicodecError("--device cuda: torch finds no CUDA GPU here (use --device cpu or auto)")
    files = [f for path in inputs for f in (find_scenes(path) if path.is_dir() else [path])]
    scenes = [planes for planes in (klt_planes(f, var) for f in files) if min(planes.shape[1:]) >= patch]
    if not scenes:
        raise InputError(f"no scene of at least {patch} x {patch} pixels among {len(files)} file(s) "
                         f"({', '.join(SCENE_EXTENSIONS)}); lower --patch")
    state = output / STATE
    if state.exists():
        trainer = Trainer.resume(state, lr, device)
    else:
        model = WaveletPyramid() if init_model == "none" else load_model(find_model(init_model))
        trainer = Trainer(model, lr, device=device)
    output.mkdir(parents=True, exist_ok=True)  # only once the run can start
    deadline = None if minutes is None else time.monotonic() + 60 * minutes
    with (output / LOG).open("a", newline="") as fh, tqdm(total=steps, initial=trainer.steps, desc="train",
                                                          unit="step", disable=True if quiet else None) as bar:
        log = csv.writer(fh)
        if fh.tell() == 0:
            log.writerow(["step", "cpu_seconds", "bits_per_pixel"])
        losses = []
        while trainer.steps < steps:
            losses.append(trainer.step(scenes, batch, patch))
            bar.update(1)
            out_of_time = deadline is not None and time.monotonic() >= deadline
            if trainer.steps % SAVE_EVERY == 0 or trainer.steps == steps or out_of_time:
                log.writerow([trainer.steps, round(trainer.cpu_seconds, 1), round(sum(losses) / len(losses), 5)])
                fh.flush()
                trainer.save(state)
                losses = []
            if out_of_time:
                break
    training = {"scenes": [str(f) for f in files], "steps": trainer.steps, "cpu_seconds": trainer.cpu_seconds,
                "patch": patch, "batch": batch, "lr": lr, "device": device}
    entry = export_checkpoint(trainer.model, output / f"{name}.pt", name, training, STEP_RANGE)
    write_manifest([entry], output)
    emit(entry.to_json(), as_json, f"{output / (name + '.pt')}: {trainer.steps} steps, "
                                   f"{trainer.cpu_seconds / 60:.1f} CPU-minutes; use it with "
                                   f"HSICODEC_MODELS={output} hsicodec compress ... -m {name}")
