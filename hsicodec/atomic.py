"""All-or-nothing output: write under temporary names, rename only when everything succeeded.

The one home of hsicodec's atomic writes: `.hsic` files (`container.HsicWriter`),
decoded scenes and their sidecars (`io.write`), reports (`bench`).
"""
from __future__ import annotations

import glob
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class Staging:
    """Temporary names next to their final paths (same folder, so renames are atomic)."""

    def __init__(self) -> None:
        self._token = uuid.uuid4().hex[:12]
        self._moves: list[tuple[Path, Path]] = []

    def temp(self, final: Path) -> Path:
        """A hidden temporary name for `final`, renamed to it on commit."""
        tmp = final.with_name(f".{final.name}.{self._token}.part")
        self._moves.append((tmp, final))
        return tmp

    def adopt(self, tmp: Path, final: Path) -> None:
        """Also rename `tmp` (e.g. a sidecar a library wrote next to a temporary) on commit."""
        self._moves.append((tmp, final))

    @property
    def finals(self) -> list[Path]:
        return [final for _, final in self._moves]

    def commit(self) -> None:
        """Make every temporary's contents durable, rename each to its final name, then make the renames
        durable: a crash leaves either no final file or a whole one, never a final name over unwritten
        data."""
        for tmp, _ in self._moves:
            _fsync_file(tmp)
        for tmp, final in self._moves:
            os.replace(tmp, final)
        for folder in {final.parent for _, final in self._moves}:
            _fsync_directory(folder)

    def abort(self) -> None:
        """Delete every temporary and anything written next to it under its name."""
        for tmp, _ in self._moves:
            for leftover in glob.glob(glob.escape(str(tmp)) + "*"):
                Path(leftover).unlink(missing_ok=True)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDWR)  # writable: some platforms refuse fsync on a read-only descriptor
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(directory: Path) -> None:
    """Make a rename durable where the platform allows opening directories."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def clear_stale(*finals: Path) -> None:
    """Delete the temporaries (and their sidecars) a killed run left for these final paths."""
    for final in finals:
        pattern = re.compile(rf"^\.{re.escape(final.name)}\.[0-9a-f]{{12}}\.part")
        if final.parent.is_dir():
            for leftover in final.parent.iterdir():
                if pattern.match(leftover.name):
                    leftover.unlink(missing_ok=True)


@contextmanager
def staged() -> Iterator[Staging]:
    """Commit the staged files when the block ends normally; delete them if it raises."""
    staging = Staging()
    try:
        yield staging
        staging.commit()
    except BaseException:
        staging.abort()
        raise
