"""`hsicodec models`: the installed checkpoints."""
from __future__ import annotations

import json

import click

from hsicodec.checkpoints import installed_models
from hsicodec.cli.options import json_option


@click.command(short_help="List the installed models.")
@json_option
def models(as_json: bool) -> None:
    """List the installed models with their target rate and measured quality.

    `compress -r BPP` picks the klt model with the best measured PSNR at that
    rate and steps its quantisation to reach it; `-m NAME` picks one by name.
    The target is the rate a model was trained for; the measured figures (at
    the model's own step) are means over the eval scenes of at least 256x256
    pixels.
    Models trained with `hsicodec train` join the list when their run folder is in
    $HSICODEC_MODELS (folders separated by ':').

    \b
    Example:
      $ hsicodec models --json
    """
    entries = installed_models()
    if as_json:
        for entry in entries:
            click.echo(json.dumps(entry.to_json()))
        return
    click.echo(f"{'name':24} {'arch':8} {'front-end':9} {'ch':>3} {'target':>6}  measured on eval scenes >= 256x256")
    for e in sorted(entries, key=lambda e: (e.front_end, e.arch, e.rate_bpp)):
        measured = e.metrics.get("large_mean", {})
        figures = f"{measured['bpp']:.3f} bpp, {measured['psnr']:.2f} dB, SAM {measured['sam']:.2f} deg" \
            if measured else "not measured"
        click.echo(f"{e.name:24} {e.arch:8} {e.front_end:9} {e.channels:>3} {e.target_bpp:>6.2f}  {figures}")
