"""Channel-attention analysis: the SE weights a model gives a real scene, and its parameter counts.

HiFiCSE puts a squeeze-and-excitation block after normalisations of E and G; each
scales its C feature maps by weights in (0, 1) computed from the input. `se_weights`
runs a model once on a scene's network planes and collects those weights per block;
`plot_se_weights` draws them (one bar panel per block) into a PNG; `parameter_counts`
gives the sizes of E, P, G and of the training-only discriminator D.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hsicodec.codec import pad_to_stride
from hsicodec.errors import InputError
from hsicodec.io.atomic import staged
from hsicodec.nn.hific import Discriminator, HiFiC, parameter_count
from hsicodec.nn.layers import SEBlock

LOW_WEIGHT = 0.5  # a channel below it is counted as suppressed


@dataclass
class LayerWeights:
    """The mean excitation of one SE block over the batch."""

    name: str  # module path, e.g. 'encoder.layers.2'
    part: str  # 'encoder' or 'generator'
    weights: np.ndarray  # (C,) float32 in (0, 1)

    @property
    def channels(self) -> int:
        return int(self.weights.shape[0])

    def summary(self) -> dict:
        """channels, mean, min, max and the number of channels below LOW_WEIGHT."""
        w = self.weights
        return {"channels": self.channels, "mean": float(w.mean()), "min": float(w.min()), "max": float(w.max()),
                "below_half": int((w < LOW_WEIGHT).sum())}


def _named_se_blocks(model: HiFiC) -> list[tuple[str, SEBlock]]:
    """SE blocks with their module paths, in network order (E, then G)."""
    return [(name, module) for name, module in model.named_modules() if isinstance(module, SEBlock)]


def se_weights(model: HiFiC, planes: np.ndarray) -> list[LayerWeights]:
    """Run `model` once on planes (C, H, W), padded to the stride; each SE block's weights, in network order.

    A model without SE blocks returns [] (it is still run, so a bad input fails the same way).
    """
    if planes.ndim != 3 or planes.shape[0] != model.config.in_channels:
        raise InputError(f"the model takes {model.config.in_channels} planes (C, H, W); got shape {planes.shape}")
    blocks = _named_se_blocks(model)
    for _, block in blocks:
        block.last_weights = None  # nothing stale from an earlier run
    device = next(model.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(pad_to_stride(planes), dtype=np.float32))[None].to(device)
    with torch.inference_mode():
        model(x)
    layers = []
    for name, block in blocks:
        if block.last_weights is None:
            raise RuntimeError(f"SE block {name} was not run by the model's forward pass")
        weights = block.last_weights.float().mean(dim=0).cpu().numpy()
        layers.append(LayerWeights(name, name.split(".", 1)[0], weights))
    return layers


def parameter_counts(model: HiFiC) -> dict[str, int]:
    """Parameters of encoder, hyperprior, generator, discriminator (a fresh D of the model's config)
    and total = E + P + G (what a checkpoint holds; D is used in training only)."""
    counts = {"encoder": parameter_count(model.encoder), "hyperprior": parameter_count(model.hyperprior),
              "generator": parameter_count(model.generator),
              "discriminator": parameter_count(Discriminator(model.config))}
    counts["total"] = counts["encoder"] + counts["hyperprior"] + counts["generator"]
    return counts


def plot_se_weights(layers: list[LayerWeights], path: Path, title: str) -> None:
    """A PNG of the weights: one bar panel per layer (x = channel, y = weight in [0, 1]).

    Encoder layers fill the left column and generator layers the right one. Drawn on
    an Agg canvas of its own (no pyplot state) and written atomically: a failure
    leaves neither a half-written PNG nor a temporary file.
    """
    if not layers:
        raise ValueError("no SE layers to plot")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    parts = [p for p in ("encoder", "generator") if any(layer.part == p for layer in layers)]
    parts += sorted({layer.part for layer in layers} - set(parts))
    columns = [[layer for layer in layers if layer.part == part] for part in parts]
    rows = max(len(column) for column in columns)
    fig = Figure(figsize=(6.5 * len(columns), 1.45 * rows + 1.0), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, len(columns), squeeze=False)
    for col, (part, column) in enumerate(zip(parts, columns)):
        for row in range(rows):
            ax = axes[row][col]
            if row >= len(column):
                ax.set_visible(False)
                continue
            layer = column[row]
            s = layer.summary()
            w = layer.weights
            colours = np.where(w < LOW_WEIGHT, "tab:orange", "tab:blue")
            ax.bar(np.arange(layer.channels), w, width=0.85, color=colours)
            ax.axhline(LOW_WEIGHT, color="0.4", linestyle="--", linewidth=0.8)
            ax.set_ylim(0, 1)
            ax.set_xlim(-0.75, layer.channels - 0.25)
            ax.set_yticks([0, 0.5, 1])
            ax.tick_params(labelsize=7)
            ax.set_title(f"{layer.name}: {s['channels']} ch, mean {s['mean']:.2f}, "
                         f"{s['below_half']} below {LOW_WEIGHT:g}", fontsize=8, loc="left")
            ax.set_ylabel("weight", fontsize=8)
            if row == len(column) - 1:
                ax.set_xlabel(f"{part} channel index", fontsize=8)
    fig.suptitle(f"{title}\norange: channels scaled by less than {LOW_WEIGHT:g} (dashed line)", fontsize=10)

    with staged() as staging, staging.temp(Path(path)).open("wb") as fh:
        fig.savefig(fh, format="png", dpi=110)
