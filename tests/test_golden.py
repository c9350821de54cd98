"""A frozen .hsic file that must keep decoding, value for value, with the shipped model.

`golden/feathers-64.hsic` is made once per container major version and shipped model (this
one for 6.0 and the model whose nets compute in integers) and never regenerated between
them: the 64 x 64
crop at rows and columns 96..159 of ../shared/data/cave/feathers.tif (31
bands, uint16, its band names and wavelengths), written as a GeoTIFF and
compressed with `hsicodec compress feathers-64.tif -r 4 --tile-size 32`
(four tiles). A change to the container, the range coder, P's arithmetic or
the shipped model that would decode it differently fails here: the decoder
checks every tile's CRC32 of the values (so the symbols are exact), and the
figures below were measured on its first decode. The file names its model, and
only the shipped model is installed: a new container major says in
docs/format.md why the old one could not be kept, and a new shipped model in
docs/core-bakeoff.md.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from cli_helpers import invoke
from conftest import DATA
from hsicodec.metrics import quality

GOLDEN = Path(__file__).resolve().parent / "golden" / "feathers-64.hsic"
FROZEN = {"bytes": 2007, "planes": 10, "step": 0.0098076621642554, "psnr": 48.353, "sam": 1.0464}


def _crop() -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(DATA / "cave" / "feathers.tif") as ds:
            return ds.read(window=Window(96, 96, 64, 64)).transpose(1, 2, 0)


def test_the_golden_file_describes_itself_as_frozen() -> None:
    result = invoke("info", GOLDEN, "--json")
    assert result.exit_code == 0, result.stderr
    info = json.loads(result.stdout)
    assert (info["height"], info["width"], info["bands"], info["dtype"]) == (64, 64, 31, "uint16")
    assert (info["bytes"], info["planes"]) == (FROZEN["bytes"], FROZEN["planes"])
    assert info["step"] == pytest.approx(FROZEN["step"], rel=1e-12)
    assert info["metadata"]["wavelengths"][:2] == [400.0, 410.0] and info["metadata"]["band_names"][0] == "400 nm"


def test_the_golden_file_decodes_to_the_frozen_scene(tmp_path: Path) -> None:
    restored = tmp_path / "golden.tif"
    result = invoke("decompress", GOLDEN, "-o", restored, "-q")
    assert result.exit_code == 0, result.stderr
    with rasterio.open(restored) as ds:
        decoded = ds.read().transpose(1, 2, 0)
        assert ds.descriptions[0] == "400 nm"
    measured = quality(_crop(), decoded)
    assert measured["psnr"] == pytest.approx(FROZEN["psnr"], abs=0.01)  # a count off here and there at most
    assert measured["sam"] == pytest.approx(FROZEN["sam"], abs=0.01)
