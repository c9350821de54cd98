"""Quick start: make a small ENVI scene, compress it, inspect, decompress and measure.

Run from the repository root:  python examples/quickstart.py
Everything is written under examples/out/.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import spectral.io.envi as envi
from scipy.ndimage import gaussian_filter

OUT = Path(__file__).resolve().parent / "out"


def make_scene(path: Path, height: int = 384, width: int = 384, bands: int = 120) -> None:
    """A synthetic reflectance scene: 4 smooth endmember spectra mixed by smooth abundance maps."""
    rng = np.random.default_rng(7)
    wavelengths = np.linspace(400, 2500, bands)
    centres = rng.uniform(500, 2300, size=(4, 3))
    endmembers = np.stack([0.2 + 0.01 * i + sum(0.25 * np.exp(-((wavelengths - c) / 150) ** 2) for c in row)
                           for i, row in enumerate(centres)])
    fields = np.stack([gaussian_filter(rng.normal(size=(height, width)), 8) for _ in range(4)])
    abundances = np.exp(6 * fields) / np.exp(6 * fields).sum(axis=0)
    cube = np.einsum("khw,kb->hwb", abundances, endmembers) + rng.normal(0, 0.002, (height, width, bands))
    metadata = {
        "wavelength": [f"{w:.2f}" for w in wavelengths],
        "wavelength units": "Nanometers",
        "fwhm": ["17.6"] * bands,
        "map info": "{UTM, 1.000, 1.000, 500000.000, 5800000.000, 30.000, 30.000, 33, North, WGS-84, units=Meters}",
        "description": "hsicodec quick-start scene (synthetic)",
    }
    envi.save_image(str(path), np.clip(cube * 10000, 0, 65535).astype(np.uint16), metadata=metadata,
                    interleave="bil", ext=".img", force=True)


def hsicodec(*args: str) -> None:
    print("$ hsicodec " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "hsicodec", *args], check=True)


def main() -> None:
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    scene = OUT / "scene.hdr"
    make_scene(scene)
    hsicodec("compress", str(scene), "-r", "0.4", "--verify")
    hsicodec("info", str(OUT / "scene.hsic"))
    hsicodec("decompress", str(OUT / "scene.hsic"), "-o", str(OUT / "restored.hdr"))
    hsicodec("eval", str(scene), str(OUT / "restored.hdr"))


if __name__ == "__main__":
    main()
