"""`hsicodec info`: what a .hsic file holds."""
from __future__ import annotations

from pathlib import Path

import click

from hsicodec.cli.options import describe_rate, emit, json_option
from hsicodec.container import HsicReader, rate_figures, source_bytes
from hsicodec.io.meta import SceneMeta


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option("the file's description as one JSON object")
def info(file: Path, as_json: bool) -> None:
    """Print the scene shape, sample type, model, rate and metadata of FILE.

    Every CRC of the header and metadata is checked on the way.

    \b
    Example:
      $ hsicodec info scene.hsic --json
    """
    with HsicReader(file) as reader:
        h = reader.header
        shape = (h.height, h.width, h.bands)
        record = {"file": str(file), "height": h.height, "width": h.width, "bands": h.bands, "dtype": h.dtype,
                  "byteorder": h.byteorder, "model": h.model_name, "model_id": h.model_id,
                  "planes": h.components, "step": h.step, "tile_size": h.tile_size, "tiles": h.n_tiles,
                  "target_bpp": reader.metadata.get("target_bpp"),
                  "value_range": [reader.norm.lo, reader.norm.hi],
                  **rate_figures(reader.file_bytes, shape, source_bytes(reader)),
                  "source_name": reader.metadata.get("source_name"),
                  "metadata": SceneMeta.from_json(reader.metadata.get("scene", {})).to_json(compact=False)}
    scene = record["metadata"]
    lines = [
        f"{file}: {h.height} x {h.width} x {h.bands} {h.dtype} ({'little' if h.byteorder == '<' else 'big'}-endian)",
        f"  model       {h.model_name} (sha256 {h.model_id}...), "
        + f"{h.components} of {h.bands} KLT planes coded at step {h.step:.4g}",
        f"  tiles       {h.n_tiles} of {h.tile_size} x {h.tile_size}",
        f"  size        {describe_rate(record)}"
        + (f" (asked for {record['target_bpp']:g} bpp)" if record["target_bpp"] is not None else ""),
        f"  source      {record['source_name']} ({scene.get('source_format', '?')})",
    ]
    if scene.get("wavelengths"):
        wl = scene["wavelengths"]
        lines.append(f"  wavelengths {wl[0]:g} .. {wl[-1]:g} {scene.get('wavelength_units') or ''}".rstrip())
    if scene.get("crs_wkt") or scene.get("envi", {}).get("map info"):
        lines.append("  georeferenced")
    emit(record, as_json, "\n".join(lines))
