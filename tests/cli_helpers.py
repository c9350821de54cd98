"""Running the real `hsicodec` command line from tests."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner, Result

from hsicodec.cli.main import cli

REPO = Path(__file__).resolve().parents[1]


def invoke(*args: object) -> Result:
    """In-process run of `hsicodec ARGS` (fast; exit code and stdout/stderr as a user sees them)."""
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def run_process(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python -m hsicodec ARGS` in a fresh process."""
    return subprocess.run([sys.executable, "-m", "hsicodec", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})}, timeout=600)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_one_line_error(stderr: str) -> None:
    """A user-facing failure of one file: exactly one 'hsicodec: error:' line on stderr, nothing else."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("hsicodec: error:"), stderr
