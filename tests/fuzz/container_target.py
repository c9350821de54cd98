"""atheris target: any bytes given to the .hsic reader end in a ContainerError or a clean read.

    python tests/fuzz/container_target.py SEED.hsic -runs=20000

The first argument is a real .hsic file used as the starting corpus entry.
Any other exception, or a ContainerError message of several lines, is a crash.
"""
from __future__ import annotations

import os
import sys
import tempfile

import atheris

with atheris.instrument_imports():
    from hsicodec.container import HsicReader
    from hsicodec.errors import ContainerError

SCRATCH = os.path.join(tempfile.mkdtemp(prefix="hsic-fuzz-"), "input.hsic")


def read_everything(data: bytes) -> None:
    with open(SCRATCH, "wb") as fh:
        fh.write(data)
    for salvage in (False, True):
        try:
            with HsicReader(SCRATCH, salvage=salvage) as reader:
                reader.metadata.get("scene")
                for index in range(min(reader.header.n_tiles, 64)):
                    try:
                        reader.read_tile(index)
                    except ContainerError as exc:
                        assert "\n" not in str(exc), str(exc)
        except ContainerError as exc:
            assert "\n" not in str(exc), str(exc)


def main() -> None:
    seed, *options = sys.argv[1:]
    corpus = tempfile.mkdtemp(prefix="hsic-corpus-")
    with open(seed, "rb") as src, open(os.path.join(corpus, "seed"), "wb") as dst:
        dst.write(src.read())
    atheris.Setup([sys.argv[0], *options, corpus], read_everything)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
