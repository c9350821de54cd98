"""Shared fixtures: the real scenes of ../shared/data (or $HSICODEC_DATA)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from hsicodec.frontend import fit_front_end
from hsicodec.klt import SpectralStats
from hsicodec.nn.pyramid import Code

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("HSICODEC_DATA", REPO.parent / "shared" / "data"))


def cave_planes(scene: str, window: tuple[tuple[int, int], tuple[int, int]], planes: int) -> np.ndarray:
    """The first KLT planes (K, h, w) float32, normalised units, of a window ((rows), (columns)) of a CAVE
    scene, the KLT fitted to the window."""
    with rasterio.open(DATA / "cave" / f"{scene}.tif") as ds:
        cube = ds.read(window=window).transpose(1, 2, 0)
    stats = SpectralStats(cube.shape[2])
    stats.update(cube.reshape(-1, cube.shape[2]))
    return fit_front_end(stats).stored(planes, 2.0 ** -10).planes(cube)


def previous_planes(code: Code) -> Code:
    """Each plane's previous plane in a code (zeros before the first): what P is given beside it."""
    def shift(t: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.zeros_like(t[:1]), t[:-1]])
    return shift(code[0]), [shift(b) for b in code[1]]


def manifest() -> list[dict]:
    """Entries of the shared data manifest."""
    return json.loads((DATA / "manifest.json").read_text())


def scenes(split: str) -> list[dict]:
    """Manifest entries of one split (`train`, `eval`, `io`)."""
    return [s for s in manifest() if s["split"] == split]


def scene_path(entry: dict) -> Path:
    """The file a user would point hsicodec at: the `.hdr` for ENVI, else the first file."""
    files = [DATA / f for f in entry["files"]]
    headers = [f for f in files if f.suffix == ".hdr"]
    return headers[0] if headers else files[0]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA / "manifest.json").exists():
        pytest.fail(f"shared data not found at {DATA}; set HSICODEC_DATA")
    return DATA
