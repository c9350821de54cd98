"""Entry point: the `hsicodec` click group and its error handling."""
from __future__ import annotations

import logging
import os
import sys
from typing import Any, NoReturn

import click

from hsicodec import __version__
from hsicodec.cli.analyze import analyze
from hsicodec.cli.bench import bench
from hsicodec.cli.compress import compress
from hsicodec.cli.decompress import decompress
from hsicodec.cli.evaluate import evaluate
from hsicodec.cli.info import info
from hsicodec.cli.models import models
from hsicodec.cli.train import train
from hsicodec.errors import HsicodecError


def _usage_error(exc: click.UsageError) -> NoReturn:
    """A usage error as one line on stderr, exit status 2 (click's own form takes four)."""
    where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
    click.echo(f"hsicodec: usage error: {exc.format_message()}{where}", err=True)
    sys.exit(2)


class Group(click.Group):
    """Turns hsicodec's own errors into one line on stderr and exit status 1, usage errors into one
    line and exit status 2."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            _usage_error(exc)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            _usage_error(exc)
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
    """Learned compression of hyperspectral images (HiFiC, HiFiCSE, HiFiC3D).

    \b
    Examples:
      $ hsicodec compress scene.hdr -r 0.4          # -> scene.hsic
      $ hsicodec decompress scene.hsic              # -> scene.restored.hdr + .img
      $ hsicodec eval scene.hdr scene_rec.hdr       # PSNR, SSIM, SAM, MAE
      $ hsicodec compress archive/ -o out/ -r 0.4   # a whole folder, mirrored
      $ hsicodec train config.toml archive/         # a model for your own sensor
    """


for command in (compress, decompress, info, models, evaluate, train, analyze, bench):
    cli.add_command(command)


def main() -> None:
    # GDAL's messages reach Python logging as rasterio's; the error we report says it in one line
    logging.getLogger("rasterio").addHandler(logging.NullHandler())
    cli(prog_name="hsicodec")
