"""Rate-distortion benchmark: hsicodec against classical anchors, at matched rates.

Every scene is compressed as `compress -r RATE` does at a grid of rates (bpp
counts every byte of the .hsic file); it is also coded with each of
`baselines.ANCHORS` (band-wise JPEG 2000, PCA + JPEG 2000, PCA + JPEG XL,
3-D SPERR) at those rates. Gaps are taken at matched bpp: a baseline's PSNR (or spectral
angle) is interpolated, linearly in log(bpp), at the rate the model reached,
between baseline points above the scene's floor: each band sent as its mean.
Scenes are read whole (the baselines need the cube in memory).
"""
from __future__ import annotations

import csv
import itertools
import math
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from hsicodec.baselines import ANCHORS
from hsicodec.checkpoints import ModelEntry
from hsicodec.codec import compress_scene, nodata_mask
from hsicodec.container import rate_figures
from hsicodec.io import SceneReader
from hsicodec.atomic import staged
from hsicodec.metrics import quality
from hsicodec.plane_coding import PlaneCoder
from hsicodec.verify import verify_file

RATE_CONTROLLED = "hsicodec -r"
BAND_MEANS = "band means"
"""A scene's quality floor: every band sent as its mean over the valid samples (32 bits a band). A baseline
point below it is that codec failing at its rate (band-wise JPEG 2000 decodes a band it had no room for to
mid-grey), not a quality to beat, so gaps are not taken against it, nor against one within FLOOR_MARGIN_DB
of it (PCA + JPEG 2000 with no component left sends the band means, at the cost of its header)."""
FLOOR_MARGIN_DB = 0.01
BRACKET_FACTORS = (0.97, 0.9)
"""A baseline lands a little off the rate asked. Where its curve then has no point below (above) a rate of
ours, it is coded again at that rate times (over) these factors in turn, until it has."""


def is_ours(method: str) -> bool:
    """Whether a report's method is one of ours (`hsicodec -r` or `NAME -r`)."""
    return method not in ANCHORS and method != BAND_MEANS


CURVE_COLOURS = {RATE_CONTROLLED: "black", "JPEG 2000": "tab:red", "PCA + JPEG 2000": "tab:purple",
                 "PCA + JPEG XL": "tab:green", "3-D SPERR": "tab:orange", BAND_MEANS: "0.35"}
"""The plots' colour of each curve a report usually has; any other (`-m NAME -r`) takes one of SPARE_COLOURS."""
SPARE_COLOURS = ("tab:cyan", "tab:brown", "tab:pink", "tab:olive", "tab:gray")
FLOOR = "band means (floor)"


@dataclass(frozen=True)
class Point:
    """One coded version of one scene."""

    scene: str
    method: str  # a model name (at its own rate), RATE_CONTROLLED or a baseline
    model: str  # the model that coded it ("" for a baseline)
    target_bpp: float
    bpp: float
    psnr: float
    ssim: float
    sam: float


def model_point(reader: SceneReader, name: str, entry: ModelEntry, coder: PlaneCoder, rate: float,
                method: str) -> Point:
    """Compress the scene with a model to `rate` bpp in a temporary .hsic, decode it and measure."""
    with tempfile.TemporaryDirectory() as tmp:
        packed = Path(tmp) / "scene.hsic"
        compress_scene(reader, packed, entry, coder, rate)
        figures = rate_figures(packed.stat().st_size, reader.shape, reader.storage_bytes)
        measured = verify_file(packed, reader, coder)
    return Point(name, method, entry.name, rate, figures["bpp"], measured["psnr"], measured["ssim"],
                 measured["sam"])


def baseline_points(name: str, cube: np.ndarray, rates: list[float], nodata: float | None,
                    our_rates: list[float] = ()) -> list[Point]:
    """Both baselines at each rate, and again where needed so that each curve has a point on both sides
    of every rate in `our_rates` (`bracketing_rates`); nodata samples are coded as their band's mean and
    not measured."""
    points = []
    filled = _filled(cube, nodata)
    for method, code in ANCHORS.items():
        curve = [_baseline_point(name, method, code, cube, filled, rate, nodata) for rate in rates]
        for factor in BRACKET_FACTORS:
            curve += [_baseline_point(name, method, code, cube, filled, rate, nodata)
                      for rate in bracketing_rates([p.bpp for p in curve], our_rates, factor)]
        points += curve
    return points


def band_means_point(name: str, cube: np.ndarray, nodata: float | None) -> Point:
    """The scene's floor (`BAND_MEANS`): each band's mean over its valid samples, nodata samples kept as
    they are."""
    mask = nodata_mask(cube, nodata)
    valid = np.ones(cube.shape, bool) if mask is None else ~mask
    rebuilt = np.where(valid, _band_means(cube, valid), cube.astype(np.float64))
    measured = quality(cube, rebuilt, nodata)
    bpp = 32 * cube.shape[2] / (cube.shape[0] * cube.shape[1])
    return Point(name, BAND_MEANS, "", bpp, bpp, measured["psnr"], measured["ssim"], measured["sam"])


def _band_means(cube: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Each band's mean over its `valid` samples (0 for a band with none)."""
    counts = valid.sum(axis=(0, 1))
    sums = np.where(valid, cube, 0).astype(np.float64).sum(axis=(0, 1))
    return np.divide(sums, counts, out=np.zeros(cube.shape[2]), where=counts > 0)


def _baseline_point(name: str, method: str, code: Callable, cube: np.ndarray, filled: np.ndarray, rate: float,
                    nodata: float | None) -> Point:
    result = code(filled, rate)
    measured = quality(cube, result.reconstruction, nodata)
    return Point(name, method, "", rate, result.bpp, measured["psnr"], measured["ssim"], measured["sam"])


def bracketing_rates(curve_rates: list[float], our_rates: list[float], factor: float) -> list[float]:
    """Rates to code a baseline at so that its curve (the rates its points reached) spans each of ours:
    `factor` times each rate of ours below the curve's lowest point, each above its highest over `factor`."""
    if not curve_rates:
        return []
    low, high = min(curve_rates), max(curve_rates)
    below = {round(r * factor, 4) for r in our_rates if r < low}
    above = {round(r / factor, 4) for r in our_rates if r > high}
    return sorted(below | above)


def _filled(cube: np.ndarray, nodata: float | None) -> np.ndarray:
    """The cube with nodata samples replaced by their band's mean (as the codec's front-end does)."""
    mask = nodata_mask(cube, nodata)
    if mask is None:
        return cube
    filled = np.where(mask, _band_means(cube, ~mask), cube.astype(np.float64))
    if cube.dtype.kind in "iu":
        filled = np.rint(filled)
    return filled.astype(cube.dtype)


def at_rate(points: list[Point], bpp: float, metric: str) -> float:
    """A curve's metric at `bpp`, linear in log(bpp) between its points; NaN outside its range."""
    curve = sorted((p.bpp, getattr(p, metric)) for p in points)
    rates = [math.log(b) for b, _ in curve]
    if not curve or not rates[0] <= math.log(bpp) <= rates[-1]:
        return float("nan")
    return float(np.interp(math.log(bpp), rates, [v for _, v in curve]))


def write_csv(points: list[Point], path: Path) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, [f.name for f in fields(Point)])
        writer.writeheader()
        writer.writerows(asdict(p) for p in points)


def read_csv(path: Path) -> list[Point]:
    """The points of a results.csv written by write_csv."""
    with path.open(newline="") as fh:
        return [Point(r["scene"], r["method"], r["model"], *(float(r[k]) for k in ("target_bpp", "bpp", "psnr",
                                                                                  "ssim", "sam")))
                for r in csv.DictReader(fh)]


def ours(points: list[Point]) -> list[tuple[str, float]]:
    """(method, target bpp) of every row of ours: the `hsicodec -r` rows by rate, then each named model's."""
    keys = {(p.method, p.target_bpp) for p in points if is_ours(p.method)}
    return sorted(keys, key=lambda k: (k[0] != RATE_CONTROLLED, k[0], k[1]))


def gaps(points: list[Point]) -> list[dict]:
    """Per row of ours: mean bpp, PSNR, SAM over scenes, and the mean gaps to each baseline at matched bpp,
    against its points more than FLOOR_MARGIN_DB above the scene's band-means floor where the points
    include it."""
    usable = _usable_baselines(points)
    rows = []
    for method, target in ours(points):
        coded = [p for p in points if (p.method, p.target_bpp) == (method, target)]
        row = {"method": method, "models": ", ".join(sorted({p.model for p in coded})), "target_bpp": target,
               "scenes": len(coded), "bpp": np.mean([p.bpp for p in coded]),
               "psnr": np.mean([p.psnr for p in coded]), "sam": np.mean([p.sam for p in coded])}
        for baseline in ANCHORS:
            curves = [usable.get((p.scene, baseline), []) for p in coded]
            psnr_gap = [p.psnr - at_rate(curve, p.bpp, "psnr") for p, curve in zip(coded, curves)]
            sam_gap = [p.sam - at_rate(curve, p.bpp, "sam") for p, curve in zip(coded, curves)]
            matched = [g for g in psnr_gap if not math.isnan(g)]
            row[f"dPSNR vs {baseline}"] = float(np.mean(matched)) if matched else float("nan")
            row[f"dSAM vs {baseline}"] = float(np.nanmean(sam_gap)) if matched else float("nan")
            row[f"matched vs {baseline}"] = len(matched)
        rows.append(row)
    return rows


def _usable_baselines(points: list[Point]) -> dict[tuple[str, str], list[Point]]:
    """Each scene's baseline points, by (scene, baseline), that are more than FLOOR_MARGIN_DB above its
    band-means floor (all of them for a scene without one)."""
    floors = {p.scene: p.psnr for p in points if p.method == BAND_MEANS}
    usable: dict[tuple[str, str], list[Point]] = {}
    for p in points:
        if p.method in ANCHORS and p.psnr > floors.get(p.scene, -math.inf) + FLOOR_MARGIN_DB:
            usable.setdefault((p.scene, p.method), []).append(p)
    return usable


def _curve(points: list[Point], scene: str, method: str) -> list[Point]:
    return [p for p in points if p.scene == scene and p.method == method]


def summary_table(rows: list[dict]) -> str:
    """The Markdown table of `gaps` rows: mean figures and gaps to each baseline per row of ours."""
    baselines = list(ANCHORS)
    head = ["method", "model", "target bpp", "scenes", "mean bpp", "PSNR dB", "SAM deg",
            *[f"ΔPSNR vs {b}" for b in baselines], *[f"ΔSAM vs {b}" for b in baselines]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["method"], r["models"], f"{r['target_bpp']:g}", f"{r['scenes']}", f"{r['bpp']:.3f}",
                 f"{r['psnr']:.2f}", f"{r['sam']:.2f}"]
        cells += [_signed(r[f"dPSNR vs {b}"], r[f"matched vs {b}"], r["scenes"]) for b in baselines]
        cells += [_signed(r[f"dSAM vs {b}"], r[f"matched vs {b}"], r["scenes"]) for b in baselines]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def markdown(rows: list[dict], points: list[Point]) -> str:
    """The summary table and the per-scene table."""
    lines = ["| scene | method | model | target bpp | bpp | PSNR dB | SSIM | SAM deg |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for p in sorted(points, key=lambda p: (p.scene, p.method, p.bpp)):
        lines.append(f"| {p.scene} | {p.method} | {p.model} | {p.target_bpp:g} | {p.bpp:.3f} | {p.psnr:.2f} "
                     f"| {p.ssim:.4f} | {p.sam:.2f} |")
    return summary_table(rows) + "\n" + "\n".join(lines) + "\n"


def _signed(value: float, matched: int, scenes: int) -> str:
    if math.isnan(value):
        return "n/a"
    note = "" if matched == scenes else f" ({matched}/{scenes})"
    return f"{value:+.2f}{note}"


def plot_styles(methods: Iterable[str]) -> dict[str, dict]:
    """Matplotlib line arguments per method, the same in every panel: each curve (ours, or a baseline,
    dashed) in a colour of its own, `hsicodec -r` wide; the band-means floor a dotted line across."""
    spare = itertools.cycle(SPARE_COLOURS)
    styles = {}
    for method in sorted(set(methods)):
        if method == BAND_MEANS:
            styles[method] = {"color": CURVE_COLOURS[BAND_MEANS], "linestyle": ":", "linewidth": 1.0,
                              "label": FLOOR, "zorder": 0}
        else:
            styles[method] = {"color": CURVE_COLOURS.get(method) or next(spare), "marker": "o", "markersize": 3,
                              "linestyle": "--" if method in ANCHORS else "-", "label": method,
                              "linewidth": 3.0 if method == RATE_CONTROLLED else 1.3,
                              "zorder": 2 if method == RATE_CONTROLLED else 3}
    return styles


def plot(points: list[Point], metric: str, path: Path) -> None:
    """One panel per scene: `metric` against bpp, one curve per method and one legend; written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    scenes = sorted({p.scene for p in points})
    styles = plot_styles(p.method for p in points)
    columns = min(4, len(scenes))
    rows = math.ceil(len(scenes) / columns)
    figure = Figure(figsize=(4.2 * columns, 3.4 * rows + 0.8), layout="constrained")
    FigureCanvasAgg(figure)
    label = {"psnr": "PSNR (dB)", "sam": "spectral angle (deg)"}[metric]
    legend: dict[str, object] = {}
    for i, scene in enumerate(scenes):
        axes = figure.add_subplot(rows, columns, i + 1)
        for method in sorted({p.method for p in points if p.scene == scene}):
            curve = sorted(_curve(points, scene, method), key=lambda p: p.bpp)
            if method == BAND_MEANS:
                line = axes.axhline(getattr(curve[0], metric), **styles[method])
            else:
                [line] = axes.plot([p.bpp for p in curve], [getattr(p, metric) for p in curve], **styles[method])
            legend.setdefault(styles[method]["label"], line)
        axes.set_xscale("log")
        axes.xaxis.set_major_formatter(ScalarFormatter())
        axes.xaxis.set_minor_formatter(NullFormatter())
        axes.set_title(scene, fontsize=9)
        axes.set_xlabel("bpp (every byte of the file)")
        axes.set_ylabel(label)
        axes.grid(True, alpha=0.3)
    order = sorted(legend, key=lambda name: (name == FLOOR, name in ANCHORS,
                                             name != RATE_CONTROLLED, name))
    figure.legend([legend[name] for name in order], order, loc="outside lower center", ncols=min(4, len(order)),
                  fontsize=8)
    with staged() as staging, staging.temp(path).open("wb") as fh:
        figure.savefig(fh, format="png", dpi=110)
