"""`hsicodec bench`: rate-distortion of the installed models against JPEG 2000 baselines."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import click
from tqdm import tqdm

from hsicodec.bench import (RATE_CONTROLLED, Point, band_means_point, baseline_points, gaps, markdown, model_point,
                            plot, summary_table, write_csv)
from hsicodec.checkpoints import ModelEntry, find_model, installed_models
from hsicodec.cli.coders import coder_for
from hsicodec.cli.options import overwrite_option, quiet_option, refine_option
from hsicodec.errors import InputError
from hsicodec.io import SceneReader, find_scenes, open_scene
from hsicodec.io.atomic import staged

PAPER_RATES = (0.2, 0.4, 0.6, 0.8, 1.0)


def stepped_points(reader: SceneReader, name: str, entry: ModelEntry, rates: tuple[float, ...],
                   refine_iterations: int) -> list[Point]:
    """The scene as `compress -m NAME -r RATE` codes it at every rate (rows `NAME -r`)."""
    coder = coder_for(entry, "cpu")
    return [model_point(reader, name, entry, coder, rate, f"{entry.name} -r", refine_iterations) for rate in rates]


def rate_controlled_points(reader: SceneReader, name: str, rates: tuple[float, ...],
                           refine_iterations: int) -> list[Point]:
    """The scene as `compress -r` codes it at each rate: one point per klt architecture (its best model
    there), and the `hsicodec -r` point, the family point of the model `compress -r` picks."""
    families = sorted({e.arch for e in installed_models() if e.front_end == "klt"})
    points = []
    for rate in rates:
        family = {}
        for arch in families:
            entry = find_model(rate=rate, arch=arch)
            family[entry.name] = model_point(reader, name, entry, coder_for(entry, "cpu"), rate,
                                             refine_iterations=refine_iterations)
        points += [*family.values(), dataclasses.replace(family[find_model(rate=rate).name], method=RATE_CONTROLLED)]
    return points


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Report folder: results.csv, report.md, rd_psnr.png, rd_sam.png.")
@click.option("-m", "--model", "model_names", multiple=True,
              help="Models to run (repeat the option); default: every installed model that fits each scene.")
@click.option("--rates", type=click.FloatRange(min=0, min_open=True), multiple=True, default=PAPER_RATES, show_default=True,
              help="Rates (bpp) of the `compress -r` rows and of the baseline curves; each model's own rate "
                   "is added to the baselines'.")
@click.option("--var", help="Variable holding the cube in .mat files.")
@refine_option
@overwrite_option
@quiet_option
def bench(inputs: tuple[Path, ...], output: Path, model_names: tuple[str, ...], rates: tuple[float, ...],
          var: str | None, refine_iterations: int, overwrite: bool, quiet: bool) -> None:
    """Compress SCENES with every model and with band-wise JPEG 2000 and PCA + JPEG 2000.

    Each model codes each scene at its own rate. Without -m, each scene is also
    coded as `compress -r RATE` codes it, at every --rates: with the best model
    of each architecture (rows `HiFiCSE -r`, `HiFiC3D -r`, `HiFiC-opt -r`) and
    with the best of all, the one `compress -r` takes (rows `hsicodec -r`).
    With -m, each named model is stepped to every --rates itself, as
    `compress -m NAME -r RATE` does (rows `NAME -r`), bands models included.
    Rates count every byte of each file (the .hsic header, KLT basis and
    metadata; the PCA basis of PCA + JPEG 2000). The baselines run at the given
    rates and at the rate each model reached (and a little below or above it
    where they land off it), so every comparison is at matched bpp. A baseline
    point below the scene's floor, each band sent as its mean (rows `band
    means`), is a codec failing at that rate and no gap is taken against it.
    Writes the per-scene figures (CSV), a Markdown summary with the mean PSNR
    and spectral-angle gaps to each baseline, and rate-distortion plots.

    \b
    Examples:
      $ hsicodec bench ../shared/data/cave/feathers.tif -o report/
      $ hsicodec bench scenes/ -o report/ -m hificse-klt16-0.4 --rates 0.4 --rates 1
      $ hsicodec bench cave/ -o cave-report/ -m hificse-cave31-0.4 -m hificse-klt16-0.4
    """
    report = output / "report.md"
    if report.exists() and not overwrite:
        raise InputError(f"{report} exists; use --overwrite to replace the report")
    entries = [find_model(name) for name in model_names] or installed_models()
    files = [f for path in inputs for f in (find_scenes(path) if path.is_dir() else [path])]
    points = []
    for path in tqdm(files, desc="bench", unit="scene", disable=True if quiet else None):
        try:
            reader = open_scene(path, var)
        except InputError as exc:
            click.echo(f"hsicodec: warning: skipping {exc}", err=True)
            continue
        with reader:
            fitting = [e for e in entries if e.fits(reader.shape[2])]
            for entry in fitting:
                points.append(model_point(reader, path.stem, entry, coder_for(entry, "cpu"),
                                          refine_iterations=refine_iterations))
                if model_names:
                    points += stepped_points(reader, path.stem, entry, rates, refine_iterations)
            if not model_names:
                points += rate_controlled_points(reader, path.stem, rates, refine_iterations)
            cube = reader.read(0, 0, *reader.shape[:2])
            reached = [p.bpp for p in points if p.scene == path.stem]
            targets = sorted({*rates, *(round(b, 4) for b in reached)})
            points += baseline_points(path.stem, cube, targets, reader.meta.nodata, reached)
            points.append(band_means_point(path.stem, cube, reader.meta.nodata))
    if not points:
        raise InputError("no scene to benchmark")
    output.mkdir(parents=True, exist_ok=True)
    write_csv(points, output / "results.csv")
    rows = gaps(points)
    text = markdown(rows, points)
    plot(points, "psnr", output / "rd_psnr.png")
    plot(points, "sam", output / "rd_sam.png")
    with staged() as staging:
        staging.temp(report).write_text(text)
    click.echo(summary_table(rows), nl=False)
