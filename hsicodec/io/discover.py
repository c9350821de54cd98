"""Which files are scenes: `open_scene` picks the reader, `find_scenes` walks a folder."""
from __future__ import annotations

from pathlib import Path

from hsicodec.errors import InputError
from hsicodec.io.envi import DATA_EXTENSIONS, EnviReader, data_file_of, header_of
from hsicodec.io.gtiff import GeoTiffReader
from hsicodec.io.matlab import MatReader
from hsicodec.io.scene import SceneReader, first_line

GTIFF_EXTENSIONS = (".tif", ".tiff")
SCENE_EXTENSIONS = (".hdr", *GTIFF_EXTENSIONS, ".mat")


def open_scene(path: str | Path, var: str | None = None) -> SceneReader:
    """Open an ENVI scene (`.hdr` or its data file), a GeoTIFF or a `.mat` file.

    `var` names the array of a `.mat` file; other formats ignore it.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if p.is_dir():
        raise InputError(f"{p}: is a folder, not a scene")
    ext = p.suffix.lower()
    try:
        if ext == ".hdr":
            return EnviReader(p)
        if ext in GTIFF_EXTENSIONS:
            return GeoTiffReader(p)
        if ext == ".mat":
            return MatReader(p, var)
        header = header_of(p)
        if header is not None:
            return EnviReader(header, data=p)
    except OSError as e:
        raise InputError(f"{p}: cannot read ({e.strerror or first_line(e)})") from None
    if ext in DATA_EXTENSIONS:
        raise InputError(f"{p}: no ENVI header ({p.name}.hdr or {p.stem}.hdr) next to it")
    raise InputError(
        f"{p}: unknown kind of file {ext!r} (expected an ENVI .hdr or its data file, "
        ".tif, .tiff or .mat)"
    )


def find_scenes(folder: Path) -> list[Path]:
    """Every scene below `folder`, recursively, sorted: ENVI headers (not their data
    files), GeoTIFFs and `.mat` files; hidden files and folders are skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder")
    files = [
        p for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]
    headers = [p for p in files if p.suffix.lower() == ".hdr"]
    data_files = {data_file_of(h) for h in headers}
    return sorted(p for p in files if p.suffix.lower() in SCENE_EXTENSIONS and p not in data_files)
