"""Running one job per input file: progress bar, failures reported at the end."""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Iterator

import click
from tqdm import tqdm

from hsicodec.errors import HsicodecError, InputError
from hsicodec.atomic import staged


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path


def expand_inputs(inputs: tuple[Path, ...], output: Path | None, find: Callable[[Path], list[Path]],
                  target_name: Callable[[Path], str], sought: str) -> list[Job]:
    """Jobs for files and folders (recursively, mirrored under `output` when given).

    A folder in which `find` finds nothing is an InputError naming it and what was `sought`
    (a mistyped folder would otherwise be a silent success). An `output` that does not
    exist is a folder the jobs create only for a batch (several inputs or an input folder);
    for one file, a missing folder above it is an error, so that a mistyped -o does not
    start a new tree.
    """
    jobs: list[Job] = []
    many = len(inputs) > 1 or any(p.is_dir() for p in inputs)
    if many and output is not None and output.exists() and not output.is_dir():
        raise click.UsageError(f"-o {output} must be a folder when there are several inputs")
    if output is not None and not many and not output.exists() and not output.parent.is_dir():
        raise InputError(f"-o {output}: the folder {output.parent} does not exist")
    for path in inputs:
        if not path.exists():
            raise click.BadParameter(f"{path} does not exist", param_hint="INPUT")
        if path.is_dir():
            found_files = find(path)
            if not found_files:
                raise InputError(f"{path}: no {sought} in this folder or below it")
            for found in found_files:
                folder = (output or path) / found.parent.relative_to(path)
                jobs.append(Job(found, folder / target_name(found)))
        elif output is None:
            jobs.append(Job(path, path.parent / target_name(path)))
        elif many or output.is_dir():
            jobs.append(Job(path, output / target_name(path)))
        else:
            jobs.append(Job(path, output))
    targets = [job.target for job in jobs]
    duplicates = {t for t in targets if targets.count(t) > 1}
    if duplicates:
        raise click.UsageError(f"several inputs would write {sorted(duplicates)[0]}; use separate -o folders")
    return jobs


Work = Callable[[Job], tuple[dict, str]]  # one job -> (JSON record, human line); raises on failure
SUMMARY_FIELDS = ["input", "output", "status", "bytes", "bpp", "psnr", "seconds", "error"]


def attempt(work: Work, threads: int | None, job: Job) -> tuple[dict, str]:
    """Run one job on `threads` CPU threads (None: as the process is set); a failure becomes a record
    with status 'failed' and its one-line message."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    try:
        return work(job)
    except HsicodecError as exc:
        message = str(exc)
    except OSError as exc:  # disk full, permissions...: nothing was written (outputs are atomic)
        message = f"{job.target}: cannot write ({exc.strerror or exc}); nothing was written"
    except Exception as exc:  # a bug must not stop the rest of a batch, nor show a traceback
        if os.environ.get("HSICODEC_DEBUG"):
            raise
        message = f"internal error ({type(exc).__name__}: {exc}); set HSICODEC_DEBUG=1 for details"
    return {"input": str(job.source), "output": str(job.target), "status": "failed", "error": message}, message


def run_jobs(jobs: list[Job], work: Work, label: str, quiet: bool, as_json: bool, workers: int = 1,
             scheduler: str | None = None, summary: Path | None = None, threads: int | None = None,
             output: Path | None = None) -> None:
    """Run every job (here, or on Dask with several workers or a scheduler), continuing past failures.

    Each job runs on `threads` CPU threads, by default the cores this process may use shared
    among the local workers (an existing cluster's workers keep their own setting).
    Results are printed as they complete; failures are listed at the end (exit status 1),
    after a note if the jobs created the -o folder `output`.
    """
    new_folder = output is not None and not output.exists()
    if threads is None and not scheduler:
        threads = default_threads(workers)
    results = (_on_dask(jobs, partial(attempt, work, threads), workers, scheduler) if workers > 1 or scheduler
               else (attempt(work, threads, job) for job in jobs))
    records, failures = [], []
    with tqdm(total=len(jobs), desc=label, unit="file", disable=True if quiet or len(jobs) < 2 else None,
              leave=False) as bar:
        for record, text in results:
            records.append(record)
            for warning in record.get("warnings", []):
                click.echo(f"hsicodec: warning: {warning}", err=True)
            if record["status"] == "failed":
                failures.append(record)
                click.echo(f"hsicodec: error: {text}", err=True)
            else:
                click.echo(json.dumps(record) if as_json else text)
            bar.update(1)
    if new_folder and output.is_dir():
        click.echo(f"hsicodec: created the output folder {output}", err=True)
    if summary is not None:
        _write_summary(records, summary)
    if failures and len(jobs) > 1:
        click.echo(f"hsicodec: {len(failures)} of {len(jobs)} files failed:", err=True)
        for record in failures:
            where = "" if record["input"] in record["error"] else f"{record['input']}: "
            click.echo(f"hsicodec:   {where}{record['error']}", err=True)
    if failures:
        raise SystemExit(1)


def default_threads(workers: int) -> int:
    """The cores this process may use, shared among `workers` processes: never more threads than cores."""
    # os.sched_getaffinity is Linux's; elsewhere (macOS) every core counts
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // workers)


def _on_dask(jobs: list[Job], work: Callable[[Job], tuple[dict, str]], workers: int,
             scheduler: str | None) -> Iterator[tuple[dict, str]]:
    """Results as they complete on a Dask cluster: the one at `scheduler`, else a local one of `workers`."""
    from dask.distributed import Client, LocalCluster, as_completed

    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except OSError as exc:
            raise InputError(f"cannot reach the Dask scheduler at {scheduler} ({exc})") from None
        cluster = None
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               host="127.0.0.1")
        client = Client(cluster)
    try:
        futures = client.map(work, jobs, pure=False)
        for future in as_completed(futures):
            yield future.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _write_summary(records: list[dict], path: Path) -> None:
    """One CSV row per file (written atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with staged() as staging, staging.temp(path).open("w", newline="") as fh:
        writer = csv.DictWriter(fh, SUMMARY_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)
