"""`hsicodec eval`: quality of a reconstruction against its reference."""
from __future__ import annotations

from pathlib import Path

import click

from hsicodec.cli.options import emit, json_option
from hsicodec.codec import DEFAULT_TILE
from hsicodec.container import tile_rects
from hsicodec.errors import InputError
from hsicodec.io import open_scene
from hsicodec.metrics import QualityAccumulator


@click.command("eval")
@click.argument("reference", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("reconstruction", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--var", help="Variable holding the cube in a .mat reference.")
@json_option("the figures as one JSON object")
def evaluate(reference: Path, reconstruction: Path, var: str | None, as_json: bool) -> None:
    """Compare RECONSTRUCTION with REFERENCE, tile by tile.

    PSNR uses peak = reference max - min over the whole cube; SSIM is the mean
    of per-band Gaussian SSIM; SAM is the mean spectral angle in degrees; MAE
    is in the reference's units. Nodata samples of the reference are ignored.

    \b
    Example:
      $ hsicodec eval scene.hdr scene_rec.hdr --json
    """
    with open_scene(reference, var=var) as ref, open_scene(reconstruction) as rec:
        if ref.shape != rec.shape:
            raise InputError(f"shapes differ: {reference} is {ref.shape}, {reconstruction} is {rec.shape}")
        quality = QualityAccumulator(ref.shape[2], mask_value=ref.meta.nodata)
        try:
            for rect in tile_rects(ref.shape[0], ref.shape[1], DEFAULT_TILE):
                quality.update(ref.read(*rect), rec.read(*rect))
            result = quality.result()
        except ValueError as exc:  # non-finite samples, an all-nodata reference
            raise InputError(f"cannot compare {reference} and {reconstruction}: {exc}") from None
    record = {"reference": str(reference), "reconstruction": str(reconstruction),
              **{k: result[k] for k in ("psnr", "ssim", "sam", "mae")}}
    emit(record, as_json, f"PSNR {result['psnr']:.2f} dB  SSIM {result['ssim']:.4f}  "
                          f"SAM {result['sam']:.3f} deg  MAE {result['mae']:.4g}")
