"""`hsicodec bench`: rate-distortion of the installed models against the classical anchors."""
from __future__ import annotations

from pathlib import Path

import click
from tqdm import tqdm

from hsicodec.bench import (RATE_CONTROLLED, band_means_point, baseline_points, gaps, markdown, model_point,
                            plot, summary_table, write_csv)
from hsicodec.checkpoints import find_model
from hsicodec.cli.coders import coder_for
from hsicodec.cli.options import overwrite_option, quiet_option
from hsicodec.errors import InputError
from hsicodec.io import find_scenes, open_scene
from hsicodec.atomic import staged

PAPER_RATES = (0.2, 0.4, 1.0, 2.0)


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Report folder: results.csv, report.md, rd_psnr.png, rd_sam.png.")
@click.option("-m", "--model", "model_names", multiple=True,
              help="Models to run (repeat the option; rows `NAME -r`); default: the one `compress` uses "
                   "(rows `hsicodec -r`).")
@click.option("--rates", type=click.FloatRange(min=0, min_open=True), multiple=True, default=PAPER_RATES,
              show_default=True, help="Rates (bpp) of hsicodec's rows and of the baseline curves.")
@click.option("--var", help="Variable holding the cube in .mat files.")
@overwrite_option
@quiet_option
def bench(inputs: tuple[Path, ...], output: Path, model_names: tuple[str, ...], rates: tuple[float, ...],
          var: str | None, overwrite: bool, quiet: bool) -> None:
    """Compress SCENES with hsicodec and with the classical codecs a user might pick instead.

    The anchors, coded in memory with imagecodecs: band-wise JPEG 2000, PCA +
    JPEG 2000 (Du & Fowler 2007), PCA + JPEG XL and 3-D SPERR.

    Each scene is coded as `compress -r RATE` codes it, at every --rates
    (rows `hsicodec -r`; with -m, rows `NAME -r` for each model named).
    Rates count every byte of each file (the .hsic header, KLT basis and
    metadata; the PCA basis and mean of the PCA anchors). The baselines run at the
    given rates and at the rate each model reached (and a little below or
    above it where they land off it), so every comparison is at matched bpp.
    A baseline point below the scene's floor, each band sent as its mean
    (rows `band means`), is a codec failing at that rate and no gap is taken
    against it. Writes the per-scene figures (CSV), a Markdown summary with
    the mean PSNR and spectral-angle gaps to each baseline, and
    rate-distortion plots.

    \b
    Examples:
      $ hsicodec bench ../shared/data/cave/feathers.tif -o report/
      $ hsicodec bench scenes/ -o report/ --rates 0.4 --rates 1
    """
    report = output / "report.md"
    if report.exists() and not overwrite:
        raise InputError(f"{report} exists; use --overwrite to replace the report")
    entries = [find_model(name) for name in model_names] or [find_model()]
    files = [f for path in inputs for f in (find_scenes(path) if path.is_dir() else [path])]
    points = []
    for path in tqdm(files, desc="bench", unit="scene", disable=True if quiet else None):
        try:
            reader = open_scene(path, var)
        except InputError as exc:
            click.echo(f"hsicodec: warning: skipping {exc}", err=True)
            continue
        with reader:
            for entry in entries:
                method = f"{entry.name} -r" if model_names else RATE_CONTROLLED
                points += [model_point(reader, path.stem, entry, coder_for(entry), rate, method) for rate in rates]
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
