"""`hsicodec compress`: scenes -> .hsic files."""
from __future__ import annotations

import time
from pathlib import Path

import click
from tqdm import tqdm

from hsicodec.checkpoints import ModelEntry, find_model, load_model
from hsicodec.cli.batch import Job, expand_inputs, run_jobs
from hsicodec.cli.options import (
    describe_rate, device_option, emit, json_option, output_option, overwrite_option, quiet_option,
    resolve_device, with_options,
)
from hsicodec.codec import DEFAULT_TILE, compress_scene, rate_figures
from hsicodec.container import HsicReader, tile_rects
from hsicodec.errors import ContainerError, InputError
from hsicodec.io import clear_stale, find_scenes, open_scene
from hsicodec.latent_coding import LatentCoder
from hsicodec.verify import verify_file


def hsic_name(scene: Path) -> str:
    """scene.hdr / scene.tif / scene.mat -> scene.hsic"""
    return scene.with_suffix(".hsic").name


def hsic_model(path: Path) -> str | None:
    """The model sha256 of a complete, valid .hsic file; None for anything else."""
    try:
        with HsicReader(path) as reader:
            return reader.header.model_sha256
    except ContainerError:
        return None


@click.command(short_help="Compress scenes to .hsic files.")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@output_option
@click.option("-r", "--rate", type=click.FloatRange(min=0, min_open=True),
              help="Target bits per pixel (file bits / (H*W)); picks the nearest installed model.")
@click.option("-m", "--model", "model_name",
              help="Model by name (see `hsicodec models`; folders in $HSICODEC_MODELS come first); overrides -r.")
@click.option("--var", help="Variable holding the cube in a .mat file (default: its only 3-D array).")
@click.option("--tile-size", type=click.IntRange(16, 4096), default=DEFAULT_TILE, show_default=True,
              help="Tiles are coded independently; memory grows with the tile size, not the scene.")
@click.option("--verify", is_flag=True, help="Decode each file again and report its PSNR against the scene.")
@with_options(device_option, overwrite_option, json_option, quiet_option)
def compress(inputs: tuple[Path, ...], output: Path | None, rate: float | None, model_name: str | None,
             var: str | None, tile_size: int, verify: bool, device: str, overwrite: bool, as_json: bool,
             quiet: bool) -> None:
    """Compress hyperspectral scenes (ENVI, GeoTIFF, MATLAB .mat) to .hsic files.

    An INPUT folder is searched recursively and its tree is mirrored under -o.
    Existing outputs that verify are skipped unless --overwrite; a failing file
    is reported and the others go on (exit status 1 at the end).

    \b
    Examples:
      $ hsicodec compress scene.hdr -r 0.4
      $ hsicodec compress scene.tif -m hificse-klt16-0.4 -o small.hsic --verify
      $ hsicodec compress archive/ -o compressed/ -r 0.4 --json
    """
    entry = find_model(model_name, rate)
    if model_name is None and rate is not None and abs(entry.target_bpp - rate) > 0.25 * rate:
        click.echo(f"hsicodec: note: no model targets {rate:g} bpp; using {entry.name} "
                   f"(target {entry.target_bpp:g} bpp, see `hsicodec models`)", err=True)
    torch_device = resolve_device(device)
    coder = LatentCoder(load_model(entry), torch_device)
    jobs = expand_inputs(inputs, output, find_scenes, hsic_name)

    def run(job: Job) -> None:
        _compress_one(job, entry, coder, var, tile_size, verify, overwrite, as_json, quiet or len(jobs) > 1)

    run_jobs(jobs, run, quiet, "compress")


def _compress_one(job: Job, entry: ModelEntry, coder: LatentCoder, var: str | None, tile_size: int,
                  verify: bool, overwrite: bool, as_json: bool, quiet: bool) -> None:
    if job.target.exists() and not overwrite:
        made_with = hsic_model(job.target)
        if made_with is None:
            raise InputError(f"{job.target} exists and is not a valid .hsic file; use --overwrite to replace it")
        if made_with != entry.sha256:
            raise InputError(f"{job.target} exists, made with another model; use --overwrite to replace it")
        emit({"input": str(job.source), "output": str(job.target), "status": "skipped"}, as_json,
             f"{job.source} -> {job.target}: exists, skipped")
        return
    clear_stale(job.target)
    job.target.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open_scene(job.source, var=var) as reader:
        tiles = len(tile_rects(reader.shape[0], reader.shape[1], tile_size))
        with tqdm(total=2 * tiles, desc=job.source.name, unit="tile", disable=True if quiet else None,
                  leave=False) as bar:
            compress_scene(reader, job.target, entry, coder, tile_size, bar.update)
        seconds = time.perf_counter() - started
        record = {"input": str(job.source), "output": str(job.target), "status": "ok", "model": entry.name,
                  **rate_figures(job.target.stat().st_size, reader.shape, reader.storage_bytes),
                  "seconds": round(seconds, 3)}
        text = f"{job.source} -> {job.target}: {describe_rate(record)}"
        if verify:
            quality = verify_file(job.target, reader, coder)
            record.update(quality)
            text += f", PSNR {quality['psnr']:.2f} dB, SAM {quality['sam']:.2f} deg"
    emit(record, as_json, text)
