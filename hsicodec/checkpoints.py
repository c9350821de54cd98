"""Self-describing checkpoints in models/ and the registry that picks one.

A checkpoint is a ``torch.save`` of plain data (loadable with
``weights_only=True``): format_version, name, arch, front_end, components,
config, state_dict (with the baked integer CDF tables), target_bpp, training,
metrics. ``manifest.json`` in a models directory records each file's sha256, checked
before anything is loaded. Models are looked up in the directories of
$HSICODEC_MODELS (separated like PATH; `hsicodec train` makes one) before the
shipped ``models/``; the first model of a name wins.
"""
from __future__ import annotations

import hashlib
import math
import json
import os
import pickle
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from hsicodec.errors import InputError, ModelError

if TYPE_CHECKING:  # torch and the networks are imported where a checkpoint is loaded or written
    import torch

    from hsicodec.nn.hific import HiFiC

FORMAT_VERSION = 1
SHIPPED_MODELS = Path(__file__).resolve().parent.parent / "models"


@dataclass(frozen=True)
class ModelEntry:
    """One line of models/manifest.json."""

    name: str
    file: str
    arch: str
    front_end: str
    channels: int  # K for the klt front-end, B for the bands front-end
    target_bpp: float
    sha256: str
    metrics: dict = field(default_factory=dict)
    directory: Path | None = field(default=None, compare=False)  # where the manifest was read

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "directory"}

    def fits(self, bands: int) -> bool:
        """Whether the model codes a scene of `bands` bands (klt: any; bands: its own count)."""
        return self.front_end == "klt" or self.channels == bands

    def check_fits(self, bands: int, where: object) -> None:
        """InputError naming `where` when the model cannot code a scene of `bands` bands."""
        if not self.fits(bands):
            raise InputError(f"{where}: model {self.name!r} codes {self.channels}-band scenes; "
                             f"this one has {bands} bands (pick another model with -m)")

    @property
    def rate_bpp(self) -> float:
        """The rate the model gives: measured on real scenes when known (metrics.rate_bpp), else its target."""
        return float(self.metrics.get("rate_bpp", self.target_bpp))

    def psnr_at(self, rate: float) -> float | None:
        """PSNR the model reaches when asked for `rate` bpp (metrics.curve: measured on real scenes with
        rate control, interpolated in log rate); above the curve, its top (a model asked for more than
        it reaches gives its finest file); None below the curve or without one."""
        curve = sorted((p["rate"], p["psnr"]) for p in self.metrics.get("curve", []))
        if curve and rate > curve[-1][0]:
            return curve[-1][1]
        for (bpp0, psnr0), (bpp1, psnr1) in zip(curve, curve[1:]):
            if bpp0 <= rate <= bpp1:
                t = math.log(rate / bpp0) / math.log(bpp1 / bpp0) if bpp1 > bpp0 else 0.0
                return psnr0 + t * (psnr1 - psnr0)
        return None

    @property
    def path(self) -> Path:
        return (self.directory or SHIPPED_MODELS) / self.file


def model_dirs() -> list[Path]:
    """The directories searched for models, in order: $HSICODEC_MODELS, then the shipped ones."""
    extra = [Path(p) for p in os.environ.get("HSICODEC_MODELS", "").split(os.pathsep) if p]
    return [*extra, SHIPPED_MODELS]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(models_dir: Path = SHIPPED_MODELS) -> list[ModelEntry]:
    path = models_dir / "manifest.json"
    try:
        raw = json.loads(path.read_text())
        return [ModelEntry(**entry, directory=models_dir) for entry in raw["models"]]
    except FileNotFoundError:
        raise ModelError(f"no model manifest at {path}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"malformed model manifest {path}: {exc}") from None


def write_manifest(entries: list[ModelEntry], models_dir: Path = SHIPPED_MODELS) -> None:
    text = json.dumps({"models": [e.to_json() for e in entries]}, indent=2) + "\n"
    (models_dir / "manifest.json").write_text(text)


def installed_models() -> list[ModelEntry]:
    """Every model of every searched directory; a name already seen in an earlier directory is skipped."""
    entries: dict[str, ModelEntry] = {}
    for directory in model_dirs():
        for entry in read_manifest(directory):
            entries.setdefault(entry.name, entry)
    return list(entries.values())


def register(entry: ModelEntry, models_dir: Path) -> None:
    """Add `entry` to the manifest of `models_dir` (created if absent), replacing one of the same name."""
    existing = read_manifest(models_dir) if (models_dir / "manifest.json").exists() else []
    entries = [e for e in existing if e.name != entry.name] + [entry]
    write_manifest(sorted(entries, key=lambda e: (e.arch, e.front_end, e.target_bpp, e.name)), models_dir)


def install(entry: ModelEntry, models_dir: Path = SHIPPED_MODELS) -> ModelEntry:
    """Copy `entry`'s checkpoint into `models_dir` and register it there; the installed entry."""
    installed = replace(entry, directory=models_dir)
    shutil.copy2(entry.path, installed.path)
    register(installed, models_dir)
    return installed


def find_model(name: str | None = None, rate: float | None = None, arch: str | None = None) -> ModelEntry:
    """The entry called `name`, else the klt model best at `rate` (of architecture `arch` when given).

    Best: the highest measured PSNR at that rate under rate control (`psnr_at`);
    when no model's measured curve covers the rate, the model whose own rate is
    nearest (by ratio). ``bands`` models fit one sensor's band count, so they
    are picked by name only.
    """
    entries = [e for e in installed_models() if arch is None or e.arch == arch]
    if name is not None:
        for entry in entries:
            if entry.name == name:
                return entry
        known = ", ".join(e.name for e in entries) or "none"
        raise ModelError(f"unknown model {name!r} (installed: {known})")
    if not entries:
        raise ModelError(f"no models installed in {', '.join(map(str, model_dirs()))}")
    return best_for_rate(entries, 0.4 if rate is None else rate)


def best_for_rate(entries: list[ModelEntry], rate: float) -> ModelEntry:
    """The model of `entries` that `-r rate` uses (see `find_model`)."""
    any_sensor = [e for e in entries if e.front_end == "klt"] or entries  # bands models: by name
    covering = [(psnr, e.name, e) for e in any_sensor if (psnr := e.psnr_at(rate)) is not None]
    if covering:
        return max(covering, key=lambda c: (c[0], c[1]))[2]
    return min(any_sensor, key=lambda e: (abs(math.log(e.rate_bpp / rate)), e.name))


def find_by_sha(sha256: str) -> ModelEntry | None:
    return next((e for e in installed_models() if e.sha256 == sha256), None)


def _resize_entropy_buffers(model: HiFiC, state_dict: dict[str, torch.Tensor]) -> None:
    """compressai's CDF buffers start empty; give them the stored shapes before loading."""
    import torch

    for module_name, module in model.named_modules():
        for buffer_name in ("_quantized_cdf", "_offset", "_cdf_length", "scale_table"):
            key = f"{module_name}.{buffer_name}"
            if key in state_dict and hasattr(module, buffer_name):
                setattr(module, buffer_name, torch.empty_like(state_dict[key]))


def load_model(entry: ModelEntry) -> HiFiC:
    """Verify the file's sha256, load it with weights_only=True, rebuild the network."""
    import torch

    from hsicodec.nn.hific import HiFiC, HificConfig

    path = entry.path
    if not path.is_file():
        raise ModelError(f"checkpoint {path} of model {entry.name!r} is missing")
    actual = sha256_of(path)
    if actual != entry.sha256:
        raise ModelError(f"checkpoint {path} fails its sha256 check (tampered or foreign file); refusing to load it")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        if checkpoint.get("format_version") != FORMAT_VERSION:
            raise ModelError(f"checkpoint {path} has unsupported format {checkpoint.get('format_version')!r}")
        model = HiFiC(HificConfig.from_dict(checkpoint["config"]))
        _resize_entropy_buffers(model, checkpoint["state_dict"])
        model.load_state_dict(checkpoint["state_dict"])
    except ModelError:
        raise
    except pickle.UnpicklingError:
        raise ModelError(f"checkpoint {path} holds Python objects besides tensors and plain data; refused "
                         "(checkpoints are loaded with weights_only=True)") from None
    except Exception as exc:  # a foreign or damaged file must not surface as a traceback
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelError(f"checkpoint {path} cannot be loaded: {reason}") from None
    return model.eval()


def export_checkpoint(model: HiFiC, path: Path, name: str, front_end: str, target_bpp: float,
                      training: dict, metrics: dict) -> ModelEntry:
    """Bake the CDF tables, save a self-describing checkpoint and return its manifest entry."""
    import torch

    model.hyperprior.update_tables()
    config = model.config
    checkpoint = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "arch": config.arch,
        "front_end": front_end,
        "channels": config.in_channels,
        "config": config.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "target_bpp": target_bpp,
        "training": training,
        "metrics": metrics,
    }
    torch.save(checkpoint, path)
    return ModelEntry(name=name, file=path.name, arch=config.arch, front_end=front_end,
                      channels=config.in_channels, target_bpp=target_bpp, sha256=sha256_of(path), metrics=metrics,
                      directory=path.parent)
