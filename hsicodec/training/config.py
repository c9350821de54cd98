"""Training configuration: a TOML file read into frozen dataclasses, unknown keys refused.

    name = "hificse-cave"          # the exported model's name
    front_end = "bands"            # "bands" (the sensor's bands) or "klt" (K per-scene components)
    components = 16                # K, klt only

    [model]                        # HificConfig fields; `size` picks paper / small / tiny widths
    arch = "hificse"
    size = "small"

    [rate]                         # rate-targeted lambda: lambda_a above target_bpp, lambda_b below
    target_bpp = 0.4

    [loss]                         # k_M MSE + k_S (1 - SSIM) + k_A angle + k_P LPIPS, beta GAN
    [training]                     # stages, optimiser, patches, logging
"""
from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from hsicodec.errors import InputError
from hsicodec.frontend import FRONT_ENDS
from hsicodec.nn.hific import SIZES, HificConfig


@dataclass(frozen=True)
class RateConfig:
    target_bpp: float = 0.4
    lambda_a: float = 4.0
    lambda_b: float = 0.25


@dataclass(frozen=True)
class LossConfig:
    """Weights of the distortion terms, on top of DISTORTION_SCALE * per-band MSE."""

    mse: float = 1.0  # k_M
    ssim: float = 1.0  # k_S, on 1 - SSIM
    angle: float = 1.0  # k_A, on the mean spectral angle in radians
    perceptual: float = 0.0  # k_P, on LPIPS; needs perceptual_weights
    perceptual_weights: Path | None = None
    gan: float = 0.15  # beta, stage 2 only
    se_l1: float = 1e-5  # L1 on the SE FC weights (HiFiCSE)


@dataclass(frozen=True)
class StageConfig:
    """Stage 1 (mse_iterations, beta = 0) then stage 2 (gan_iterations, conditional GAN)."""

    mse_iterations: int = 2000
    gan_iterations: int = 0
    patch: int = 96
    batch: int = 8
    lr: float = 1e-4
    final_lr: float = 1e-4  # cosine decay from lr to final_lr within each stage
    discriminator_lr: float = 1e-4
    aux_lr: float = 1e-3
    plane_groups: float = 0.0  # share of the patches drawn as a further plane group's input (klt)
    validation_fraction: float = 0.2  # of the scenes, when no validation scenes are given
    validation_crop: int = 256  # validation codes the central crop of each scene
    checkpoint_every: int = 100
    validate_every: int = 500
    seed: int = 0

    @property
    def iterations(self) -> int:
        return self.mse_iterations + self.gan_iterations


@dataclass(frozen=True)
class TrainConfig:
    name: str
    front_end: str = "klt"
    components: int = 16
    model: dict = field(default_factory=dict)
    rate: RateConfig = RateConfig()
    loss: LossConfig = LossConfig()
    training: StageConfig = StageConfig()

    def network(self, channels: int) -> HificConfig:
        """The network's configuration for `channels` input planes."""
        options = dict(self.model)
        size = options.pop("size", "small")
        return HificConfig(in_channels=channels, **{**SIZES[size], **options})

    def to_dict(self) -> dict:
        data = asdict(self)
        weights = data["loss"]["perceptual_weights"]
        data["loss"]["perceptual_weights"] = None if weights is None else str(weights)
        return data


def _section(cls: type, data: dict, where: str) -> object:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(unknown)}; expected {', '.join(sorted(known))}")
    return cls(**data)


def parse_config(data: dict, base: Path, where: str = "config") -> TrainConfig:
    """A TrainConfig from parsed TOML; relative paths are resolved against `base`."""
    data = dict(data)
    if "name" not in data or not str(data["name"]).strip():
        raise InputError(f"{where}: needs a `name` for the exported model")
    sections = {}
    for key, cls in (("rate", RateConfig), ("loss", LossConfig), ("training", StageConfig)):
        section = dict(data.pop(key, {}))
        if key == "loss" and section.get("perceptual_weights"):
            section["perceptual_weights"] = base / section["perceptual_weights"]
        sections[key] = _section(cls, section, f"{where} [{key}]")
    config = _section(TrainConfig, {**data, **sections}, where)
    _validate(config, where)
    return config


def _validate(config: TrainConfig, where: str) -> None:
    if config.front_end not in FRONT_ENDS:
        raise InputError(f"{where}: front_end must be one of {', '.join(FRONT_ENDS)}, not {config.front_end!r}")
    size = config.model.get("size", "small")
    if size not in SIZES:
        raise InputError(f"{where} [model]: size must be one of {', '.join(SIZES)}, not {size!r}")
    try:
        config.network(max(1, config.components))
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where} [model]: {exc}") from None
    stage, loss = config.training, config.loss
    if stage.iterations <= 0 or stage.mse_iterations < 0 or stage.gan_iterations < 0:
        raise InputError(f"{where} [training]: iteration counts must be >= 0 with at least one step")
    if stage.patch < 32 or stage.patch % 16:
        raise InputError(f"{where} [training]: patch must be a multiple of 16, at least 32 (got {stage.patch})")
    if not 0 <= stage.plane_groups <= 1 or (stage.plane_groups and config.front_end != "klt"):
        raise InputError(f"{where} [training]: plane_groups must be in [0, 1], and 0 for the bands front-end")
    if config.rate.target_bpp <= 0:
        raise InputError(f"{where} [rate]: target_bpp must be positive")
    if loss.perceptual > 0 and loss.perceptual_weights is None:
        raise InputError(f"{where} [loss]: perceptual > 0 needs perceptual_weights (an LPIPS weights file)")


def load_config(path: Path) -> TrainConfig:
    """Read a training configuration file (TOML)."""
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a valid TOML file ({exc})") from None
    return parse_config(data, path.parent, str(path))
