"""`hsicodec analyze`: a model's SE channel attention on a real scene, and its parameter counts."""
from __future__ import annotations

import json
from pathlib import Path

import click

from hsicodec.analysis import LOW_WEIGHT, parameter_counts, plot_se_weights, se_weights
from hsicodec.checkpoints import find_model, load_model
from hsicodec.cli.options import json_option, overwrite_option
from hsicodec.errors import InputError, ModelError
from hsicodec.training.scenes import load_scene


@click.command()
@click.argument("model_name", metavar="MODEL")
@click.argument("scene", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a PNG plot of the weights of every SE layer.")
@overwrite_option
@json_option("the figures as one JSON object")
def analyze(model_name: str, scene: Path, output: Path | None, overwrite: bool, as_json: bool) -> None:
    """Run MODEL on SCENE and report its squeeze-and-excitation (SE) channel weights.

    MODEL is a name as in `compress -m` (see `hsicodec models`). The scene goes
    through the model's front-end exactly as `compress` prepares it. Prints the
    parameter counts of E, P, G (total: what the checkpoint holds) and of the
    training-only discriminator D, then for each SE layer its channel count,
    mean/min/max weight and how many channels it scales by less than 0.5.
    The whole scene runs as one batch. -o draws one bar panel per SE layer; it
    does not replace an existing file without --overwrite.

    \b
    Examples:
      $ hsicodec analyze hificse-klt16-0.4 scene.tif
      $ hsicodec analyze hificse-klt16-0.4 scene.hdr -o se.png
      $ hsicodec analyze hificse-klt16-0.4 scene.hdr --json > se.json
    """
    entry = find_model(model_name)
    model = load_model(entry)
    if output is not None:
        if not model.se_blocks():
            raise ModelError(f"model {entry.name!r} has no SE blocks (arch {entry.arch}); nothing to plot with -o")
        if output.exists() and not overwrite:
            raise InputError(f"{output} exists; use --overwrite to replace it")
    loaded = load_scene(scene, entry.front_end, entry.channels)
    entry.check_fits(loaded.bands, scene)
    layers = se_weights(model, loaded.planes)
    counts = parameter_counts(model)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        height, width = loaded.planes.shape[1:]
        plot_se_weights(layers, output, f"SE channel weights of {entry.name} ({entry.arch}) on {scene.name} "
                                        f"({height} x {width} x {loaded.bands})")

    if as_json:
        record = {"model": entry.name, "arch": entry.arch, "scene": str(scene),
                  "shape": [*loaded.planes.shape[1:], loaded.bands], "parameters": counts,
                  "layers": [{"name": layer.name, "part": layer.part, **layer.summary(),
                              "weights": [float(w) for w in layer.weights]} for layer in layers],
                  "output": None if output is None else str(output)}
        click.echo(json.dumps(record))
        return
    c = counts
    lines = [f"{entry.name} ({entry.arch}, {entry.front_end} front-end, {entry.channels} channels) on {scene}",
             f"  parameters  E {c['encoder']:,}  P {c['hyperprior']:,}  G {c['generator']:,}  "
             f"D {c['discriminator']:,}  total (E+P+G) {c['total']:,}"]
    if not layers:
        lines.append(f"  no SE blocks (arch {entry.arch})")
    else:
        width = max(len(layer.name) for layer in layers)
        lines.append(f"  {'SE layer':{width}}  {'ch':>3}  {'mean':>5}  {'min':>5}  {'max':>5}  "
                     f"<{LOW_WEIGHT:g}")
        for layer in layers:
            s = layer.summary()
            lines.append(f"  {layer.name:{width}}  {s['channels']:>3}  {s['mean']:5.3f}  {s['min']:5.3f}  "
                         f"{s['max']:5.3f}  {s['below_half']:>3}")
    if output is not None:
        lines.append(f"  plot        {output}")
    click.echo("\n".join(lines))
