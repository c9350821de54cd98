"""One PlaneCoder per model in each process (the CLI's, or a Dask worker's)."""
from __future__ import annotations

from hsicodec.checkpoints import ModelEntry, load_coder
from hsicodec.plane_coding import PlaneCoder

_CODERS: dict[str, PlaneCoder] = {}


def coder_for(entry: ModelEntry) -> PlaneCoder:
    """The coder of `entry`, loaded (sha256-checked) on first use."""
    if entry.sha256 not in _CODERS:
        _CODERS[entry.sha256] = load_coder(entry)
    return _CODERS[entry.sha256]
