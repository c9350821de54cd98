"""`hsicodec models`: the installed checkpoints."""
from __future__ import annotations

import json

import click

from hsicodec.checkpoints import ModelEntry, installed_models
from hsicodec.cli.options import json_option


@click.command()
@json_option("one JSON object per model")
@click.option("--markdown", is_flag=True, help="Print a Markdown table of the models (for a report).")
def models(as_json: bool, markdown: bool) -> None:
    """List the installed models; the first is the default of compress.

    One model covers every rate: `compress -r` sets the quantisation step D of
    the KLT planes, and the model's probability model codes them; "steps" is
    the range of D it was trained over (on CAVE scenes, about 0.1 to 4 bpp).
    Models in the folders of $HSICODEC_MODELS (separated by ':') come first.

    \b
    Examples:
      $ hsicodec models --json
      $ hsicodec models --markdown >> report.md
    """
    if as_json and markdown:
        raise click.UsageError("--json and --markdown are alternatives")
    entries = installed_models()
    if as_json:
        for entry in entries:
            click.echo(json.dumps(entry.to_json()))
    elif markdown:
        click.echo("| model | family | steps D trained | sha256 | file |\n|---|---|---|---|---|")
        for entry in entries:
            click.echo(f"| {entry.name} | {entry.arch} | {_steps(entry)} | `{entry.sha256[:12]}` | {entry.path} |")
    else:
        for n, entry in enumerate(entries):
            click.echo(f"{'*' if n == 0 else ' '} {entry.name:24} {entry.arch:16} D {_steps(entry):14} {entry.path}")


def _steps(entry: ModelEntry) -> str:
    return f"{entry.steps[0]:g} to {entry.steps[1]:g}"
