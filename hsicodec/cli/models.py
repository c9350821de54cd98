"""`hsicodec models`: the installed checkpoints."""
from __future__ import annotations

import json

import click

from hsicodec.checkpoints import installed_models
from hsicodec.cli.options import json_option


@click.command()
@json_option("one JSON object per model")
def models(as_json: bool) -> None:
    """List the installed models; the first is the default of compress.

    One model covers every rate: `compress -r` sets the quantisation step of
    the KLT planes, and the model's probability model codes them. Models in
    the folders of $HSICODEC_MODELS (separated by ':') come first.

    \b
    Example:
      $ hsicodec models --json
    """
    entries = installed_models()
    if as_json:
        for entry in entries:
            click.echo(json.dumps(entry.to_json()))
        return
    for n, e in enumerate(entries):
        click.echo(f"{'*' if n == 0 else ' '} {e.name:24} {e.arch:16} {e.path}")
