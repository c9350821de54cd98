"""`hsicodec train`: train a model on your own scenes and export it as a checkpoint."""
from __future__ import annotations

import json
import signal
from pathlib import Path

import click
from tqdm import tqdm

from hsicodec.checkpoints import find_model, load_model
from hsicodec.cli.options import device_option, json_option, quiet_option, resolve_device, with_options
from hsicodec.errors import InputError
from hsicodec.training.config import load_config
from hsicodec.training.distributed import start, stop
from hsicodec.training.loop import Trainer
from hsicodec.training.scenes import load_scenes, scene_files, split_validation


def _warn(message: str) -> None:
    click.echo(f"hsicodec: warning: {message}", err=True)


@click.command()
@click.argument("config_file", metavar="CONFIG", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--run", "run_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Run folder: state, log.csv, the exported checkpoint [default: runs/NAME].")
@click.option("--validation", "validation_data", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Validation scenes or folders (default: a share of DATA, set in the config).")
@click.option("--resume", is_flag=True, help="Continue the run saved in the run folder.")
@click.option("--init", "init_model", metavar="MODEL",
              help="Start from an installed model's weights, e.g. to fine-tune it to another rate; a model of another "
                   "architecture of the same widths lends every layer the two share.")
@with_options(device_option, json_option("the exported model's summary as one JSON object"), quiet_option)
def train(config_file: Path, data: tuple[Path, ...], run_dir: Path | None, validation_data: tuple[Path, ...],
          resume: bool, init_model: str | None, device: str, as_json: bool, quiet: bool) -> None:
    """Train a HiFiC, HiFiCSE or HiFiC3D model on the scenes in DATA (files or folders).

    CONFIG is a TOML file: the model (arch, size, placements), the front-end
    (`bands`: your sensor's bands; `klt`: per-scene components, any sensor), the
    target rate, the loss weights and the two stages (rate-distortion only, then
    the conditional GAN). See examples/configs/. The run saves its state every
    few steps: after an interruption, the same command with --resume continues
    it. At the end the model is exported into the run folder, which then works
    as a models folder:

    \b
    Examples:
      $ hsicodec train examples/configs/hificse-bands.toml archive/ -o runs/cave
      $ hsicodec train examples/configs/hificse-bands.toml archive/ -o runs/cave --resume
      $ HSICODEC_MODELS=runs/cave hsicodec train rung-0.8.toml archive/ -o runs/r08 --init hificse-bands-0.4
      $ HSICODEC_MODELS=runs/cave hsicodec compress scene.tif -m hificse-bands
      $ torchrun --nproc_per_node 4 -m hsicodec train CONFIG archive/ -o runs/big
    """
    config = load_config(config_file)
    run_dir = run_dir or Path("runs") / config.name
    if (run_dir / "state.pt").exists() and not resume:
        raise InputError(f"{run_dir} already holds a run; continue it with --resume or choose another -o")
    if resume and not (run_dir / "state.pt").exists():
        raise InputError(f"{run_dir} holds no run to resume")
    processes = start(resolve_device(device))
    try:
        trainer = _trainer(config, data, validation_data, run_dir, processes, quiet, init_model)
        _run(trainer, quiet or not processes.main)
        if processes.main:
            entry = trainer.export()
            summary = {"model": entry.name, "checkpoint": str(entry.path), "sha256": entry.sha256,
                       "iterations": trainer.step, "iterations_per_second": trainer.iterations_per_second,
                       **entry.metrics["validation"]}
            if as_json:
                click.echo(json.dumps(summary))
            else:
                click.echo(f"exported {entry.path} (validation {summary['psnr']:.2f} dB at "
                           f"{summary['latent_bpp']:.3f} bpp of coded latents)")
                click.echo(f"use it: HSICODEC_MODELS={run_dir} hsicodec compress SCENE -m {entry.name}")
        processes.barrier()  # every process leaves together, once the checkpoint is written
    finally:
        stop(processes)


def _trainer(config, data, validation_data, run_dir, processes, quiet, init_model) -> Trainer:
    """Load the scenes (train/validation split) and set the run up, resumed when state.pt exists."""
    if init_model is not None:
        entry = find_model(init_model)
        if entry.front_end != config.front_end:
            raise InputError(f"model {entry.name!r} has the {entry.front_end} front-end, "
                             f"this configuration the {config.front_end} one")
    warn = _warn if processes.main else (lambda message: None)
    scenes = load_scenes(scene_files(list(data)), config.front_end, config.components, warn)
    if not scenes:
        raise InputError("no scene in DATA could be loaded")
    if validation_data:
        validation = load_scenes(scene_files(list(validation_data)), config.front_end, config.components, warn)
        train_scenes = scenes
    else:
        train_scenes, validation = split_validation(scenes, config.training.validation_fraction)
    if not validation:
        raise InputError("no validation scene could be loaded")
    if processes.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if not quiet:
            _warn_sizes(train_scenes, config.training.patch)
            click.echo(f"{len(train_scenes)} training and {len(validation)} validation scenes; "
                       f"{config.front_end} front-end, {train_scenes[0].planes.shape[0]} planes", err=True)
    processes.barrier()
    trainer = Trainer(config, train_scenes, validation, run_dir, processes)
    trainer.start(None if init_model is None else (load_model(entry), entry.name))
    return trainer


def _warn_sizes(scenes, patch: int) -> None:
    small = [s.name for s in scenes if min(s.planes.shape[1:]) < patch]
    if small:
        _warn(f"{len(small)} scene(s) smaller than the {patch}-pixel patch are mirror-padded: {', '.join(small[:3])}")


def _run(trainer: Trainer, quiet: bool) -> None:
    """Train with a progress bar; Ctrl-C (or SIGTERM) saves the state after the current step and stops."""
    def request_stop(signum: int, frame: object) -> None:
        trainer.stop_requested = True

    handlers = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    total = trainer.config.training.iterations
    try:
        with tqdm(total=total, initial=trainer.step, desc="train", unit="it", disable=True if quiet else None,
                  dynamic_ncols=True) as bar:
            def progress(step: int, row: dict) -> None:
                bar.update(1)
                shown = {"stage": row["stage"], "bpp": f"{row['bpp']:.3f}", "psnr": f"{row['psnr']:.2f}",
                         "loss": f"{row['total']:.3g}"}
                if "val_psnr" in row:
                    shown.update(val=f"{row['val_psnr']:.2f}dB@{row['val_bpp']:.3f}")
                bar.set_postfix(shown, refresh=False)
            trainer.run(progress)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    if not trainer.finished:
        raise InputError(f"stopped at step {trainer.step} of {total}, state saved; "
                         "the same command with --resume continues")
