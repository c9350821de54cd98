"""`hsicodec decompress`: .hsic files -> ENVI or GeoTIFF scenes."""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import click
import numpy as np
from tqdm import tqdm

from hsicodec.checkpoints import ModelEntry, find_by_id, sha256_of
from hsicodec.cli.batch import Job, expand_inputs, run_jobs
from hsicodec.cli.coders import coder_for
from hsicodec.cli.options import (
    describe_rate, jobs_option, json_option, output_option, overwrite_option, quiet_option, scheduler_option,
    summary_option, threads_option, with_options,
)
from hsicodec.codec import decode_tiles, salvage_fill
from hsicodec.container import HsicReader, rate_figures, source_bytes
from hsicodec.errors import InputError, ModelError
from hsicodec.io import SceneMeta, clear_stale, write_scene
from hsicodec.io.envi import envi_paths
from hsicodec.io.provenance import Decoded, decoded, marked

SUFFIXES = {"envi": ".hdr", "gtiff": ".tif"}
FORMAT_OF_SUFFIX = {".hdr": "envi", ".img": "envi", ".tif": "gtiff", ".tiff": "gtiff"}


def output_format(fmt: str | None, output: Path | None) -> str:
    """-f, else the format an -o file name asks for (.tif/.tiff: GeoTIFF), else ENVI.

    An -f that contradicts the -o suffix is a usage error: it would write, say,
    an ENVI data file named .tif that no reader takes for ENVI.
    """
    implied = FORMAT_OF_SUFFIX.get(output.suffix.lower()) if output is not None else None
    if fmt is not None and implied is not None and fmt != implied:
        raise click.UsageError(f"-o {output} names a {implied} file but -f is {fmt}")
    return fmt or implied or "envi"


def decoded_name(hsic: Path, fmt: str, beside: bool) -> str:
    """scene.hsic -> scene.restored.hdr beside it, so never the scene it was made from; scene.hdr under -o."""
    return hsic.with_suffix((".restored" if beside else "") + SUFFIXES[fmt]).name


def find_hsic(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.hsic") if p.is_file())


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@output_option
@click.option("-f", "--format", "fmt", type=click.Choice(sorted(SUFFIXES)),
              help="Output format [default: gtiff for an -o file ending .tif/.tiff, else envi]. "
                   "ENVI keeps the source's interleave and byte order.")
@click.option("--window", type=int, nargs=4, metavar="ROW COL HEIGHT WIDTH",
              help="Decode only this pixel window (only the tiles it touches are decoded); "
                   "georeferencing is shifted to its corner.")
@click.option("--salvage", is_flag=True,
              help="Write every intact tile of a damaged or truncated file; damaged tiles become nodata "
                   "and are listed on stderr.")
@with_options(overwrite_option, jobs_option, threads_option, scheduler_option, summary_option,
              json_option("one JSON object per file"), quiet_option)
def decompress(inputs: tuple[Path, ...], output: Path | None, fmt: str | None, window: tuple[int, int, int, int] | None,
               salvage: bool, overwrite: bool, workers: int, threads: int | None,
               scheduler: str | None, summary: Path | None, as_json: bool, quiet: bool) -> None:
    """Decompress .hsic files back to scenes with their metadata.

    The file names its model; decoding needs nothing else. Without -o,
    scene.hsic becomes scene.restored.hdr (or .tif) beside it. An INPUT folder
    is searched recursively for .hsic files and mirrored under -o. An output
    that an earlier run decoded from the same .hsic is skipped; --overwrite
    replaces a scene hsicodec decoded. Any other file of that name, such as
    the original scene, is never replaced: that is an error. -j N decodes N
    files at a time on a local Dask cluster; --scheduler uses an existing one.

    \b
    Examples:
      $ hsicodec decompress scene.hsic                 # -> scene.restored.hdr + .img
      $ hsicodec decompress scene.hsic -o scene_rec.tif   # GeoTIFF (-f gtiff)
      $ hsicodec decompress scene.hsic --window 0 0 512 512 -o corner.hdr
      $ hsicodec decompress compressed/ -o restored/ --json
      $ hsicodec decompress damaged.hsic --salvage     # intact tiles; damaged ones as nodata
    """
    fmt = output_format(fmt, output)
    jobs = expand_inputs(inputs, output, find_hsic, partial(decoded_name, fmt=fmt, beside=output is None),
                         ".hsic file")
    settings = DecompressSettings(fmt, window, salvage, overwrite,
                                  quiet=quiet or len(jobs) > 1 or workers > 1 or scheduler is not None)
    run_jobs(jobs, partial(decompress_job, settings=settings), "decompress", quiet, as_json, workers, scheduler,
             summary, threads, output)


@dataclass(frozen=True)
class DecompressSettings:
    """Everything a worker needs to decompress one file."""

    fmt: str
    window: tuple[int, int, int, int] | None
    salvage: bool
    overwrite: bool
    quiet: bool


def _existing_output(job: Job, fmt: str, source_name: str | None) -> Decoded | None:
    """What the existing output of `job` holds, if hsicodec decoded it (from any .hsic file); None if
    nothing is there. Anything else there is an InputError: it is never replaced, nor skipped."""
    paths = envi_paths(job.target) if fmt == "envi" else (job.target,)
    present = [p for p in paths if p.exists()]
    if not present:
        return None
    existing = decoded(job.target)
    if existing.source_sha256 is not None:
        return existing
    what = next((p for p in present if p.name == source_name), None)
    if what is not None:
        raise InputError(f"{what} is the scene {job.source.name} was made from; hsicodec never replaces it "
                         "(choose another -o)")
    raise InputError(f"{present[0]} exists and was not decoded by hsicodec, which never replaces it (choose another "
                     "-o, or move it away)")


def _model_of(reader: HsicReader) -> ModelEntry:
    model_id = reader.header.model_id
    entry = find_by_id(model_id)
    if entry is None:
        raise ModelError(f"{reader.path} needs model {reader.header.model_name!r} (sha256 {model_id}...), "
                         "which is not installed (add its folder to $HSICODEC_MODELS)")
    return entry


def decompress_job(job: Job, settings: DecompressSettings) -> tuple[dict, str]:
    """Decompress one file; returns its JSON record (damaged tiles as warnings) and its human line."""
    fmt, window, salvage, overwrite = settings.fmt, settings.window, settings.salvage, settings.overwrite
    started = time.perf_counter()
    damaged: list[dict] = []
    source_sha256 = sha256_of(job.source)
    with HsicReader(job.source, salvage=salvage) as reader:
        header = reader.header
        meta = marked(SceneMeta.from_json(reader.metadata.get("scene", {})), source_sha256)
        job.target.parent.mkdir(parents=True, exist_ok=True)
        dtype = np.dtype(header.dtype)
        shape = (header.height, header.width, header.bands)
        out_shape, out_meta, indices = shape, meta, range(header.n_tiles)
        if window is not None:
            try:
                indices = reader.tiles_in_window(*window)
            except ValueError as exc:
                raise InputError(f"--window: {exc}") from None
            out_shape, out_meta = (window[2], window[3], header.bands), meta.windowed(window[0], window[1])
        existing = _existing_output(job, fmt, reader.metadata.get("source_name"))
        if existing is not None and not overwrite:
            if existing.source_sha256 != source_sha256 or (existing.shape, existing.dtype) != (out_shape, dtype):
                raise InputError(f"{job.target} exists, decoded from another .hsic file or with another --window; "
                                 "use --overwrite to replace it")
            record = {"input": str(job.source), "output": str(job.target), "status": "skipped"}
            return record, f"{job.source} -> {job.target}: exists (decoded from this file), skipped"
        clear_stale(job.target, job.target.with_suffix(".img"))
        coder = coder_for(_model_of(reader))
        if salvage and meta.nodata is None and reader.damaged_tiles(indices):
            # damaged tiles are written as nodata: the output must declare that value
            out_meta = dataclasses.replace(out_meta, nodata=salvage_fill(dtype, None))
        with tqdm(total=len(indices), desc=job.source.name, unit="tile", disable=True if settings.quiet else None,
                  leave=False) as bar:
            def damage(index: int, rect: tuple[int, int, int, int], reason: str) -> None:
                damaged.append({"tile": index, "rows": [rect[0], rect[0] + rect[2]],
                                "cols": [rect[1], rect[1] + rect[3]], "reason": reason})

            blocks = decode_tiles(reader, coder, out_meta.nodata, bar, window, damage if salvage else None)
            written = write_scene(job.target, fmt, out_shape, dtype, out_meta, blocks)
        shown = next((p for p in written if p.suffix == ".hdr"), written[0])
        record = {"input": str(job.source), "output": str(shown), "files": [str(p) for p in written],
                  "status": "salvaged" if damaged else "ok", "format": fmt, "damaged_tiles": damaged,
                  **rate_figures(reader.file_bytes, shape, source_bytes(reader)),
                  "seconds": round(time.perf_counter() - started, 3)}
    record["warnings"] = [
        f"tile {t['tile']} (rows {t['rows'][0]}-{t['rows'][1] - 1}, cols {t['cols'][0]}-{t['cols'][1] - 1}) "
        f"written as nodata {out_meta.nodata}: {t['reason']}" for t in damaged]
    text = f"{job.source} -> {record['output']}: from {describe_rate(record)}"
    return record, text + (f"; {len(damaged)} damaged tile(s) written as nodata" if damaged else "")
