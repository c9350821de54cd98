"""Decode a .hsic file again and measure it against its source scene."""
from __future__ import annotations

from pathlib import Path

from hsicodec.codec import decode_tiles
from hsicodec.container import HsicReader
from hsicodec.io import SceneReader
from hsicodec.plane_coding import PlaneCoder
from hsicodec.metrics import QualityAccumulator


def verify_file(path: Path, source: SceneReader, coder: PlaneCoder) -> dict[str, float]:
    """PSNR, SSIM, SAM and MAE of the decoded file against the source, tile by tile."""
    nodata = source.meta.nodata
    quality = QualityAccumulator(source.shape[2], mask_value=nodata)
    with HsicReader(path) as reader:
        for row0, col0, block in decode_tiles(reader, coder, nodata):
            height, width = block.shape[:2]
            quality.update(source.read(row0, col0, height, width), block)
    return {k: v for k, v in quality.result().items() if k in ("psnr", "ssim", "sam", "mae")}
