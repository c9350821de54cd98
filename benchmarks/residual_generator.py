"""Does a HiFiC-family residual generator on the decoded KLT planes pay? PSNR and SAM against CPU-minutes.

The product's E and G are the exact CDF 9/7 wavelet and its decoder rebuilds
each value at the centroid of P's Gaussian within its bin. This benchmark
trains, on the `train` scenes, a residual G that adds a correction to the
decoded planes (in units of the step D, so one G serves every rate), in the
paper's three forms:

- `hific`: HiFiC's residual blocks (conv, channel norm, ReLU, conv, channel
  norm), one plane at a time (HiFiC-opt: distortion loss only);
- `hificse`: the same with a squeeze-and-excitation block after each channel
  norm, L1 on its fully connected weights;
- `hific3d`: the first and last convolutions 3-D over the plane axis, so each
  plane's correction sees its neighbouring planes.

Then each continues with the paper's conditional GAN stage (non-saturating
loss, beta = 0.15, the discriminator given the decoded plane).
Inputs are exactly what the decoder has: the first COMPONENTS KLT planes of
each scene quantised at D and rebuilt from P's centroids (the shipped model),
planes after the last non-zero one left out as the coder leaves them. The
report is the PSNR and SAM of the eval scenes of 256 x 256 (spectra rebuilt
through their KLT), with and without G, interpolated at 0.2, 0.4, 1 and
2 bpp (P's bits for the planes).

    python benchmarks/residual_generator.py --minutes 10 --gan-minutes 6
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hsicodec.checkpoints import find_model, load_coder
from hsicodec.codec import padded
from hsicodec.container import SpectralBasis
from hsicodec.errors import InputError
from hsicodec.frontend import FrontEnd
from hsicodec.metrics import quality
from hsicodec.nn.pyramid import WaveletPyramid, centroid, likelihood
from hsicodec.plane_coding import _levels_coded, _shifted
from hsicodec.training import whole_scene
from plane_bakeoff import split_scenes  # benchmarks/, the script's own folder

COMPONENTS = 24
STEPS = tuple(np.geomspace(0.0025, 0.1, 6))
REPORT_RATES = (0.2, 0.4, 1.0, 2.0)
CROP, BATCH, WINDOW = 64, 16, 3
BETA = 0.15  # the paper's weight of the adversarial loss
SE_L1 = 1e-4  # weight of the L1 penalty on the SE blocks' fully connected weights


@dataclass
class Decoded:
    """One scene's first planes and the decoder's reconstruction of them at step D (float32, (K, H, W))."""

    name: str
    step: float
    planes: np.ndarray
    rebuilt: np.ndarray
    coded: int  # planes up to the last non-zero one (the others are not coded)
    bits: float
    front: FrontEnd | None = None  # eval scenes: to rebuild spectra
    cube: np.ndarray | None = None  # eval scenes: the original (H, W, B)


@torch.inference_mode()
def decode_like_the_decoder(model: WaveletPyramid, planes: np.ndarray,
                            step: float) -> tuple[np.ndarray, int, float]:
    """(rebuilt planes, planes coded, P's bits) of planes (K, h, w) at step D: every value at its centroid
    under P given the values coded before it, as `PlaneCoder.decode_tiles` rebuilds them; trailing all-zero
    planes are left out (zeros)."""
    x = torch.from_numpy(padded(planes, model.stride)).to(torch.float64)[:, None]
    low, details = model.quantise(x, step)
    coded = _levels_coded((low, details)).any(dim=1).nonzero()
    kept = int(coded.max()) + 1 if len(coded) else 0
    code = low[:kept], [b[:kept] for b in details]
    previous = (_shifted(code[0]), [_shifted(b) for b in code[1]])
    rebuilt = model.zeros(code)
    bits = [0.0]

    def visit(level: int, values: torch.Tensor, params: torch.Tensor, mask: torch.Tensor) -> None:
        part = rebuilt[0] if level == model.levels else rebuilt[1][level]
        where = mask.bool().expand_as(values)
        part[where] = centroid(values, params)[where]
        bits[0] -= float((torch.log2(likelihood(values, params)) * mask).sum())

    if kept:
        model.walk(code, previous, visit)
    out = np.zeros_like(planes)
    out[:kept] = model.dequantise(rebuilt, step)[:, 0, :planes.shape[1], :planes.shape[2]].float().numpy()
    return out, kept, bits[0]


def scenes(split: str, min_size: int, model: WaveletPyramid, keep_cube: bool) -> list[Decoded]:
    """Every scene of `split` at least `min_size` on a side, decoded at every step of STEPS."""
    found = []
    for name, path, var in split_scenes(split, min_size):
        try:
            cube, mask, front = whole_scene(path, var)
        except InputError as err:  # e.g. a .mat scene stored as a 2-D matrix of spectra
            print(f"left out: {err}", flush=True)
            continue
        planes = front.planes(cube, mask)[:COMPONENTS]
        front = FrontEnd(front.norm, SpectralBasis(front.basis.mean, front.basis.basis[:len(planes)]))
        for step in STEPS:
            rebuilt, coded, bits = decode_like_the_decoder(model, planes, float(step))
            if not coded:
                continue
            found.append(Decoded(name, float(step), planes, rebuilt, coded, bits,
                                 front if keep_cube else None,
                                 cube if keep_cube else None))
        print(f"decoded {name}", flush=True)
    return found


class ChannelNorm(nn.Module):
    """HiFiC's channel norm: each position's channels to zero mean and unit variance, then an affine map."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        return (x - mean) * torch.rsqrt(x.var(1, keepdim=True, unbiased=False) + 1e-3) * self.weight + self.bias


class SqueezeExcitation(nn.Module):
    """The paper's SE block (reduction ratio 2): channel weights from the globally pooled features."""

    def __init__(self, channels: int, reduction: int = 2) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(channels, channels // reduction), nn.ReLU(),
                                nn.Linear(channels // reduction, channels), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x.mean((2, 3)))[:, :, None, None]


class ResidualBlock(nn.Module):
    """HiFiC's generator block: conv, norm, ReLU, conv, norm, and the skip; SE after each norm for HiFiCSE."""

    def __init__(self, channels: int, se: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for second in (False, True):
            layers += [nn.Conv2d(channels, channels, 3, padding=1), ChannelNorm(channels)]
            layers += [SqueezeExcitation(channels)] if se else []
            layers += [] if second else [nn.ReLU()]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResidualGenerator(nn.Module):
    """Planes in units of D (N, P, H, W) -> their corrections; the last conv starts at zero (G starts as the
    identity)."""

    def __init__(self, variant: str, width: int = 16, blocks: int = 2) -> None:
        super().__init__()
        self.variant = variant
        conv = nn.Conv3d if variant == "hific3d" else nn.Conv2d
        self.head = conv(1, width, 3, padding=1)
        self.blocks = nn.Sequential(*[ResidualBlock(width, variant == "hificse") for _ in range(blocks)])
        self.tail = conv(width, 1, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, planes: torch.Tensor) -> torch.Tensor:
        n, p, h, w = planes.shape
        if self.variant != "hific3d":
            flat = planes.reshape(n * p, 1, h, w)
            return self.tail(self.blocks(torch.relu(self.head(flat)))).reshape(n, p, h, w)
        features = torch.relu(self.head(planes[:, None]))  # (N, C, P, H, W)
        width = features.shape[1]
        flat = self.blocks(features.transpose(1, 2).reshape(n * p, width, h, w))
        return self.tail(flat.reshape(n, p, width, h, w).transpose(1, 2))[:, 0]

    def penalty(self) -> torch.Tensor:
        """The L1 norm of the SE blocks' fully connected weights (HiFiCSE), else 0."""
        return sum((m.weight.abs().sum() for m in self.modules()
                    if isinstance(m, nn.Linear)), torch.zeros(()))


class Discriminator(nn.Module):
    """Conditional patch discriminator: logits for (plane, decoded plane) crops, both in units of D."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(2, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 1, 3, padding=1))

    def forward(self, plane: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([plane, condition], dim=1))


def batch(data: list[Decoded], weights: np.ndarray, rng: np.random.Generator,
          window: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(decoded windows of planes (N, window, CROP, CROP), the centre plane's original and decoded crop
    (N, 1, CROP, CROP)), all in units of D, from items drawn with probability `weights`; planes beyond the
    coded ones are zeros, crops flipped at random."""
    inputs, originals, centres = [], [], []
    half = window // 2
    for index in rng.choice(len(data), size=BATCH, p=weights):
        item = data[index]
        coded = item.coded
        k = int(rng.integers(coded))
        size = min(CROP, *item.planes.shape[1:])
        r, c = (int(rng.integers(n - size + 1)) for n in item.planes.shape[1:])
        rebuilt = np.zeros((window, size, size), np.float32)
        lo, hi = max(0, k - half), min(coded, k + half + 1)
        rebuilt[lo - k + half:hi - k + half] = item.rebuilt[lo:hi, r:r + size, c:c + size]
        flip = (slice(None), slice(None, None, rng.choice((-1, 1))), slice(None, None, rng.choice((-1, 1))))
        pad = ((0, 0), (0, CROP - size), (0, CROP - size))
        inputs.append(np.pad(rebuilt[flip], pad, mode="edge") / item.step)
        originals.append(np.pad(item.planes[k:k + 1, r:r + size, c:c + size][flip], pad, mode="edge") / item.step)
        centres.append(inputs[-1][half:half + 1])
    return tuple(torch.from_numpy(np.stack(a).astype(np.float32)) for a in (inputs, originals, centres))


@torch.inference_mode()
def refined(g: ResidualGenerator | None, item: Decoded) -> np.ndarray:
    """The eval item's decoded planes after G (unchanged without G); only the coded planes."""
    if g is None:
        return item.rebuilt
    coded = item.coded
    out = item.rebuilt.copy()
    units = torch.from_numpy(item.rebuilt[:coded] / item.step)[None]
    if g.variant == "hific3d":
        correction = g(units)[0]
    else:
        correction = torch.cat([g(units[:, k:k + 1]) for k in range(coded)], dim=1)[0]
    out[:coded] += correction.numpy() * item.step
    return out


def report(g: ResidualGenerator | None, evals: list[Decoded]) -> dict[float, tuple[float, float]]:
    """Mean (PSNR, SAM) over the eval scenes at each of REPORT_RATES, each scene's curve interpolated in
    log bits."""
    curves: dict[str, list[tuple[float, float, float]]] = {}
    for item in evals:
        h, w = item.planes.shape[1:]
        spectra = item.front.spectra(refined(g, item), item.cube.dtype)
        q = quality(item.cube.astype(np.float64), spectra)
        curves.setdefault(item.name, []).append((item.bits / (h * w), q["psnr"], q["sam"]))
    out = {}
    for rate in REPORT_RATES:
        values = []
        for points in curves.values():
            bpp, psnr, sam = map(np.array, zip(*sorted(points)))
            values.append((np.interp(math.log(rate), np.log(bpp), psnr), np.interp(math.log(rate), np.log(bpp), sam)))
        out[rate] = tuple(float(np.mean(v)) for v in zip(*values))
    return out


def train(g: ResidualGenerator, data: list[Decoded], minutes: float, gan: bool, rng: np.random.Generator,
          log: list[tuple[float, float]]) -> int:
    """Adam on G's mean squared error in units of D (plus beta times the adversarial loss with `gan`) for
    `minutes` CPU-minutes; appends (CPU-minutes, mean loss of the last 100 steps) to `log` every 100 steps
    and at the end, and returns the steps taken."""
    window = WINDOW if g.variant == "hific3d" else 1
    weights = np.array([d.planes.shape[1] * d.planes.shape[2] * d.coded for d in data], float)
    weights /= weights.sum()
    optimiser = torch.optim.Adam(g.parameters(), lr=1e-4 if gan else 1e-3)
    d = Discriminator() if gan else None
    d_optimiser = torch.optim.Adam(d.parameters(), lr=1e-4) if gan else None
    started, losses = time.process_time(), []
    while (spent := time.process_time() - started) < 60 * minutes:
        inputs, originals, centres = batch(data, weights, rng, window)
        output = centres + g(inputs)[:, window // 2:window // 2 + 1]
        loss = ((output - originals) ** 2).mean() + SE_L1 * g.penalty()
        if gan:
            d_optimiser.zero_grad()
            real, fake = d(originals, centres), d(output.detach(), centres)
            (nn.functional.softplus(-real).mean() + nn.functional.softplus(fake).mean()).backward()
            d_optimiser.step()
            loss = loss + BETA * nn.functional.softplus(-d(output, centres)).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
        if len(losses) % 100 == 1:
            log.append((spent / 60, float(np.mean(losses[-100:]))))
    log.append(((time.process_time() - started) / 60, float(np.mean(losses[-100:]))))
    return len(losses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", nargs="+", default=["hific", "hificse", "hific3d"])
    parser.add_argument("--minutes", type=float, default=10.0, help="CPU-minutes of distortion training each")
    parser.add_argument("--gan-minutes", type=float, default=6.0, help="CPU-minutes of the GAN stage of each (0: none)")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = load_coder(find_model()).model
    data, evals = scenes("train", 32, model, False), scenes("eval", 256, model, True)
    baseline = report(None, evals)
    print("rate  bpp  no G: PSNR  SAM", *(f"{r:4}  {p:6.2f}  {s:5.2f}" for r, (p, s) in baseline.items()), sep="\n")
    for variant in args.variants:
        g, log = ResidualGenerator(variant), []
        steps = train(g, data, args.minutes, False, np.random.default_rng(0), log)
        print(f"{variant}: {steps} steps; loss {log[0][1]:.4f} -> {log[-1][1]:.4f}", flush=True)
        print(*_rows(report(g, evals), baseline), sep="\n", flush=True)
        if args.gan_minutes:
            log = []
            steps = train(g, data, args.gan_minutes, True, np.random.default_rng(1), log)
            print(f"{variant} + GAN stage (beta {BETA}): {steps} steps; loss {log[0][1]:.4f} -> {log[-1][1]:.4f}",
                  flush=True)
            print(*_rows(report(g, evals), baseline), sep="\n", flush=True)


def _rows(result: dict[float, tuple[float, float]], baseline: dict[float, tuple[float, float]]) -> list[str]:
    return [f"  {rate:4} bpp: dPSNR {p - baseline[rate][0]:+.3f} dB  dSAM {s - baseline[rate][1]:+.3f} deg"
            for rate, (p, s) in result.items()]


if __name__ == "__main__":
    main()
