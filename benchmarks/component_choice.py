"""What choosing the stored KLT rows buys: every eval scene at the model's own step, with and without it.

    python benchmarks/component_choice.py [--model hificse-klt16-0.4]

Prints, per scene, the rows stored, the file size and the PSNR with the
choice (`hsicodec.components`) and with every row kept at the container's
default budget, and the mean change.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from shared_data import DATA, manifest_scenes  # noqa: E402

from hsicodec.checkpoints import find_model, load_model  # noqa: E402
from hsicodec.codec import compress_scene  # noqa: E402
from hsicodec.container import HsicReader  # noqa: E402
from hsicodec.io import open_scene  # noqa: E402
from hsicodec.latent_coding import LatentCoder  # noqa: E402
from hsicodec.verify import verify_file  # noqa: E402


def coded(path: Path, var: str | None, packed: Path, entry, coder: LatentCoder, choose_rows: bool) -> tuple:
    """(rows stored, bytes, PSNR) of one scene's file."""
    with open_scene(path, var=var) as reader:
        compress_scene(reader, packed, entry, coder, choose_rows=choose_rows)
        psnr = verify_file(packed, reader, coder)["psnr"]
    with HsicReader(packed) as hsic:
        rows = int(np.count_nonzero(np.any(hsic.basis.basis, axis=1)))
    return rows, packed.stat().st_size, psnr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="hificse-klt16-0.4")
    args = parser.parse_args()
    entry = find_model(args.model)
    coder = LatentCoder(load_model(entry), torch.device("cpu"))
    print(f"{entry.name}, own step\n| scene | H x W x B | rows | bytes | PSNR dB | all rows: bytes | PSNR dB |")
    print("|---|---|---:|---:|---:|---:|---:|")
    ratios, gains = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for scene_id, path, var in manifest_scenes(DATA, "eval"):
            with open_scene(path, var=var) as reader:
                shape = "x".join(map(str, reader.shape))
            rows, size, psnr = coded(path, var, Path(tmp) / "a.hsic", entry, coder, True)
            _, size_all, psnr_all = coded(path, var, Path(tmp) / "b.hsic", entry, coder, False)
            ratios.append(size / size_all)
            gains.append(psnr - psnr_all)
            print(f"| {scene_id} | {shape} | {rows} | {size} | {psnr:.2f} | {size_all} | {psnr_all:.2f} |")
    print(f"\nmean file size ratio {np.mean(ratios):.3f}, mean PSNR change {np.mean(gains):+.2f} dB "
          f"over {len(ratios)} scenes")


if __name__ == "__main__":
    main()
