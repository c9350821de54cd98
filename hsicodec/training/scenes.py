"""Training scenes: files -> the planes the codec would feed the network, with their geometry."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from hsicodec.codec import DEFAULT_TILE, nodata_mask, scene_statistics
from hsicodec.container import tile_rects
from hsicodec.errors import InputError
from hsicodec.frontend import SpectralGeometry, fit_front_end
from hsicodec.io import find_scenes, open_scene


@dataclass(frozen=True, eq=False)
class TrainingScene:
    """A whole scene as network planes (C, H, W) float32, prepared exactly as `compress` does."""

    name: str
    planes: np.ndarray
    geometry: SpectralGeometry
    bands: int


def load_scene(path: Path, front_end: str, components: int, var: str | None = None) -> TrainingScene:
    """One scene through the per-scene front-end (its own range, and its KLT for ``klt``).

    `var` names the array of a `.mat` file holding several.
    """
    with open_scene(path, var) as reader:
        height, width, bands = reader.shape
        stats = scene_statistics(reader, tile_rects(height, width, DEFAULT_TILE))
        front = fit_front_end(stats, front_end, components)
        cube = reader.read(0, 0, height, width)
        planes = front.planes(cube, nodata_mask(cube, reader.meta.nodata))
    return TrainingScene(path.name, planes, front.geometry(bands), bands)


def scene_files(inputs: list[Path]) -> list[Path]:
    """Scene files of the inputs; folders are searched recursively."""
    files: list[Path] = []
    for path in inputs:
        files.extend(find_scenes(path) if path.is_dir() else [path])
    return files


def load_scenes(files: list[Path], front_end: str, components: int,
                warn: Callable[[str], None] = lambda message: None) -> list[TrainingScene]:
    """Every scene that opens; one that does not is reported through `warn` and skipped.

    The ``bands`` front-end needs one band count: scenes with another are skipped too.
    """
    loaded: list[TrainingScene] = []
    for path in files:
        try:
            scene = load_scene(path, front_end, components)
        except InputError as exc:
            warn(f"skipping {path}: {exc}")
            continue
        if front_end == "bands" and loaded and scene.bands != loaded[0].bands:
            warn(f"skipping {path}: {scene.bands} bands, but the bands front-end trains on "
                 f"{loaded[0].bands}-band scenes (those of {loaded[0].name})")
            continue
        loaded.append(scene)
    return loaded


def split_validation(scenes: list[TrainingScene], fraction: float) -> tuple[list[TrainingScene], list[TrainingScene]]:
    """(train, validation): every n-th scene validates, n = 1 / fraction; one scene trains and validates."""
    if len(scenes) < 2 or fraction <= 0:
        return scenes, scenes[:1]
    step = max(2, round(1 / fraction))
    chosen = set(range(step - 1, len(scenes), step)) or {len(scenes) - 1}
    return ([s for i, s in enumerate(scenes) if i not in chosen],
            [s for i, s in enumerate(scenes) if i in chosen])
