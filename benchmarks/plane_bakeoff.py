"""Bake-off of spatial codecs for KLT planes: rate-distortion against CPU-minutes of training.

Each candidate codes one KLT plane at a time at its native amplitude: the plane
is divided by a quantisation step D before the fixed CDF 9/7 wavelet (E and G),
so one trained P covers every rate and every plane, and one D for all planes
of a scene is the equal-slope split of bits (orthonormal rows). The loss is
bits per pixel. (The learned-transform candidates of docs/core-bakeoff.md,
GDN and HiFiC's E and G, ran from this script as of commit eab5b4d.)

Every `--eval-every` CPU-seconds the candidate codes all planes of the eval
scenes of 256 x 256 at several D (bits from its entropy models; the planes
after the last non-zero one are not coded), and OpenJPEG codes the same planes
as one multi-component codestream (one common scale, irreversible 9/7, in
memory). The report is the PSNR (peak: the scene's range) of both curves
interpolated at 0.2, 0.4, 1 and 2 bpp, their difference averaged over the
scenes, as training goes. Neither side counts the KLT basis and mean (the same
for both).

    python benchmarks/plane_bakeoff.py --candidates wavelet-pyramid --minutes 30 -o runs/bakeoff

Writes OUT/curves.csv (one row per candidate, CPU-minute, scene and D) and
OUT/<candidate>.pt (the last state, to continue from with --resume).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import imagecodecs
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hsicodec._compressai import EntropyBottleneck, GaussianConditional
from hsicodec.errors import InputError
from hsicodec.nn.pyramid import WaveletPyramid
from hsicodec.nn.wavelet import analyse_2d, synthesise_2d
from hsicodec.training import crops, klt_planes

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
COMPONENTS = 16
EVAL_STEPS = (0.4, 0.2, 0.1, 0.05, 0.025, 0.012, 0.006, 0.003, 0.0015)
J2K_LEVELS = (20, 24, 27, 30, 34, 38, 42, 46, 50, 54, 58, 62, 66, 70, 76, 82, 90)
REPORT_RATES = (0.2, 0.4, 1.0, 2.0)  # bpp of the planes (all of them together, over H x W)


class Wavelet97(nn.Module):
    """The CDF 9/7 wavelet over `levels` levels, packed: planes (N, 1, H, W) <-> a latent (N, 4**levels,
    H / 2**levels, W / 2**levels) whose channels are every subband cut into blocks by pixel-unshuffle, the
    coarsest low-pass band first, then each level's details, coarse to fine; each channel is scaled by the
    L2 norm of its synthesis basis function (the bake-off's packed candidates code this latent)."""

    def __init__(self, levels: int = 4) -> None:
        super().__init__()
        self.levels = levels
        self.register_buffer("gains", torch.ones(4 ** levels), persistent=False)
        self.gains = self._synthesis_norms()

    @property
    def stride(self) -> int:
        return 2 ** self.levels

    def level_channels(self) -> list[int]:
        """Latent channels of each group, coarse to fine: the low-pass band with the coarsest details, then each
        finer level's details."""
        return [4] + [3 * 4 ** k for k in range(1, self.levels)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._pack(x) * self.gains[None, :, None, None]

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return self._unpack(y / self.gains[None, :, None, None])

    def _pack(self, x: torch.Tensor) -> torch.Tensor:
        details = []
        low = x
        for level in range(self.levels):
            low, bands = analyse_2d(low)
            details.append(F.pixel_unshuffle(bands, 2 ** (self.levels - 1 - level)))
        return torch.cat([low, *reversed(details)], dim=1)

    def _unpack(self, y: torch.Tensor) -> torch.Tensor:
        low = y[:, :1]
        start = 1
        for level in reversed(range(self.levels)):
            factor = 2 ** (self.levels - 1 - level)
            count = 3 * factor ** 2
            bands = F.pixel_shuffle(y[:, start:start + count], factor)
            start += count
            low = synthesise_2d(low, bands)
        return low

    @torch.no_grad()
    def _synthesis_norms(self) -> torch.Tensor:
        """L2 norm of each latent channel's synthesis basis function (an impulse far from the edges)."""
        size = 8 * self.stride
        grid = size // self.stride
        impulses = torch.zeros(4 ** self.levels, 4 ** self.levels, grid, grid)
        channel = torch.arange(4 ** self.levels)
        impulses[channel, channel, grid // 2, grid // 2] = 1.0
        return self._unpack(impulses).flatten(1).norm(dim=1)


def slice_order(level_channels: list[int], phases: bool) -> tuple[list[int], list[int]]:
    """(channel order, slice sizes): one slice per wavelet level, coarse first; with `phases`, each level
    whose subbands were cut into r x r blocks (r >= 2) is split into four slices by the parity of a value's
    row and column in its block, (0, 0), (1, 1), (0, 1), (1, 0), so that later ones see their neighbours."""
    order: list[int] = []
    sizes: list[int] = []
    start = 0
    for count in level_channels:
        r = int(round((count / 3) ** 0.5)) if count % 3 == 0 else 1
        channels = list(range(start, start + count))
        if phases and r >= 2:
            for pi, pj in ((0, 0), (1, 1), (0, 1), (1, 0)):
                part = [start + o * r * r + i * r + j for o in range(3) for i in range(r) for j in range(r)
                        if i % 2 == pi and j % 2 == pj]
                order += part
                sizes.append(len(part))
        else:
            order += channels
            sizes.append(count)
        start += count
    return order, sizes


class WaveletContext(nn.Module):
    """The CDF 9/7 wavelet as E and G (fixed, invertible) and a learned P: a hyperprior plus
    channel-conditional slices, coarse levels first, each conditioned on the slices before it and,
    with `cross_plane`, on the previous KLT plane's quantised latent (the same positions).

    Only P learns: the latent of a plane at step D is round(W(x / D)), fixed data, so the loss is
    the bits alone and the distortion is set by D.
    """

    def __init__(self, width: int = 96, hyper: int = 64, cross_plane: bool = True, phases: bool = False) -> None:
        super().__init__()
        self.wavelet = Wavelet97(4)
        self.cross_plane = cross_plane
        order, self.groups = slice_order(self.wavelet.level_channels(), phases)
        self.register_buffer("order", torch.tensor(order), persistent=False)
        self.register_buffer("unorder", torch.argsort(torch.tensor(order)), persistent=False)
        channels = sum(self.groups)
        self.hyper_analysis = nn.Sequential(
            nn.Conv2d(channels, hyper, 3, padding=1), nn.ReLU(),
            nn.Conv2d(hyper, hyper, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv2d(hyper, hyper, 5, stride=2, padding=2))
        self.hyper_synthesis = nn.Sequential(
            nn.ConvTranspose2d(hyper, hyper, 5, stride=2, padding=2, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(hyper, hyper, 5, stride=2, padding=2, output_padding=1), nn.ReLU(),
            nn.Conv2d(hyper, hyper, 3, padding=1))
        self.entropy_bottleneck = EntropyBottleneck(hyper)
        self.gaussian = GaussianConditional(None)
        before = 0
        self.slices = nn.ModuleList()
        for count in self.groups:
            inputs = hyper + before + (channels if cross_plane else 0)  # the previous plane's magnitudes
            self.slices.append(nn.Sequential(
                nn.Conv2d(inputs, width, 3, padding=1), nn.ReLU(),
                nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                nn.Conv2d(width, 2 * count, 3, padding=1)))
            before += count

    def latent(self, x: torch.Tensor, step: torch.Tensor | float) -> torch.Tensor:
        return torch.round(self.wavelet(x / step))[:, self.order]

    def bits(self, q: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """Bits of the quantised latent q (N, C, h, w), given the previous plane's (zeros for a first plane)."""
        h, w = q.shape[-2:]
        z = self.hyper_analysis(F.pad(q, (0, -w % 4, 0, -h % 4), mode="replicate"))
        z_hat, z_likelihoods = self.entropy_bottleneck(z)
        context = [self.hyper_synthesis(z_hat)[..., :h, :w]]
        if self.cross_plane:
            context.append(previous.abs())
        total = -torch.log2(z_likelihoods).sum()
        start = 0
        for count, net in zip(self.groups, self.slices):
            means, scales = net(torch.cat([*context, q[:, :start]], dim=1)).chunk(2, dim=1)
            likelihood = self.gaussian._likelihood(q[:, start:start + count], scales, means)
            total = total - torch.log2(self.gaussian.likelihood_lower_bound(likelihood)).sum()
            start += count
        return total

    def training_loss(self, x: torch.Tensor, previous: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        """Bits per pixel of planes x (N, 1, H, W) coded after the planes `previous` (zero for a first plane)."""
        with torch.no_grad():
            q, q_previous = self.latent(x, step), self.latent(previous, step)
        return self.bits(q, q_previous) / x.numel()

    @torch.no_grad()
    def code_scene(self, planes: torch.Tensor, step: float) -> tuple[float, torch.Tensor]:
        """(bits, decoded planes) of (K, 1, H, W) planes coded one after the other; the planes after the
        last one with a non-zero value are not coded (one count in the header says how many are)."""
        q = self.latent(planes, step)
        coded = int(q.flatten(1).any(dim=1).nonzero().max()) + 1 if q.any() else 0
        previous = torch.cat([torch.zeros_like(q[:1]), q[:-1]])
        bits = float(self.bits(q[:coded], previous[:coded])) if coded else 0.0
        return bits + 8, self.wavelet.inverse(q[:, self.unorder]) * step


class PyramidCandidate(WaveletPyramid):
    """The package's wavelet pyramid, coding a scene's planes one after the other for the bake-off."""

    @torch.no_grad()
    def code_scene(self, planes: torch.Tensor, step: float) -> tuple[float, torch.Tensor]:
        """(bits, decoded planes) of (K, 1, H, W) planes; the planes after the last one with a non-zero
        value are not coded."""
        code = self.quantise(planes, step)
        nonzero = (code[0].flatten(1) != 0).any(dim=1)
        for bands in code[1]:
            nonzero |= (bands.flatten(1) != 0).any(dim=1)
        coded = int(nonzero.nonzero().max()) + 1 if nonzero.any() else 0
        bits = 8.0
        for k in range(coded):
            plane = (code[0][k:k + 1], [b[k:k + 1] for b in code[1]])
            previous = (code[0][k - 1:k], [b[k - 1:k] for b in code[1]]) if k else self.zeros(plane)
            bits += float(self.bits(plane, previous))
        return bits, self.dequantise(code, step)


class LogInputs(nn.Module):
    """A net whose value-valued input channels are first compressed to sign(x) log2(1 + |x|): bounded
    inputs, the first requirement of an integer P (every float32 partial sum exact)."""

    def __init__(self, net: nn.Module, value_channels: list[int]) -> None:
        super().__init__()
        self.net = net
        self.value_channels = value_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        values = x[:, self.value_channels]
        x[:, self.value_channels] = torch.sign(values) * torch.log2(1 + values.abs())
        return self.net(x)


class LogPyramidCandidate(PyramidCandidate):
    """`wavelet-pyramid` with log-compressed context values (the low-pass image, the level's values so far,
    the previous plane's image and values): what bounding P's inputs costs before any integer arithmetic."""

    def __init__(self) -> None:
        super().__init__()
        first_plane = 1 + 3 + 1 + self.levels
        self.net = LogInputs(self.net, [0, 1, 2, 3, first_plane, first_plane + 1, first_plane + 2, first_plane + 3])
        self.low_net = LogInputs(self.low_net, [0, 2])


class LocalScaleInputs(nn.Module):
    """A net whose value-valued input channels are divided by a power of two of their local magnitude (the
    5 x 5 maximum of their absolute values, so the division is exact), with the exponent as one more input,
    and whose Gaussian means and scales are multiplied back: inputs and activations bounded at every step D,
    what an integer P needs, and still able to follow the values' scale."""

    def __init__(self, net: nn.Sequential, value_channels: list[int]) -> None:
        super().__init__()
        first = net[0]
        self.net = nn.Sequential(nn.Conv2d(first.in_channels + 1, first.out_channels, 3, padding=1), *list(net)[1:])
        self.value_channels = value_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = x[:, self.value_channels]
        local = F.max_pool2d(values.abs().amax(1, keepdim=True), 5, stride=1, padding=2)
        exponent = torch.ceil(torch.log2(local + 1))
        gain = torch.exp2(exponent)
        x = x.clone()
        x[:, self.value_channels] = values / gain
        means, scales = self.net(torch.cat([x, exponent / 8], dim=1)).chunk(2, dim=1)
        return torch.cat([means * gain, scales * gain], dim=1)


class LocalScaleCandidate(PyramidCandidate):
    """`wavelet-pyramid` with `LocalScaleInputs` on both nets."""

    def __init__(self) -> None:
        super().__init__()
        first_plane = 1 + 3 + 1 + self.levels
        self.net = LocalScaleInputs(self.net, [0, 1, 2, 3, first_plane, first_plane + 1, first_plane + 2,
                                               first_plane + 3])
        self.low_net = LocalScaleInputs(self.low_net, [0, 2])


CANDIDATES = {"wavelet-context": WaveletContext,
              "wavelet-pyramid-log": LogPyramidCandidate,
              "wavelet-pyramid-localscale": LocalScaleCandidate,
              "wavelet-phases": lambda: WaveletContext(phases=True),
              "wavelet-phases-hyperprior": lambda: WaveletContext(cross_plane=False, phases=True),
              "wavelet-pyramid": PyramidCandidate,
              "wavelet-pyramid-16": lambda: PyramidCandidate(width=16),
              "wavelet-pyramid-single": lambda: PyramidCandidate(cross_plane=False),
              "wavelet-hyperprior": lambda: WaveletContext(cross_plane=False)}


@dataclass
class Planes:
    name: str
    planes: np.ndarray  # (K, H, W) float32, plane units
    truncated: float  # per-pixel squared error of the components left out (same for every codec)


def split_scenes(split: str, min_size: int) -> Iterator[tuple[str, Path, str | None]]:
    """(id, file, MATLAB variable or None) of every scene of `split` in ../shared/data at least `min_size`
    pixels on each side."""
    for entry in json.loads((DATA / "manifest.json").read_text()):
        shape = entry.get("shape_hwb")
        if entry["split"] != split or shape is None or min(shape[:2]) < min_size:
            continue
        files = [DATA / f for f in entry["files"]]
        path = next((f for f in files if f.suffix == ".hdr"), files[0])
        yield entry["id"], path, entry.get("var") if str(entry.get("var", "")).isidentifier() else None


def scene_planes(split: str, min_size: int, components: int = COMPONENTS) -> list[Planes]:
    """The first `components` KLT planes of every scene of `split` at least `min_size` pixels on each side."""
    found = []
    for name, path, var in split_scenes(split, min_size):
        try:
            total = klt_planes(path, var)
        except InputError as err:  # e.g. a .mat scene stored as a 2-D matrix of spectra
            print(f"left out: {err}", flush=True)
            continue
        found.append(Planes(name, total[:components],
                            float((total[components:].astype(np.float64) ** 2).mean(axis=(1, 2)).sum())))
    return found


@torch.no_grad()
def code_planes(model: nn.Module, planes: np.ndarray, step: float) -> tuple[float, float]:
    """(bits, per-pixel squared error summed over planes) of every plane at step D (eval: rounded y)."""
    model.eval()
    k, h, w = planes.shape
    pad = 64
    x = F.pad(torch.from_numpy(planes)[:, None], (0, -w % pad, 0, -h % pad), mode="reflect")
    bits, x_hat = model.code_scene(x, step)
    x_hat = x_hat[..., :h, :w]
    error = float(((x_hat[:, 0].double() - torch.from_numpy(planes).double()) ** 2).mean(dim=(1, 2)).sum())
    model.train()
    return bits, error


def jpeg2000_curve(planes: np.ndarray) -> list[tuple[float, float]]:
    """(bits, per-pixel squared error summed over planes) of OpenJPEG at each PSNR level."""
    lo, hi = float(planes.min()), float(planes.max())
    scale = (hi - lo) / 65535
    q = np.round((planes - lo) / scale).astype(np.uint16)
    points = []
    for level in J2K_LEVELS:
        stream = imagecodecs.jpeg2k_encode(np.ascontiguousarray(q.transpose(1, 2, 0)), level=level,
                                           codecformat="j2k", planar=False, mct=False, reversible=False,
                                           numthreads=1)
        decoded = imagecodecs.jpeg2k_decode(stream).astype(np.float64).transpose(2, 0, 1) * scale + lo
        points.append((8.0 * len(stream), float(((decoded - planes) ** 2).mean(axis=(1, 2)).sum())))
    return sorted(points)


def psnr(error: float) -> float:
    return -10 * math.log10(max(error, 1e-12))


def at_bits(curve: list[tuple[float, float]], bits: float) -> float:
    """PSNR of a (bits, error) curve at `bits`, interpolated on log bits; NaN outside it."""
    xs = [math.log(b) for b, _ in curve]
    ys = [psnr(e) for _, e in curve]
    if not xs[0] <= math.log(bits) <= xs[-1]:
        return float("nan")
    return float(np.interp(math.log(bits), xs, ys))


def evaluate(model: nn.Module, scenes: list[Planes], anchors: dict[str, list], label: dict) -> list[dict]:
    """A row for every scene and D: our bpp and PSNR, OpenJPEG's PSNR at that bpp, the gap."""
    rows = []
    for scene in scenes:
        pixels = scene.planes.shape[1] * scene.planes.shape[2]
        for step in EVAL_STEPS:
            bits, error = code_planes(model, scene.planes, step)
            ours = psnr(error + scene.truncated)
            j2k = at_bits([(b, e + scene.truncated) for b, e in anchors[scene.name]], bits)
            rows.append({**label, "scene": scene.name, "step": step, "bpp": round(bits / pixels, 4),
                         "psnr": round(ours, 3), "jpeg2000_psnr": round(j2k, 3), "gap": round(ours - j2k, 3)})
    return rows


def rate_gaps(rows: list[dict]) -> dict[tuple[str, float, int], dict[float, list[float]]]:
    """For each (candidate, CPU-minutes, iterations): at each of REPORT_RATES, every scene's PSNR gap to
    OpenJPEG, interpolated on log bpp between our two nearest points (a scene whose points do not
    bracket a rate has none there)."""
    points: dict[tuple, list[tuple[float, float]]] = {}
    for row in rows:
        key = (row["candidate"], float(row["cpu_minutes"]), int(row["iterations"]), row["scene"])
        if not math.isnan(float(row["gap"])):
            points.setdefault(key, []).append((float(row["bpp"]), float(row["gap"])))
    table: dict[tuple[str, float, int], dict[float, list[float]]] = {}
    for (candidate, minutes, iterations, _), found in points.items():
        found.sort()
        log_bpp, gaps = np.log([p[0] for p in found]), [p[1] for p in found]
        per_rate = table.setdefault((candidate, minutes, iterations), {rate: [] for rate in REPORT_RATES})
        for rate in REPORT_RATES:
            if len(found) > 1 and log_bpp[0] <= math.log(rate) <= log_bpp[-1]:
                per_rate[rate].append(float(np.interp(math.log(rate), log_bpp, gaps)))
    return table


def report_lines(rows: list[dict]) -> list[str]:
    """One line per evaluation: the mean gap at each rate over the scenes that reach it (their count)."""
    lines = []
    for (candidate, minutes, iterations), per_rate in sorted(rate_gaps(rows).items()):
        cells = " / ".join(f"{np.mean(g):+.2f} ({len(g)})" if g else "n/a" for g in per_rate.values())
        lines.append(f"{candidate:26} {minutes:5.1f} CPU-min {iterations:6d} it   gap to OpenJPEG at "
                     f"{' / '.join(f'{r:g}' for r in REPORT_RATES)} bpp: {cells} dB")
    return lines


def train(name: str, args: argparse.Namespace, train_set: list[Planes], eval_set: list[Planes],
          anchors: dict[str, list], writer) -> None:
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = CANDIDATES[name]()
    main = [p for n, p in model.named_parameters() if not n.endswith(".quantiles")]
    aux = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    optimiser = torch.optim.Adam(main, lr=args.lr)
    aux_optimiser = torch.optim.Adam(aux, lr=1e-3) if aux else None  # a hyper-latent's quantiles
    state_file = args.out / f"{name}.pt"
    cpu_spent, step = 0.0, 0
    if args.resume and state_file.exists():
        state = torch.load(state_file, weights_only=True)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        for group in optimiser.param_groups:  # --lr holds on a resumed run too (e.g. a lower one to finish)
            group["lr"] = args.lr
        cpu_spent, step = state["cpu_seconds"], state["step"]
    params = sum(p.numel() for p in model.parameters())

    def save() -> None:  # after every evaluation, so that an interrupted run resumes from there
        torch.save({"model": model.state_dict(), "optimiser": optimiser.state_dict(), "cpu_seconds": cpu_spent,
                    "step": step}, state_file.with_suffix(".tmp"))
        state_file.with_suffix(".tmp").replace(state_file)

    next_eval = cpu_spent
    budget = cpu_spent + args.minutes * 60 if args.resume else args.minutes * 60
    while True:
        if cpu_spent >= next_eval:
            rows = evaluate(model, eval_set, anchors, {"candidate": name, "cpu_minutes": round(cpu_spent / 60, 2),
                                                       "iterations": step})
            writer.writerows(rows)
            print(*report_lines(rows), f"({params / 1e6:.2f} M parameters)", flush=True)
            next_eval += args.eval_every
            save()
        if cpu_spent >= budget:
            break
        started = time.process_time()
        x, previous, d = crops([p.planes for p in train_set], args.batch, args.patch, rng)
        loss = model.training_loss(x, previous, d)
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(main, 1.0)
        optimiser.step()
        if aux_optimiser is not None:
            aux_loss = next(m for m in model.modules() if isinstance(m, EntropyBottleneck)).loss()
            aux_optimiser.zero_grad()
            aux_loss.backward()
            aux_optimiser.step()
        cpu_spent += time.process_time() - started
        step += 1
    save()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--minutes", type=float, default=30.0, help="CPU-minutes of training per candidate")
    parser.add_argument("--eval-every", type=float, default=300.0, help="CPU-seconds between evaluations")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--patch", type=int, default=128, help="crop size; smaller scenes are left out")
    parser.add_argument("--train-components", type=int, default=COMPONENTS,
                        help="KLT planes of each training scene to crop from (eval: always the first 16)")
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue from OUT/<candidate>.pt")
    parser.add_argument("-o", "--out", type=Path, required=True)
    parser.add_argument("--report", nargs="*", type=Path, metavar="CURVES",
                        help="only print the table of these curves.csv files (default: OUT's)")
    args = parser.parse_args()
    if args.report is not None:
        for path in args.report or [args.out / "curves.csv"]:
            print("\n".join(report_lines(list(csv.DictReader(path.open())))))
        return
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    train_set = scene_planes("train", args.patch, args.train_components)
    eval_set = scene_planes("eval", 256)
    anchors = {s.name: jpeg2000_curve(s.planes) for s in eval_set}
    print(f"{len(train_set)} training scenes, {len(eval_set)} eval scenes", flush=True)
    fields = ["candidate", "cpu_minutes", "iterations", "scene", "step", "bpp", "psnr", "jpeg2000_psnr", "gap"]
    with (args.out / "curves.csv").open("a", newline="", buffering=1) as fh:
        writer = csv.DictWriter(fh, fields)
        if fh.tell() == 0:
            writer.writeheader()
        for name in args.candidates:
            train(name, args, train_set, eval_set, anchors, writer)


if __name__ == "__main__":
    main()
