"""Train the shipped `bands` pair for the 31-band CAVE camera and install it in models/.

    python scripts/train_cave_pair.py --runs ../runs [--threads 1]

Runs `hsicodec train` with scripts/configs/{hificse,hific3d}-cave31-0.4.toml
on the CAVE scenes of the `train` split, validated on the CAVE `eval` scenes,
one run folder each under --runs. Run the same command again after an
interruption: it resumes. Finished checkpoints are copied to models/ and
registered in models/manifest.json; measure them with scripts/measure_models.py.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from hsicodec.checkpoints import install, read_manifest
from shared_data import DATA, manifest_scenes

CONFIGS = Path(__file__).resolve().parent / "configs"
PAIR = ("hificse-cave31-0.4", "hific3d-cave31-0.4")


def cave_files(split: str) -> list[str]:
    return [str(path) for scene_id, path, _ in manifest_scenes(DATA, split) if scene_id.startswith("cave_")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    args = parser.parse_args()
    validation = [arg for path in cave_files("eval") for arg in ("--validation", path)]
    for name in PAIR:
        run = args.runs / name
        resume = ["--resume"] if (run / "state.pt").exists() else []
        if not (run / "manifest.json").exists():
            command = [sys.executable, "-m", "hsicodec", "train", str(CONFIGS / f"{name}.toml"),
                       *cave_files("train"), *validation, "-o", str(run), *resume]
            subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
        [entry] = read_manifest(run)
        install(entry)
        print(f"installed {name}: {entry.metrics['validation']}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
