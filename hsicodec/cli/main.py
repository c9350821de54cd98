"""Entry point: the `hsicodec` click group and its error handling."""
from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from hsicodec import __version__
from hsicodec.errors import HsicodecError

COMMANDS = {
    # name: (module, its click command, the line `hsicodec --help` shows). A command's module, and torch
    # with it, is imported only when that command runs or shows its own help.
    "compress": ("hsicodec.cli.compress", "compress", "Compress scenes to .hsic files."),
    "decompress": ("hsicodec.cli.decompress", "decompress", "Decompress .hsic files to ENVI or GeoTIFF."),
    "info": ("hsicodec.cli.info", "info", "Show what a .hsic file holds."),
    "models": ("hsicodec.cli.models", "models", "List the installed models."),
    "eval": ("hsicodec.cli.evaluate", "evaluate", "PSNR, SSIM, SAM and MAE of a reconstruction."),
    "train": ("hsicodec.cli.train", "train", "Fit the model to your own scenes."),
    "bench": ("hsicodec.cli.bench", "bench", "Rate-distortion report: hsicodec vs the classical codecs."),
}


@contextmanager
def _usage_errors_in_one_line() -> Iterator[None]:
    """A usage error raised inside as one line on stderr, exit status 2 (click's own form takes four);
    a bare `hsicodec` still shows its help."""
    try:
        yield
    except click.exceptions.NoArgsIsHelpError:
        raise
    except click.UsageError as exc:
        where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        click.echo(f"hsicodec: usage error: {exc.format_message()}{where}", err=True)
        sys.exit(2)


class Group(click.Group):
    """The commands of COMMANDS, imported when used; hsicodec's own errors as one line on stderr and
    exit status 1, usage errors as one line and exit status 2."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute, _ = COMMANDS[name]
        return getattr(importlib.import_module(module), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, short) for name, (_, _, short) in COMMANDS.items()])

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        with _usage_errors_in_one_line():  # the group's own options
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with _usage_errors_in_one_line():  # a command's name, arguments and options
                return super().invoke(ctx)
        except HsicodecError as exc:
            click.echo(f"hsicodec: error: {exc}", err=True)
            sys.exit(1)
        except OSError as exc:
            if os.environ.get("HSICODEC_DEBUG"):
                raise
            click.echo(f"hsicodec: error: {exc}", err=True)
            sys.exit(1)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hsicodec")
def cli() -> None:
    """Learned compression of hyperspectral images: per-scene KLT, CDF 9/7 wavelet, a learned probability model.

    \b
    Examples:
      $ hsicodec compress scene.hdr -r 0.4          # -> scene.hsic
      $ hsicodec decompress scene.hsic              # -> scene.restored.hdr + .img
      $ hsicodec eval scene.hdr scene_rec.hdr       # PSNR, SSIM, SAM, MAE
      $ hsicodec compress archive/ -o out/ -r 0.4   # a whole folder, mirrored
      $ hsicodec train archive/ -o runs/mine        # a model fitted to your own sensor
    """


def main() -> None:
    # GDAL's messages reach Python logging as rasterio's; the error we report says it in one line
    logging.getLogger("rasterio").addHandler(logging.NullHandler())
    cli(prog_name="hsicodec")
