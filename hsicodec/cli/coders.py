"""One LatentCoder per model and device in each process (the CLI's, or a Dask worker's)."""
from __future__ import annotations

from hsicodec.checkpoints import ModelEntry, load_model
from hsicodec.cli.options import resolve_device
from hsicodec.latent_coding import LatentCoder

_CODERS: dict[tuple[str, str], LatentCoder] = {}


def coder_for(entry: ModelEntry, device: str) -> LatentCoder:
    """The coder of `entry` on `device` (auto, cpu or cuda), loaded (sha256-checked) on first use."""
    key = (entry.sha256, device)
    if key not in _CODERS:
        _CODERS[key] = LatentCoder(load_model(entry), resolve_device(device))
    return _CODERS[key]
