"""`hsicodec models`: the installed checkpoints, and which of them `-r` uses at which rate."""
from __future__ import annotations

import json

import click
import numpy as np

from hsicodec.checkpoints import ModelEntry, best_for_rate, installed_models
from hsicodec.cli.options import json_option

RATE_GRID = [float(r) for r in np.round(np.geomspace(0.1, 4.0, 33), 3)]
"""The rates at which `models` asks which model `-r` would use (0.1 ... 4 bpp)."""


def rate_spans(entries: list[ModelEntry]) -> list[tuple[float, float, ModelEntry]]:
    """(from, to, model): the runs of RATE_GRID over which `compress -r` uses one model."""
    spans: list[tuple[float, float, ModelEntry]] = []
    for rate in RATE_GRID:
        entry = best_for_rate(entries, rate)
        if spans and spans[-1][2] is entry:
            spans[-1] = (spans[-1][0], rate, entry)
        else:
            spans.append((rate, rate, entry))
    return spans


@click.command()
@json_option("one JSON object per model")
def models(as_json: bool) -> None:
    """List the installed models: the rates `compress -r` uses each for, and its measured quality.

    `compress -r BPP` uses the klt model with the best measured PSNR at that
    rate and steps its quantisation to reach it, so a model's name (the rate
    its training aimed at) is not what it covers: the list ends with the model
    -r uses at each rate from 0.1 to 4 bpp (those marked *). "own step" is the
    model's file at its trained step (`-m NAME` alone): means over the eval
    scenes of at least 256x256 pixels. Models trained with `hsicodec train`
    join the list when their run folder is in $HSICODEC_MODELS (folders
    separated by ':').

    \b
    Example:
      $ hsicodec models --json
    """
    entries = sorted(installed_models(), key=lambda e: (e.front_end, e.arch, e.target_bpp, e.name))
    spans = rate_spans(entries)
    if as_json:
        for entry in entries:
            served = [[lo, hi] for lo, hi, e in spans if e is entry]
            click.echo(json.dumps({**entry.to_json(), "rates_served": served}))
        return
    used = {e.name for _, _, e in spans}
    click.echo(f"  {'name':22} {'family':8} {'front-end':9} {'ch':>3}  own step (eval scenes >= 256x256)")
    for e in entries:
        measured = e.metrics.get("large_mean", {})
        figures = (f"{measured['bpp']:.3f} bpp, {measured['psnr']:.2f} dB, SAM {measured['sam']:.2f} deg"
                   if measured else "not measured")
        mark = "*" if e.name in used else " "
        click.echo(f"{mark} {e.name:22} {e.arch:8} {e.front_end:9} {e.channels:>3}  {figures}")
    click.echo("\n-r uses (* above; bands models are used by name only):")
    for lo, hi, e in spans:
        click.echo(f"  {f'{lo:g}-{hi:g}' if hi > lo else f'{lo:g}':>11} bpp  {e.name}")
