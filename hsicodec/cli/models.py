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

    `compress -r BPP` picks the model whose target is nearest; `-m NAME` picks one by name.
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
    click.echo(f"{'name':28} {'arch':8} {'front-end':9} {'ch':>3} {'target bpp':>10}  measured")
    for e in entries:
        measured = e.metrics.get("eval_mean", {})
        figures = f"{measured['psnr']:.2f} dB at {measured['bpp']:.3f} bpp" if measured else ""
        click.echo(f"{e.name:28} {e.arch:8} {e.front_end:9} {e.channels:>3} {e.target_bpp:>10.2f}  {figures}")
