"""`hsicodec compress`: scenes -> .hsic files."""
from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import click
from tqdm import tqdm

from hsicodec.checkpoints import ModelEntry, find_model
from hsicodec.cli.batch import Job, expand_inputs, run_jobs
from hsicodec.cli.coders import coder_for
from hsicodec.cli.options import (
    describe_rate, jobs_option, json_option, output_option, overwrite_option, quiet_option, scheduler_option,
    summary_option, threads_option, with_options,
)
from hsicodec.codec import DEFAULT_TILE, compress_scene
from hsicodec.container import HsicReader, is_hsic, rate_figures, side_bytes
from hsicodec.errors import ContainerError, InputError
from hsicodec.io import clear_stale, find_scenes, open_scene
from hsicodec.io.discover import SCENE_EXTENSIONS


DEFAULT_RATE = 1.0
"""bpp of `compress` without -r: mid-range, in log terms, of the 0.2-4 bpp it serves."""


def hsic_name(scene: Path) -> str:
    """scene.hdr / scene.tif / scene.mat -> scene.hsic"""
    return scene.with_suffix(".hsic").name


def hsic_request(path: Path) -> tuple[str, float | None] | None:
    """(model id, requested bpp) of a complete, valid .hsic file; None for a damaged one.

    Anything that is not an .hsic file at all (the scene itself, say) is an InputError:
    hsicodec never replaces it, --overwrite or not.
    """
    if not is_hsic(path):
        raise InputError(f"{path} exists and is not an .hsic file; hsicodec never replaces it (choose another -o)")
    try:
        with HsicReader(path) as reader:
            return reader.header.model_id, reader.metadata.get("target_bpp")
    except ContainerError:
        return None


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@output_option
@click.option("-r", "--rate", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_RATE,
              show_default=True,
              help="Target bits per pixel of each file (file bits / (H*W), every byte counted): sets the one "
                   "quantisation step of all KLT planes, and with it how many planes are coded.")
@click.option("-m", "--model", "model_name",
              help="Model by name (see `hsicodec models`; folders in $HSICODEC_MODELS come first) [default: the "
                   "first one listed].")
@click.option("--var", help="Variable holding the cube in .mat files (default: each file's only 3-D array). In a "
                             "batch it applies to every .mat file; one without it fails with a message and the "
                             "others go on.")
@click.option("--tile-size", type=click.IntRange(16, 4096), default=DEFAULT_TILE, show_default=True,
              help="Tiles are coded independently; memory grows with the tile size, not the scene.")
@click.option("--verify", is_flag=True, help="Decode each file again and report its PSNR against the scene.")
@with_options(overwrite_option, jobs_option, threads_option, scheduler_option, summary_option,
              json_option("one JSON object per file"), quiet_option)
def compress(inputs: tuple[Path, ...], output: Path | None, rate: float, model_name: str | None,
             var: str | None, tile_size: int, verify: bool, overwrite: bool, workers: int, threads: int | None,
             scheduler: str | None, summary: Path | None,
             as_json: bool, quiet: bool) -> None:
    """Compress hyperspectral scenes (ENVI, GeoTIFF, MATLAB .mat) to .hsic files.

    An INPUT folder is searched recursively and its tree is mirrored under -o.
    Existing outputs made with the same model and -r are skipped unless --overwrite, so
    an interrupted batch is finished by running the same command again; a
    failing file is reported and the others go on (exit status 1 at the end).
    -j N codes N files at a time on a local Dask cluster; --scheduler uses an
    existing one.

    \b
    Examples:
      $ hsicodec compress scene.hdr              # -> scene.hsic at 1 bpp
      $ hsicodec compress scene.hdr -r 0.4
      $ hsicodec compress scene.tif -r 2 -o fine.hsic --verify
      $ hsicodec compress archive/ -o compressed/ -r 0.4 --json
      $ hsicodec compress archive/ -o compressed/ -j 8 --summary compressed/summary.csv
    """
    entry = find_model(model_name)
    coder_for(entry)  # a missing or tampered checkpoint is one error, not one per file
    jobs = expand_inputs(inputs, output, find_scenes, hsic_name, f"scene ({', '.join(SCENE_EXTENSIONS)})")
    settings = CompressSettings(entry, rate, var, tile_size, verify, overwrite,
                                quiet=quiet or len(jobs) > 1 or workers > 1 or scheduler is not None)
    run_jobs(jobs, partial(compress_job, settings=settings), "compress", quiet, as_json, workers, scheduler, summary,
             threads, output)


@dataclass(frozen=True)
class CompressSettings:
    """Everything a worker needs to compress one file."""

    entry: ModelEntry
    rate: float
    var: str | None
    tile_size: int
    verify: bool
    overwrite: bool
    quiet: bool


def compress_job(job: Job, settings: CompressSettings) -> tuple[dict, str]:
    """Compress one scene; returns its JSON record and its human line."""
    entry = settings.entry
    made_with = hsic_request(job.target) if job.target.exists() else None
    if job.target.exists() and not settings.overwrite:
        if made_with is None:
            raise InputError(f"{job.target} exists and is a damaged .hsic file; use --overwrite to replace it")
        if made_with != (entry.model_id, settings.rate):
            raise InputError(f"{job.target} exists, made with another model or rate; use --overwrite to replace it")
        record = {"input": str(job.source), "output": str(job.target), "status": "skipped"}
        return record, f"{job.source} -> {job.target}: exists, skipped"
    coder = coder_for(entry)
    clear_stale(job.target)
    job.target.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open_scene(job.source, var=settings.var) as reader:
        with tqdm(desc=job.source.name, unit="tile", disable=True if settings.quiet else None, leave=False) as bar:
            choice = compress_scene(reader, job.target, entry, coder, settings.rate, settings.tile_size, bar)
        record = {"input": str(job.source), "output": str(job.target), "status": "ok", "model": entry.name,
                  **rate_figures(job.target.stat().st_size, reader.shape, reader.storage_bytes),
                  "step": choice.step, "planes": choice.planes}
        if not choice.reachable:
            record["warnings"] = [unreachable_rate(job.source, settings.rate, job.target)]
        text = f"{job.source} -> {job.target}: {describe_rate(record)}"
        if settings.verify:
            from hsicodec.verify import verify_file  # here: the metrics take 0.3 s to import (scipy)

            quality = verify_file(job.target, reader, coder)
            record.update(quality)
            text += f", PSNR {quality['psnr']:.2f} dB, SAM {quality['sam']:.2f} deg"
    record["seconds"] = round(time.perf_counter() - started, 3)
    return record, text


def unreachable_rate(source: Path, rate: float, hsic: Path) -> str:
    """Why the file `hsic` missed its requested rate, and what the user can do."""
    with HsicReader(hsic) as reader:
        h = reader.header
        bpp = 8 * reader.file_bytes / (h.height * h.width)
        side = side_bytes(h, reader.norm, reader.basis, reader.metadata)
    return (f"{source}: {rate:g} bpp is out of reach on {h.height} x {h.width} pixels: the side information "
            f"(KLT basis, metadata, header: {side} bytes) alone is {8 * side / (h.height * h.width):.3f} bpp; "
            f"wrote {bpp:.3f} bpp, the smallest file hsicodec makes of it. Coding neighbouring tiles "
            "as one larger scene spreads that cost")
