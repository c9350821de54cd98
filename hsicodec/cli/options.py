"""Options and helpers shared by several commands."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import click

overwrite_option = click.option("--overwrite", is_flag=True,
                                help="Replace outputs that already exist, if hsicodec wrote them (an .hsic file; a "
                                     "scene hsicodec decoded); nothing else is ever replaced.")


def json_option(what: str) -> Callable:
    """--json, its help saying what is printed (`what`: e.g. 'one JSON object per file')."""
    return click.option("--json", "as_json", is_flag=True,
                        help=f"Print {what} on stdout instead of text (progress stays on stderr).")


quiet_option = click.option("-q", "--quiet", is_flag=True,
                            help="No progress bars (they are shown only when stderr is a terminal).")
jobs_option = click.option("-j", "--jobs", "workers", type=click.IntRange(min=1), default=1, show_default=True,
                           help="Files coded in parallel, by a local Dask cluster of this many worker processes.")
threads_option = click.option("--threads", type=click.IntRange(min=1), envvar="HSICODEC_THREADS", show_envvar=True,
                              help="CPU threads for each file being coded [default: this machine's cores shared "
                                   "among the -j workers]. Use 1 when other work shares the machine.")
scheduler_option = click.option("--scheduler", metavar="ADDRESS",
                                help="Run the batch on an existing Dask cluster (e.g. tcp://10.0.0.5:8786); "
                                     "its workers need hsicodec and the models installed.")
summary_option = click.option("--summary", type=click.Path(dir_okay=False, path_type=Path),
                              help="Write a CSV with one row per file: input, output, status, bytes, bpp, "
                                   "psnr (with --verify), seconds, error.")
output_option = click.option("-o", "--output", type=click.Path(path_type=Path),
                             help="Output file, or the folder of a batch (several inputs or an input folder; "
                                  "created if it does not exist).")


def with_options(*options: Callable) -> Callable:
    def decorate(func: Callable) -> Callable:
        for option in reversed(options):
            func = option(func)
        return func
    return decorate


def emit(record: dict[str, Any], as_json: bool, text: str) -> None:
    """A result on stdout: JSON when asked for, else a human line."""
    click.echo(json.dumps(record) if as_json else text)


def describe_rate(record: dict[str, Any]) -> str:
    """'12345 bytes, 0.412 bpp (0.0021 bpppb), ratio 250.1:1' from a record with rate figures."""
    return (f"{record['bytes']} bytes, {record['bpp']:.3f} bpp ({record['bpppb']:.4f} bpppb), "
            f"ratio {record['ratio']:.1f}:1")
