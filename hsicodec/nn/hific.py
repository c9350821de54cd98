"""HiFiC (Mentzer et al. 2020) adapted to hyperspectral images, with the paper's variants.

``arch`` selects the variant:
- ``hific``: plain HiFiC (HiFiC-opt when trained with the HSI distortion loss);
- ``hificse``: squeeze-and-excitation blocks after every normalisation of E and G;
- ``hific3d``: the first conv of E and the last conv of G are 3D convs over the
  spectral (or KLT component) axis.

The placements of the paper's Table 2 are configuration: ``se_placement``
(``encoder_first``, ``encoder``, ``encoder_generator``) and ``spectral_placement``
(``ends``: E initial + G final; ``all``: also a 3D conv over the feature volume
after every stage of E and G).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from hsicodec._compressai import EntropyBottleneck, GaussianConditional
from hsicodec.nn.layers import ChannelNorm2d, ResidualBlock, SEBlock, SpectralConvIn, SpectralConvOut, SpectralMix

ARCHS = ("hific", "hificse", "hific3d")
SE_PLACEMENTS = ("encoder_first", "encoder", "encoder_generator")
SPECTRAL_PLACEMENTS = ("ends", "all")
SCALE_TABLE = torch.exp(torch.linspace(math.log(0.11), math.log(256.0), 64))


@dataclass(frozen=True)
class HificConfig:
    """Widths and variant of a HiFiC-family network."""

    arch: str = "hific"
    in_channels: int = 16
    widths: tuple[int, ...] = (24, 32, 48, 64, 96)  # E: first conv, then 4 stride-2 stages
    latent_channels: int = 64
    hyper_channels: int = 64
    residual_blocks: int = 3
    se_reduction: int = 2
    spectral_features: int = 4  # 3D variant: feature maps per spectral plane
    spectral_kernel: int = 3
    signal_gain: float = 10.0  # input planes are multiplied by it in E and divided by it after G
    se_placement: str = "encoder_generator"  # hificse: where the SE blocks go
    spectral_placement: str = "ends"  # hific3d: where the 3D convs go
    discriminator_widths: tuple[int, ...] = (32, 64, 128, 256)

    def __post_init__(self) -> None:
        for value, allowed, what in ((self.arch, ARCHS, "arch"), (self.se_placement, SE_PLACEMENTS, "se_placement"),
                                     (self.spectral_placement, SPECTRAL_PLACEMENTS, "spectral_placement")):
            if value not in allowed:
                raise ValueError(f"unknown {what} {value!r}; expected one of {allowed}")
        if len(self.widths) != 5:
            raise ValueError(f"widths must give 5 values (first conv, then 4 stages), got {len(self.widths)}")
        object.__setattr__(self, "widths", tuple(self.widths))
        object.__setattr__(self, "discriminator_widths", tuple(self.discriminator_widths))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "HificConfig":
        return cls(**data)


SIZES = {
    # HiFiC's published widths (Mentzer et al. 2020): E 60-120-240-480-960, y 220, z 320, 9 residual blocks, D 64-512
    "paper": {"widths": (60, 120, 240, 480, 960), "latent_channels": 220, "hyper_channels": 320,
              "residual_blocks": 9, "discriminator_widths": (64, 128, 256, 512)},
    # trains on a laptop CPU; the shipped checkpoints use it
    "small": {"widths": (24, 32, 48, 64, 96), "latent_channels": 64, "hyper_channels": 64,
              "residual_blocks": 3, "discriminator_widths": (32, 64, 128, 256)},
    # for tests and smoke runs
    "tiny": {"widths": (8, 12, 16, 16, 24), "latent_channels": 16, "hyper_channels": 16,
             "residual_blocks": 1, "discriminator_widths": (8, 16, 16, 32)},
}


def _se_here(cfg: HificConfig, place: str) -> bool:
    """Whether an SE block follows the normalisation at `place` (encoder_first, encoder or generator)."""
    if cfg.arch != "hificse":
        return False
    allowed = {"encoder_first": ("encoder_first",), "encoder": ("encoder_first", "encoder"),
               "encoder_generator": ("encoder_first", "encoder", "generator")}[cfg.se_placement]
    return place in allowed


def _norm_block(cfg: HificConfig, channels: int, place: str) -> list[nn.Module]:
    """Channel norm, followed by an SE block where the HiFiCSE placement puts one."""
    layers: list[nn.Module] = [ChannelNorm2d(channels)]
    if _se_here(cfg, place):
        layers.append(SEBlock(channels, cfg.se_reduction))
    return layers


def _spectral_mix(cfg: HificConfig) -> list[nn.Module]:
    """A 3D conv over the feature volume after a stage, in HiFiC3D's `all` placement."""
    return [SpectralMix()] if cfg.arch == "hific3d" and cfg.spectral_placement == "all" else []


class Encoder(nn.Module):
    """E: image (N, C, H, W) -> latent y (N, latent, H/16, W/16)."""

    def __init__(self, cfg: HificConfig) -> None:
        super().__init__()
        if cfg.arch == "hific3d":
            first: nn.Module = SpectralConvIn(cfg.spectral_features, cfg.spectral_kernel)
            channels = cfg.spectral_features * cfg.in_channels
        else:
            first = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(cfg.in_channels, cfg.widths[0], 7))
            channels = cfg.widths[0]
        layers = [first, *_norm_block(cfg, channels, "encoder_first"), nn.ReLU(inplace=True)]
        for width in cfg.widths[1:]:
            layers += [
                nn.ReflectionPad2d(1),
                nn.Conv2d(channels, width, 3, stride=2),
                *_norm_block(cfg, width, "encoder"),
                nn.ReLU(inplace=True),
                *_spectral_mix(cfg),
            ]
            channels = width
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, cfg.latent_channels, 3)]
        self.layers = nn.Sequential(*layers)

        self.gain = cfg.signal_gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x * self.gain)


class Generator(nn.Module):
    """G: quantised latent (N, latent, h, w) -> image (N, C, 16h, 16w)."""

    def __init__(self, cfg: HificConfig) -> None:
        super().__init__()
        channels = cfg.widths[-1]
        self.head = nn.Sequential(
            ChannelNorm2d(cfg.latent_channels),
            nn.ReflectionPad2d(1),
            nn.Conv2d(cfg.latent_channels, channels, 3),
            *_norm_block(cfg, channels, "generator"),
        )
        self.residual = nn.Sequential(
            *[
                ResidualBlock(channels, SEBlock(channels, cfg.se_reduction) if _se_here(cfg, "generator") else None)
                for _ in range(cfg.residual_blocks)
            ]
        )
        up_widths = list(reversed(cfg.widths[:-1]))
        if cfg.arch == "hific3d":
            up_widths[-1] = cfg.spectral_features * cfg.in_channels
        ups: list[nn.Module] = []
        for width in up_widths:
            ups += [
                nn.ConvTranspose2d(channels, width, 3, stride=2, padding=1, output_padding=1),
                *_norm_block(cfg, width, "generator"),
                nn.ReLU(inplace=True),
                *_spectral_mix(cfg),
            ]
            channels = width
        if cfg.arch == "hific3d":
            ups.append(SpectralConvOut(cfg.spectral_features, cfg.spectral_kernel))
        else:
            ups += [nn.ReflectionPad2d(3), nn.Conv2d(channels, cfg.in_channels, 7)]
        self.upsample = nn.Sequential(*ups)
        self.gain = cfg.signal_gain

    def forward(self, y_hat: torch.Tensor) -> torch.Tensor:
        x = self.head(y_hat)
        x = x + self.residual(x)
        return self.upsample(x) / self.gain


class Hyperprior(nn.Module):
    """P: mean-scale hyperprior; z has a factorised prior, y a Gaussian conditional."""

    def __init__(self, cfg: HificConfig) -> None:
        super().__init__()
        n, m = cfg.latent_channels, cfg.hyper_channels
        self.analysis = nn.Sequential(
            nn.Conv2d(n, m, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(m, m, 5, stride=2, padding=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(m, m, 5, stride=2, padding=2),
        )
        self.synthesis = nn.Sequential(
            nn.ConvTranspose2d(m, m, 5, stride=2, padding=2, output_padding=1),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(m, m * 3 // 2, 5, stride=2, padding=2, output_padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(m * 3 // 2, 2 * n, 3, padding=1),
        )
        self.entropy_bottleneck = EntropyBottleneck(m)
        self.gaussian_conditional = GaussianConditional(None)

    STRIDE = 4

    def analyse(self, y: torch.Tensor) -> torch.Tensor:
        """y -> z; y is replicate-padded to a multiple of the hyper stride first."""
        h, w = y.shape[-2:]
        pad_h, pad_w = -h % self.STRIDE, -w % self.STRIDE
        return self.analysis(F.pad(y, (0, pad_w, 0, pad_h), mode="replicate"))

    def synthesise(self, z_hat: torch.Tensor, latent_hw: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """z_hat -> (means, scales) of y, cropped to the latent's size."""
        params = self.synthesis(z_hat)[..., : latent_hw[0], : latent_hw[1]]
        means, scales = params.chunk(2, dim=1)
        return means, scales

    def update_tables(self) -> None:
        """Bake the integer CDF tables of both entropy models (call before saving)."""
        self.entropy_bottleneck.update(force=True)
        self.gaussian_conditional.update_scale_table(SCALE_TABLE, force=True)


def ste_round(x: torch.Tensor) -> torch.Tensor:
    """Rounding with a straight-through gradient."""
    return x + (torch.round(x) - x).detach()


@dataclass
class ForwardResult:
    x_hat: torch.Tensor
    y_hat: torch.Tensor
    y_likelihoods: torch.Tensor
    z_likelihoods: torch.Tensor
    extras: dict = field(default_factory=dict)

    def bits(self) -> torch.Tensor:
        """Estimated bits of the batch (y and z)."""
        return -(torch.log2(self.y_likelihoods).sum() + torch.log2(self.z_likelihoods).sum())


class HiFiC(nn.Module):
    """E, P and G of HiFiC (the coding path); D is `Discriminator`, used in training only."""

    STRIDE = 16  # spatial down-sampling of E

    def __init__(self, cfg: HificConfig) -> None:
        super().__init__()
        self.config = cfg
        self.encoder = Encoder(cfg)
        self.hyperprior = Hyperprior(cfg)
        self.generator = Generator(cfg)

    def forward(self, x: torch.Tensor) -> ForwardResult:
        """Training pass: noisy likelihoods for the rate, STE-rounded latent for G."""
        y = self.encoder(x)
        z = self.hyperprior.analyse(y)
        z_hat, z_likelihoods = self.hyperprior.entropy_bottleneck(z)
        means, scales = self.hyperprior.synthesise(z_hat, y.shape[-2:])
        _, y_likelihoods = self.hyperprior.gaussian_conditional(y, scales, means=means)
        y_hat = ste_round(y - means) + means
        return ForwardResult(self.generator(y_hat), y_hat, y_likelihoods, z_likelihoods)

    def se_blocks(self) -> list[SEBlock]:
        return [m for m in self.modules() if isinstance(m, SEBlock)]

    def se_l1(self) -> torch.Tensor:
        """L1 penalty on all SE FC weights (zero for variants without SE)."""
        blocks = self.se_blocks()
        return sum((b.l1_penalty() for b in blocks), torch.zeros(()))


class Discriminator(nn.Module):
    """HiFiC's conditional D: the latent, upsampled to the image, concatenated with it; spectral norm.

    Single scale; returns per-patch logits (N, 1, H/16, W/16).
    """

    CONDITION_CHANNELS = 12

    def __init__(self, cfg: HificConfig) -> None:
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        self.condition = nn.Sequential(sn(nn.Conv2d(cfg.latent_channels, self.CONDITION_CHANNELS, 3, padding=1)),
                                       nn.LeakyReLU(0.2), nn.Upsample(scale_factor=HiFiC.STRIDE, mode="nearest"))
        layers: list[nn.Module] = []
        channels = cfg.in_channels + self.CONDITION_CHANNELS
        for width in cfg.discriminator_widths:
            layers += [sn(nn.Conv2d(channels, width, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            channels = width
        layers.append(sn(nn.Conv2d(channels, 1, 1)))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, y_hat: torch.Tensor) -> torch.Tensor:
        return self.layers(torch.cat([x, self.condition(y_hat.detach())], dim=1))


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
