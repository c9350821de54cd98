"""Which .hsic file a decoded scene came from: the mark `decompress` leaves on what it writes.

A decoded scene carries the sha256 of its .hsic file as one extra header field
(ENVI: `hsicodec_source = ...`; GeoTIFF: the same key in its ENVI tag namespace).
It lets a later run tell its own output (skipped when decoded from the same
.hsic file, replaceable with --overwrite) from any other file of that name,
which hsicodec never replaces: the scene the .hsic was made from, or any file a
user keeps there.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hsicodec.errors import HsicodecError
from hsicodec.io.discover import open_scene
from hsicodec.io.meta import SceneMeta

FIELD = "hsicodec_source"


def marked(meta: SceneMeta, source_sha256: str) -> SceneMeta:
    """`meta` with the mark of the .hsic file whose sha256 is given (replacing any older mark)."""
    return dataclasses.replace(meta, envi={**meta.envi, FIELD: source_sha256})


@dataclass(frozen=True)
class Decoded:
    """What an existing file says of itself: the .hsic it was decoded from (None: not hsicodec's)."""

    source_sha256: str | None
    shape: tuple[int, int, int] | None
    dtype: np.dtype | None


def decoded(path: Path) -> Decoded:
    """The mark, shape and sample type of a complete scene at `path`; all None for anything else."""
    try:
        with open_scene(path) as scene:
            return Decoded(scene.meta.envi.get(FIELD), scene.shape, scene.dtype)
    except HsicodecError:
        return Decoded(None, None, None)
