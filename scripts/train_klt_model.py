"""Train a KLT front-end model on the shared scenes' `train` split and export it to models/.

    python scripts/train_klt_model.py --arch hificse --target-bpp 0.4 --iterations 8000 \
        --name hificse-klt16-0.4 --run runs/hificse-klt16-0.4

Resumable: run the same command again after an interruption. Validation uses
the `eval` split (component-plane PSNR, estimated rate); the measured figures
with the real coder come from scripts/measure_models.py.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from hsicodec.checkpoints import SHIPPED_MODELS, ModelEntry, export_checkpoint, read_manifest, write_manifest
from hsicodec.errors import InputError, ModelError
from hsicodec.nn.hific import HificConfig
from hsicodec.training.loop import StageConfig, train_stage
from hsicodec.training.scenes import component_planes

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MIN_SIDE = 64


def load_split(data: Path, split: str, components: int) -> tuple[list[np.ndarray], list[str]]:
    """Planes of every scene of a split that opens as given (mat variables from the manifest)."""
    planes, names = [], []
    for entry in json.loads((data / "manifest.json").read_text()):
        if entry["split"] != split:
            continue
        files = [data / f for f in entry["files"]]
        path = next((f for f in files if f.suffix == ".hdr"), files[0])
        var = entry.get("var") if str(entry.get("var", "")).isidentifier() else None
        try:
            plane = component_planes(path, components, var)
        except InputError as exc:
            print(f"skip {entry['id']}: {exc}", file=sys.stderr)
            continue
        if min(plane.shape[1:]) < MIN_SIDE:
            print(f"skip {entry['id']}: smaller than {MIN_SIDE} px", file=sys.stderr)
            continue
        planes.append(plane)
        names.append(entry["id"])
    return planes, names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="hificse", choices=["hific", "hificse", "hific3d"])
    parser.add_argument("--components", type=int, default=16)
    parser.add_argument("--target-bpp", type=float, required=True)
    parser.add_argument("--iterations", type=int, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    train, train_names = load_split(args.data, "train", args.components)
    val, val_names = load_split(args.data, "eval", args.components)
    print(f"{len(train)} training scenes, {len(val)} validation scenes", file=sys.stderr)
    config = HificConfig(arch=args.arch, in_channels=args.components)
    stage = StageConfig(iterations=args.iterations, target_bpp=args.target_bpp)

    def report(step: int, row: dict) -> None:
        if step % 50 == 0 or "val_psnr" in row:
            print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                  file=sys.stderr, flush=True)

    model = train_stage(config, stage, train, val, args.run, report)
    training = {"stage": "mse", "iterations": stage.iterations, "patch": stage.patch, "batch": stage.batch,
                "lr": [stage.lr, stage.final_lr], "target_bpp": stage.target_bpp, "scenes": train_names,
                "device": "cpu", "log": str(args.run / "log.csv")}
    entry = export_checkpoint(model, SHIPPED_MODELS / f"{args.name}.pt", args.name, "klt", args.target_bpp,
                              training, {})
    entries = [e for e in _existing() if e.name != args.name] + [entry]
    write_manifest(sorted(entries, key=lambda e: (e.arch, e.target_bpp)))
    print(f"exported {entry.file} sha256 {entry.sha256}", file=sys.stderr)


def _existing() -> list[ModelEntry]:
    """Entries already installed (none when models/ has no manifest yet)."""
    try:
        return read_manifest()
    except ModelError:
        return []


if __name__ == "__main__":
    main()
