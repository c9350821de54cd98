"""Rate-distortion objective of the MSE stage (HiFiC's rate-targeted lambda)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from hsicodec.nn.hific import ForwardResult


@dataclass(frozen=True)
class RateTarget:
    """lambda_a above the target bpp, lambda_b below (HiFiC, eq. 5 of the paper)."""

    target_bpp: float
    lambda_a: float = 4.0
    lambda_b: float = 0.25

    def weight(self, bpp: float) -> float:
        return self.lambda_a if bpp > self.target_bpp else self.lambda_b


DISTORTION_SCALE = 1e4  # per-band MSE of 1e-4 (40 dB) weighs 1


def band_mse(u: torch.Tensor, u_hat: torch.Tensor) -> torch.Tensor:
    """Per-band MSE of the normalised scene, from KLT component planes (see hsicodec.klt)."""
    return u.shape[1] * torch.mean((u - u_hat) ** 2)


@dataclass
class LossTerms:
    total: torch.Tensor
    bpp: torch.Tensor
    mse: torch.Tensor


def rate_distortion_loss(u: torch.Tensor, out: ForwardResult, target: RateTarget, se_l1: torch.Tensor,
                         se_weight: float = 1e-5) -> LossTerms:
    """lambda(bpp) * bpp + scaled per-band MSE (+ L1 on SE weights for HiFiCSE)."""
    pixels = u.shape[0] * u.shape[2] * u.shape[3]
    bpp = out.bits() / pixels
    mse = band_mse(u, out.x_hat)
    total = target.weight(bpp.item()) * bpp + DISTORTION_SCALE * mse + se_weight * se_l1
    return LossTerms(total, bpp, mse)
