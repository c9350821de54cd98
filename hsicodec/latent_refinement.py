"""Encoder-side latent refinement: a tile's y tuned through the fixed G before it is coded.

E is trained to code every patch well on average; for one tile, a few gradient
steps on y through G (with y rounded as it is coded, straight-through) find a
latent that G rebuilds better (the amortisation gap of Campos et al. 2019 and
Yang et al. 2020). The hyper-latent z, and with it the means and scales of y,
stay as E gave them, so the decoder and the file format do not change. A
Lagrange multiplier on the estimated bits of y, raised while they exceed those
of E's y and lowered while they are below, holds the rate, and the iterate
kept is the one of least error among those within E's bits: refinement never
raises the estimated rate and never the error. The error is the squared error
of the planes that reach the scene (a group's own planes, rows the file
stores), inside the tile.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from hsicodec.latent_coding import Analysis, LatentCoder
from hsicodec.nn.hific import ste_round

REFINE_ITERATIONS = 20
"""Default iterations; what they buy and cost: `python benchmarks/rate_choices.py --without refine`."""
LEARNING_RATE = 0.02
"""Adam's step on y, whose trained quantisation step is 1. Adam's first steps move every value of y by
about this much; at 0.05, so many values crossed a rounding boundary at once on the low-rate rungs that
no iterate stayed within E's bits (no gain on hificse-klt16-0.2; 0.2 to 0.7 dB at 0.02)."""
INITIAL_MULTIPLIER = 0.5
"""The rate multiplier's start: above 0, the first iterates save bits, so the search starts within E's."""
MULTIPLIER_RATE = 1.0
"""How fast the rate multiplier follows the relative excess (or shortfall) of bits. At 0.5 the multiplier
lagged and fewer iterates stayed within E's bits: 0.23 to 0.34 dB less at 0.2 and 0.4 bpp over 20
iterations on hificse-klt16-1.0 (`benchmarks/rate_choices.py --without refine`); 2.0 did no better than 1.0."""


@dataclasses.dataclass
class Refined:
    """A refined analysis and what it changed, as estimated by the model."""

    latents: Analysis
    error_before: float
    error_after: float
    bits_before: float
    bits_after: float


def refine(coder: LatentCoder, latents: Analysis, planes: np.ndarray, weights: np.ndarray, step: float,
           iterations: int = REFINE_ITERATIONS, crop: tuple[int, int] | None = None) -> Refined:
    """`latents` of `planes` (C, H, W), E's input, with y refined for latent step `step`.

    `weights` (C,) says how much each plane's error counts (0: it never reaches the scene);
    `crop` (h, w) limits the error to the tile inside its padding.
    """
    device = coder.device
    h, w = crop or planes.shape[1:]
    target = torch.from_numpy(planes[:, :h, :w]).to(device)
    weight = torch.from_numpy(weights.astype(np.float32)).to(device)[:, None, None]
    means = torch.from_numpy(latents.means).float().to(device)
    scales = torch.from_numpy(latents.scales / step).float().to(device)
    conditional = coder.model.hyperprior.gaussian_conditional

    def error_and_bits(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        symbols = ste_round((y - means) / step)
        rebuilt = coder.model.generator((symbols * step + means)[None])[0, :, :h, :w]
        error = (weight * (rebuilt - target) ** 2).sum()
        bits = -torch.log2(conditional._likelihood(symbols, scales).clamp_min(1e-9)).sum()
        return error, bits

    y = torch.from_numpy(latents.y).float().to(device).requires_grad_(True)
    with torch.enable_grad():
        error, bits = error_and_bits(y)
        error0, bits0 = error.item(), bits.item()
        best, best_error, best_bits = latents.y, error0, bits0
        if error0 == 0 or iterations == 0:
            return Refined(latents, error0, error0, bits0, bits0)
        optimiser = torch.optim.Adam([y], lr=LEARNING_RATE)
        multiplier = INITIAL_MULTIPLIER
        for _ in range(iterations):
            loss = error / error0 + multiplier * bits / bits0
            (grad,) = torch.autograd.grad(loss, [y])
            y.grad = grad
            optimiser.step()
            error, bits = error_and_bits(y)
            if bits.item() <= bits0 and error.item() < best_error:
                best, best_error, best_bits = y.detach().double().cpu().numpy(), error.item(), bits.item()
            multiplier = max(0.0, multiplier + MULTIPLIER_RATE * (bits.item() / bits0 - 1))
    return Refined(dataclasses.replace(latents, y=best), error0, best_error, bits0, best_bits)
