"""The training objective: rate-targeted lambda, the HSI distortion, the conditional GAN.

    L_EG = lambda(bpp) * bpp + k_M * S * MSE + k_S * (1 - SSIM) + k_A * angle + k_P * LPIPS
           + beta * (-log D(x_hat, y_hat)) + L1 on the SE weights
    L_D  = -log(1 - D(x_hat, y_hat)) - log D(x, y_hat)

MSE is the per-band MSE of the normalised scene (S = DISTORTION_SCALE makes
40 dB weigh 1); SSIM and the spectral angle are computed on the spectral
coordinates v = offset + scale * u of each patch (the normalised bands for
the ``bands`` front-end, their KLT coordinates for ``klt``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from pytorch_msssim import ssim

from hsicodec.nn.hific import ForwardResult
from hsicodec.training.config import LossConfig, RateConfig
from hsicodec.training.patches import Batch
from hsicodec.training.perceptual import PerceptualLoss

DISTORTION_SCALE = 1e4  # per-band MSE of 1e-4 (40 dB) weighs 1


@dataclass(frozen=True)
class RateTarget:
    """lambda_a above the target bpp, lambda_b below (HiFiC, eq. 5 of the paper)."""

    target_bpp: float
    lambda_a: float = 4.0
    lambda_b: float = 0.25

    @classmethod
    def from_config(cls, rate: RateConfig) -> "RateTarget":
        return cls(rate.target_bpp, rate.lambda_a, rate.lambda_b)

    def weight(self, bpp: float) -> float:
        return self.lambda_a if bpp > self.target_bpp else self.lambda_b


def band_mse(u: torch.Tensor, u_hat: torch.Tensor) -> torch.Tensor:
    """Per-band MSE of the normalised scene, from the network planes (see hsicodec.frontend)."""
    return u.shape[1] * torch.mean((u - u_hat) ** 2)


def spectral_coordinates(u: torch.Tensor, batch: Batch) -> torch.Tensor:
    """v = offset + scale * (mixing @ u), per patch."""
    if batch.mixing is not None:
        u = torch.einsum("nkc,nchw->nkhw", batch.mixing, u)
    return batch.offset[:, :, None, None] + batch.scale[:, None, None, None] * u


def spectral_angle(v: torch.Tensor, v_hat: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """Mean spectral angle (radians) between the spectra of v and v_hat (N, C, H, W).

    Both spectra share a component `residual` (N,) (squared norm) outside the coordinates.
    """
    r = residual[:, None, None]
    dot = r + (v * v_hat).sum(dim=1)
    norms = (r + (v * v).sum(dim=1)) * (r + (v_hat * v_hat).sum(dim=1))
    cosine = dot / torch.sqrt(norms + 1e-12)
    return torch.acos(cosine.clamp(-1 + 1e-6, 1 - 1e-6)).mean()


def structural_similarity(v: torch.Tensor, v_hat: torch.Tensor) -> torch.Tensor:
    """Mean SSIM over channels and patches (Gaussian window 11, sigma 1.5, data range 1)."""
    return ssim(v_hat, v, data_range=1.0, size_average=True)


def generator_gan_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating: -log D(x_hat)."""
    return F.softplus(-fake_logits).mean()


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-log D(x) - log(1 - D(x_hat))."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


@dataclass
class LossTerms:
    total: torch.Tensor
    bpp: torch.Tensor
    mse: torch.Tensor
    ssim: torch.Tensor
    angle: torch.Tensor
    perceptual: torch.Tensor
    gan: torch.Tensor

    def log(self) -> dict[str, float]:
        return {name: float(getattr(self, name).detach()) for name in
                ("total", "bpp", "mse", "ssim", "angle", "perceptual", "gan")}


class Objective:
    """The encoder/generator loss of one configuration; `gan_logits` is given in stage 2 only."""

    def __init__(self, rate: RateConfig, loss: LossConfig) -> None:
        self.target = RateTarget.from_config(rate)
        self.weights = loss
        self.perceptual = PerceptualLoss.from_file(loss.perceptual_weights) if loss.perceptual > 0 else None

    def to(self, device: torch.device) -> "Objective":
        if self.perceptual is not None:
            self.perceptual.to(device)
        return self

    def __call__(self, batch: Batch, out: ForwardResult, se_l1: torch.Tensor,
                 gan_logits: torch.Tensor | None = None) -> LossTerms:
        w = self.weights
        u, u_hat = batch.planes, out.x_hat
        pixels = u.shape[0] * u.shape[2] * u.shape[3]
        bpp = out.bits() / pixels
        mse = band_mse(u, u_hat)
        v, v_hat = spectral_coordinates(u, batch), spectral_coordinates(u_hat, batch)
        zero = torch.zeros((), device=u.device)
        similarity = structural_similarity(v, v_hat) if w.ssim else zero + 1
        angle = spectral_angle(v, v_hat, batch.residual) if w.angle else zero
        perceptual = self.perceptual(v, v_hat) if self.perceptual is not None else zero
        gan = generator_gan_loss(gan_logits) if gan_logits is not None else zero
        total = (self.target.weight(bpp.item()) * bpp + w.mse * DISTORTION_SCALE * mse + w.ssim * (1 - similarity)
                 + w.angle * angle + w.perceptual * perceptual + w.gan * gan + w.se_l1 * se_l1)
        return LossTerms(total, bpp, mse, similarity, angle, perceptual, gan)
