"""Start-up cost of the hsicodec command: CPU seconds of the commands that import no network.

`--help`, `info` and `models` import neither torch nor the codec, so they answer
at about the cost of the interpreter itself; the anchor printed beside them is
a bare `python -c pass` in the same run. Usage: python benchmarks/startup.py
[FILE.hsic] (default: a file compressed from the CAVE feathers scene first).
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPEATS = 5
DATA = Path(os.environ.get("HSICODEC_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def cpu_seconds(command: list[str]) -> float:
    """Best of REPEATS: user + system CPU seconds of one run of `command`."""
    best = float("inf")
    for _ in range(REPEATS):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        best = min(best, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("hsic", nargs="?", type=Path, help="a .hsic file for `hsicodec info`")
    args = parser.parse_args()
    hsicodec = shutil.which("hsicodec") or str(Path(sys.executable).with_name("hsicodec"))
    with tempfile.TemporaryDirectory() as tmp:
        hsic = args.hsic
        if hsic is None:
            hsic = Path(tmp) / "feathers.hsic"
            subprocess.run([hsicodec, "compress", str(DATA / "cave" / "feathers.tif"), "-o", str(hsic), "-q"],
                           stdout=subprocess.DEVNULL,
                           check=True)
        anchor = cpu_seconds([sys.executable, "-c", "pass"])
        print(f"{'command':32} {'CPU s':>7} {'x python -c pass':>17}")
        print(f"{'python -c pass':32} {anchor:7.3f} {1.0:17.1f}")
        commands = {"hsicodec --help": ["--help"], "hsicodec info --help": ["info", "--help"],
                    "hsicodec models": ["models"], "hsicodec info FILE": ["info", str(hsic)]}
        for label, command in commands.items():
            seconds = cpu_seconds([hsicodec, *command])
            print(f"{label:32} {seconds:7.3f} {seconds / anchor:17.1f}")


if __name__ == "__main__":
    main()
