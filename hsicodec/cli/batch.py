"""Running one job per input file: progress bar, failures reported at the end."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import click
from tqdm import tqdm

from hsicodec.errors import HsicodecError


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path


def expand_inputs(inputs: tuple[Path, ...], output: Path | None, find: Callable[[Path], list[Path]],
                  target_name: Callable[[Path], str]) -> list[Job]:
    """Jobs for files and folders (recursively, mirrored under `output` when given)."""
    jobs: list[Job] = []
    many = len(inputs) > 1 or any(p.is_dir() for p in inputs)
    if many and output is not None and output.exists() and not output.is_dir():
        raise click.UsageError(f"-o {output} must be a folder when there are several inputs")
    for path in inputs:
        if not path.exists():
            raise click.BadParameter(f"{path} does not exist", param_hint="INPUT")
        if path.is_dir():
            for found in find(path):
                folder = (output or path) / found.parent.relative_to(path)
                jobs.append(Job(found, folder / target_name(found)))
        elif output is None:
            jobs.append(Job(path, path.parent / target_name(path)))
        elif many or output.is_dir() or str(output).endswith("/"):
            jobs.append(Job(path, output / target_name(path)))
        else:
            jobs.append(Job(path, output))
    targets = [job.target for job in jobs]
    duplicates = {t for t in targets if targets.count(t) > 1}
    if duplicates:
        raise click.UsageError(f"several inputs would write {sorted(duplicates)[0]}; use separate -o folders")
    return jobs


def run_jobs(jobs: list[Job], run: Callable[[Job], None], quiet: bool, label: str) -> None:
    """Run every job, continuing past failures; list the failures at the end and exit 1 if any."""
    failures: list[tuple[Job, str]] = []
    bar = tqdm(jobs, desc=label, unit="file", disable=True if quiet or len(jobs) < 2 else None, leave=False)
    for job in bar:
        try:
            run(job)
        except HsicodecError as exc:
            failures.append((job, str(exc)))
            click.echo(f"hsicodec: error: {exc}", err=True)
        except OSError as exc:  # disk full, permissions...: nothing was written (outputs are atomic)
            message = f"{job.target}: cannot write ({exc.strerror or exc}); nothing was written"
            failures.append((job, message))
            click.echo(f"hsicodec: error: {message}", err=True)
        except Exception as exc:  # a bug must not stop the rest of a batch, nor show a traceback
            if os.environ.get("HSICODEC_DEBUG"):
                raise
            message = f"internal error ({type(exc).__name__}: {exc}); set HSICODEC_DEBUG=1 for details"
            failures.append((job, message))
            click.echo(f"hsicodec: error: {message}", err=True)
    if failures and len(jobs) > 1:
        click.echo(f"hsicodec: {len(failures)} of {len(jobs)} files failed:", err=True)
        for job, message in failures:
            where = "" if str(job.source) in message else f"{job.source}: "
            click.echo(f"hsicodec:   {where}{message}", err=True)
    if failures:
        raise SystemExit(1)
