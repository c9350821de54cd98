"""Quick start: compress a real CAVE scene, inspect the file, decompress it and measure.

Run from the repository root:  python examples/quickstart.py
The scene is read from ../shared/data (or $HSICODEC_DATA); everything is written under examples/out/.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("HSICODEC_DATA", REPO.parent / "shared" / "data"))
SCENE = DATA / "cave" / "feathers.tif"  # 256 x 256 x 31, 400-700 nm
OUT = Path(__file__).resolve().parent / "out"


def hsicodec(*args: str) -> None:
    print("$ hsicodec " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "hsicodec", *args], check=True)


def main() -> None:
    if not SCENE.is_file():
        sys.exit(f"quickstart: {SCENE} not found; put the shared data beside the repository or set HSICODEC_DATA")
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    packed = OUT / "feathers.hsic"
    hsicodec("compress", str(SCENE), "-r", "0.4", "-o", str(packed), "--verify")
    hsicodec("info", str(packed))
    hsicodec("decompress", str(packed), "-o", str(OUT / "restored.hdr"))
    hsicodec("eval", str(SCENE), str(OUT / "restored.hdr"))


if __name__ == "__main__":
    main()
