"""Whole scenes through the wavelet-pyramid core against PCA + JPEG 2000, every byte counted.

For each eval scene of at least 256 x 256: the per-scene KLT of all bands
(hsicodec's front-end), one quantisation step D for every plane, chosen by
bisection on P's estimated bits so that the file reaches the target rate; the
planes after the last one with a non-zero value are not coded and their basis
rows not stored. The planes are then range-coded (`PlaneCoder.encode`) and
decoded back (`PlaneCoder.decode`, symbols checked equal, values rebuilt at
P's centroids), and the bytes
counted are the range coder's words plus the container's header, basis, metadata
and tile framing (`container.side_bytes`, `container.tile_section_bytes`).
PCA + JPEG 2000 and band-wise JPEG 2000 (`hsicodec.baselines`, OpenJPEG) are
coded at the rate we reached, in the same run. PSNR peak: the scene's range.

    python benchmarks/pyramid_scenes.py --model runs/pyramid-long/wavelet-pyramid.pt
"""
from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hsicodec.baselines import jpeg2000_bandwise, pca_jpeg2000
from hsicodec.container import FileHeader, side_bytes, tile_section_bytes
from hsicodec.frontend import fit_front_end
from hsicodec.io import open_scene
from hsicodec.klt import SpectralStats
from hsicodec.metrics import quality
from hsicodec.nn.pyramid import WaveletPyramid
from hsicodec.plane_coding import PlaneCoder, scale_tables

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
RATES = (0.2, 0.4, 1.0, 2.0)


def eval_scenes(min_size: int = 256) -> list[Path]:
    found = []
    for entry in json.loads((DATA / "manifest.json").read_text()):
        shape = entry.get("shape_hwb")
        if entry["split"] == "eval" and shape and min(shape[:2]) >= min_size:
            files = [DATA / f for f in entry["files"]]
            found.append(next((f for f in files if f.suffix == ".hdr"), files[0]))
    return found


def basis_budget(step: float) -> float:
    """Per-band MSE the stored basis may add: a twentieth of a plane's quantisation error at step D."""
    return 0.05 * step ** 2 / 12


def code_at(coder: PlaneCoder, cube: np.ndarray, reader, target_bpp: float) -> dict:
    """Our file at `target_bpp`: bytes, bpp, quality, D and the planes coded."""
    height, width, bands = cube.shape
    stats = SpectralStats(bands)
    stats.update(cube.reshape(-1, bands))
    front = fit_front_end(stats, "klt", bands)
    planes = front.planes(cube)
    pad = coder.model.stride
    padded = np.pad(planes, ((0, 0), (0, -height % pad), (0, -width % pad)), mode="symmetric")
    header = FileHeader(height=height, width=width, bands=bands, dtype=cube.dtype.name, byteorder="<",
                        tile_size=max(height, width), components=bands, model_name="wavelet-pyramid",
                        model_sha256="0" * 64)
    metadata = {"scene": reader.meta.to_json(), "source_name": reader.path.name}

    def layout(step: float) -> tuple:
        code = coder.quantise(padded, step)
        nonzero = (code[0].flatten(1) != 0).any(1)
        for bands_ in code[1]:
            nonzero |= (bands_.flatten(1) != 0).any(1)
        k = int(nonzero.nonzero().max()) + 1 if nonzero.any() else 1
        kept = np.arange(bands) < k
        side = side_bytes(header, front.norm, front.with_rows(kept, basis_budget(step)).basis, metadata)
        return (code[0][:k], [b[:k] for b in code[1]]), k, kept, side

    def estimated_bytes(step: float) -> float:
        code, k, _, side = layout(step)
        return coder.estimate_bits(code) / 8 + side + tile_section_bytes(0, 0)

    target = target_bpp * height * width / 8
    lo, hi = math.log(1e-4), math.log(1.0)
    for _ in range(24):  # bisection on log D: bytes fall as D grows
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if estimated_bytes(math.exp(mid)) > target else (lo, mid)
    step = math.exp(hi)
    code, k, kept, side = layout(step)
    started = time.process_time()
    words, crc = coder.encode(code)
    encode_s = time.process_time() - started
    started = time.process_time()
    decoded, centroids = coder.decode(words, crc, k, *padded.shape[1:])
    decode_s = time.process_time() - started
    assert all(torch.equal(a, b) for a, b in zip([code[0], *code[1]], [decoded[0], *decoded[1]]))
    rebuilt = np.zeros_like(planes)
    rebuilt[:k] = coder.dequantise(centroids, step)[:, :height, :width]
    restored = front.with_rows(kept, basis_budget(step)).spectra(rebuilt)
    values = np.clip(restored, front.norm.lo, front.norm.hi)
    if cube.dtype.kind in "iu":
        values = np.rint(values)
    total = side + tile_section_bytes(len(words), 0)
    return {"bytes": total, "side": side, "bpp": 8 * total / (height * width), "step": step, "planes": k,
            "encode_cpu_s": encode_s, "decode_cpu_s": decode_s, **quality(cube, values.astype(cube.dtype))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a WaveletPyramid state (plane_bakeoff.py's .pt)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    state = torch.load(args.model, weights_only=True)
    model = WaveletPyramid()
    model.load_state_dict(state.get("model", state))
    coder = PlaneCoder(model, scale_tables())
    gaps: dict[str, dict[float, list[float]]] = {"pca_jpeg2000": {r: [] for r in RATES},
                                                 "jpeg2000": {r: [] for r in RATES}}
    print(f"{'scene':32} {'target':>6} {'bpp':>6} {'K':>3} {'PSNR':>6} {'SAM':>6} | {'PCA+J2K':>13} | "
          f"{'band J2K':>13} | enc/dec CPU-s")
    with tempfile.TemporaryDirectory() as tmp:
        for path in eval_scenes():
            with open_scene(path) as reader:
                cube = reader.read(0, 0, *reader.shape[:2])
                for rate in RATES:
                    ours = code_at(coder, cube, reader, rate)
                    cells = []
                    for name, method in (("pca_jpeg2000", pca_jpeg2000), ("jpeg2000", jpeg2000_bandwise)):
                        base = method(cube, ours["bpp"], Path(tmp))
                        q = quality(cube, base.reconstruction)
                        gaps[name][rate].append(ours["psnr"] - q["psnr"])
                        cells.append(f"{q['psnr']:6.2f} @{base.bpp:5.3f}")
                    print(f"{path.stem:32} {rate:6.2f} {ours['bpp']:6.3f} {ours['planes']:3d} {ours['psnr']:6.2f} "
                          f"{ours['sam']:6.3f} | {cells[0]} | {cells[1]} | "
                          f"{ours['encode_cpu_s']:.1f}/{ours['decode_cpu_s']:.1f} side {ours['side']} B", flush=True)
    for name, per_rate in gaps.items():
        print(f"mean PSNR gap to {name} at {' / '.join(f'{r:g}' for r in RATES)} bpp: "
              + " / ".join(f"{np.mean(g):+.2f}" for g in per_rate.values()) + " dB")


if __name__ == "__main__":
    main()
