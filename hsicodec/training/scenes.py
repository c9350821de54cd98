"""Training scenes -> KLT component planes, exactly as `compress` prepares them."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hsicodec.codec import DEFAULT_TILE, network_input, nodata_mask, scene_statistics, spectral_front_end
from hsicodec.container import tile_rects
from hsicodec.io import open_scene


def component_planes(path: Path, components: int, var: str | None = None) -> np.ndarray:
    """The (K, H, W) planes the codec would feed the network for this scene."""
    with open_scene(path, var) as reader:
        height, width, _ = reader.shape
        norm, basis = spectral_front_end(scene_statistics(reader, tile_rects(height, width, DEFAULT_TILE)),
                                         components)
        cube = reader.read(0, 0, height, width)
        return network_input(cube, nodata_mask(cube, reader.meta.nodata), norm, basis)
