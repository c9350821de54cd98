"""`SceneReader`: the common face of every input format (windowed reads in (H, W, B))."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hsicodec.errors import InputError
from hsicodec.io.meta import SceneMeta


def first_line(error: BaseException) -> str:
    """A one-line reason for an exception raised by a library."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def check_shape(shape: tuple[int, int, int], where: str) -> tuple[int, int, int]:
    """`shape` as plain ints; InputError if any side is zero (an empty scene)."""
    h, w, b = (int(x) for x in shape)
    if min(h, w, b) < 1:
        raise InputError(f"{where}: empty scene ({h} x {w} pixels, {b} bands)")
    return h, w, b


class SceneReader:
    """An open scene; subclasses implement `_read` and `close`."""

    path: Path
    shape: tuple[int, int, int]
    dtype: np.dtype
    meta: SceneMeta
    storage_bytes: int

    def read(self, row0: int, col0: int, height: int, width: int) -> np.ndarray:
        """Window of `height` x `width` pixels at (row0, col0): (h, w, B) in `dtype`, native order."""
        h, w, _ = self.shape
        if not (0 <= row0 and 0 <= col0 and height >= 1 and width >= 1
                and row0 + height <= h and col0 + width <= w):
            raise InputError(
                f"{self.path}: window rows {row0}:{row0 + height}, cols {col0}:{col0 + width} "
                f"is outside the {h} x {w} scene"
            )
        return self._read(row0, col0, height, width)

    def _read(self, row0: int, col0: int, height: int, width: int) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        """Release files and maps; the reader is unusable afterwards."""

    def __enter__(self) -> SceneReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, shape={self.shape}, dtype={self.dtype})"
