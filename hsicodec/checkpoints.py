"""Self-describing checkpoints and the registry that finds one.

A checkpoint is a ``torch.save`` of plain data (loadable with
``weights_only=True``): format_version, name, arch, config (the P's sizes),
state_dict (P as trained), P's nets rounded to integers and the integer CDF
tables its range coder uses (both fixed at export, so that every machine codes
with the same P and tables) and how it was trained. ``manifest.json``
in a models directory is the registry: each model's name, file, family
(``arch``), the quantisation steps D it was trained over (the rates it covers)
and its file's sha256, checked before anything is loaded; measured curves live
in ``docs/``. Models are looked up in the directories of $HSICODEC_MODELS
(separated like PATH) before the ones shipped in ``hsicodec/models/``; the first
model of a name wins, and the first model found is the default.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, TypeVar

from hsicodec.errors import ModelError

MODEL_ID_DIGITS = 16
"""A .hsic file names its model by the first 16 hex digits (8 bytes) of the checkpoint's sha256."""

if TYPE_CHECKING:  # torch and the networks are imported where a checkpoint is loaded or written
    from hsicodec.nn.pyramid import WaveletPyramid
    from hsicodec.plane_coding import PlaneCoder

FORMAT_VERSION = 4
T = TypeVar("T")
SHIPPED_MODELS = Path(__file__).resolve().parent / "models"
"""The models shipped inside the package (package data, so a plain `pip install` has them)."""


@dataclass(frozen=True)
class ModelEntry:
    """One entry of a models directory's manifest.json."""

    name: str
    file: str
    arch: str
    sha256: str
    steps: tuple[float, float]  # the range of quantisation steps D P was trained over
    directory: Path | None = field(default=None, compare=False)  # where the manifest was read

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))  # a JSON list in the manifest

    def to_json(self) -> dict:
        return {"name": self.name, "file": self.file, "arch": self.arch, "steps": list(self.steps),
                "sha256": self.sha256}

    @property
    def path(self) -> Path:
        return (self.directory or SHIPPED_MODELS) / self.file

    @property
    def model_id(self) -> str:
        """How a .hsic file names this model: the first digits of its sha256."""
        return self.sha256[:MODEL_ID_DIGITS]


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


def find_model(name: str | None = None) -> ModelEntry:
    """The entry called `name`, else the default: the first model found."""
    entries = installed_models()
    if name is None:
        if not entries:
            raise ModelError(f"no models installed in {', '.join(map(str, model_dirs()))}")
        return entries[0]
    for entry in entries:
        if entry.name == name:
            return entry
    known = ", ".join(e.name for e in entries) or "none"
    raise ModelError(f"unknown model {name!r} (installed: {known})")


def find_by_id(model_id: str) -> ModelEntry | None:
    """The installed model a .hsic file names by `model_id`, or None."""
    return next((e for e in installed_models() if e.model_id == model_id), None)


def load_model(entry: ModelEntry) -> WaveletPyramid:
    """The model's P as trained (floating point), to train further."""
    return _load(entry, _float_model)


def load_coder(entry: ModelEntry) -> PlaneCoder:
    """The model's range coder: its P with the checkpoint's integer nets, and its tables."""
    from hsicodec.entropy import CdfTables
    from hsicodec.nn.integer import IntegerNet
    from hsicodec.plane_coding import PlaneCoder

    def build(checkpoint: dict) -> PlaneCoder:
        nets = tuple(IntegerNet.from_state(state) for state in checkpoint["integer_nets"])
        return PlaneCoder(_float_model(checkpoint).exact(nets), CdfTables.from_state(checkpoint["tables"]),
                          checkpoint["scales"].numpy())

    return _load(entry, build)


def _float_model(checkpoint: dict) -> WaveletPyramid:
    from hsicodec.nn.pyramid import WaveletPyramid

    model = WaveletPyramid(**checkpoint["config"])
    model.load_state_dict(checkpoint["state_dict"])
    return model


def _load(entry: ModelEntry, build: Callable[[dict], T]) -> T:
    """Verify the file's sha256, load it with weights_only=True and build from it, every failure a ModelError."""
    import torch

    path = entry.path
    if not path.is_file():
        raise ModelError(f"checkpoint {path} of model {entry.name!r} is missing")
    if sha256_of(path) != entry.sha256:
        raise ModelError(f"checkpoint {path} fails its sha256 check (tampered or foreign file); refusing to load it")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        if checkpoint.get("format_version") != FORMAT_VERSION:
            raise ModelError(f"checkpoint {path} has unsupported format {checkpoint.get('format_version')!r}")
        return build(checkpoint)
    except ModelError:
        raise
    except pickle.UnpicklingError:
        raise ModelError(f"checkpoint {path} holds Python objects besides tensors and plain data; refused "
                         "(checkpoints are loaded with weights_only=True)") from None
    except Exception as exc:  # a foreign or damaged file must not surface as a traceback
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelError(f"checkpoint {path} cannot be loaded: {reason}") from None


def export_checkpoint(model: WaveletPyramid, path: Path, name: str, training: dict,
                      steps: tuple[float, float]) -> ModelEntry:
    """Round P's nets to integers and bake the CDF tables (what every machine codes with), save a
    self-describing checkpoint and return its manifest entry."""
    import torch

    from hsicodec.plane_coding import SCALE_TABLE, scale_tables

    exact = model.exact()
    checkpoint = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "arch": "wavelet-pyramid",
        "config": model.config(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "integer_nets": [exact.net.state(), exact.low_net.state()],
        "tables": scale_tables(SCALE_TABLE).state(),
        "scales": torch.tensor(SCALE_TABLE),
        "training": training,
    }
    torch.save(checkpoint, path)
    return ModelEntry(name=name, file=path.name, arch="wavelet-pyramid", sha256=sha256_of(path), steps=steps,
                      directory=path.parent)
