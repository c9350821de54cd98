"""Compression time against CPU threads, on an idle machine and beside another torch job.

Runs `hsicodec compress SCENE -r RATE` in a fresh process (start-up included) with
the default threads and with each --threads N, first alone, then while a second
process multiplies matrices with torch on 2 threads (what a training job or a
second hsicodec does to a small machine). Prints seconds and the ratio to the
default in the same condition, and checks that every file is byte for byte the same.

    python benchmarks/threads.py [--scene ../shared/data/cave/fake_and_real_peppers.tif] [--threads 1 2]
"""
from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
LOAD = "import torch\ntorch.set_num_threads(2)\na = torch.randn(1500, 1500)\nwhile True:\n    a @ a\n"


def compress_seconds(scene: Path, rate: float, threads: int | None, out: Path) -> tuple[float, str]:
    """Wall seconds of one `hsicodec compress` process, and the sha256 of its file."""
    args = [sys.executable, "-m", "hsicodec", "compress", str(scene), "-r", str(rate), "-o", str(out), "-q",
            "--overwrite"] + ([] if threads is None else ["--threads", str(threads)])
    started = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True)
    return time.perf_counter() - started, hashlib.sha256(out.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene", type=Path, default=DATA / "cave" / "fake_and_real_peppers.tif")
    parser.add_argument("--rate", type=float, default=0.4)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    settings: list[int | None] = [None, *args.threads]
    digests = set()
    print(f"{args.scene.name}, -r {args.rate:g}; seconds (ratio to the default in the same condition)")
    print(f"{'condition':34}" + "".join(f"{'default' if t is None else f'--threads {t}':>22}" for t in settings))
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "scene.hsic"
        for condition in ("idle", "beside a 2-thread torch job"):
            load = subprocess.Popen([sys.executable, "-c", LOAD]) if condition != "idle" else None
            try:
                if load is not None:
                    time.sleep(2)  # let it start multiplying
                times = []
                for threads in settings:
                    seconds, digest = compress_seconds(args.scene, args.rate, threads, out)
                    times.append(seconds)
                    digests.add(digest)
            finally:
                if load is not None:
                    load.kill()
            print(f"{condition:34}" + "".join(f"{t:>12.1f} s ({t / times[0]:4.2f})" for t in times))
    print("files byte for byte the same:", "yes" if len(digests) == 1 else f"NO ({len(digests)} different)")


if __name__ == "__main__":
    main()
