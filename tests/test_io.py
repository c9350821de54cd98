"""hsicodec.io on the real scenes of ../shared/data, checked against independent readers
(SPy and numpy for ENVI, rasterio for GeoTIFF and ENVI georeferencing, scipy/h5py for .mat)."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest
import rasterio
import scipy.io
from conftest import DATA, scene_path, scenes
from rasterio.crs import CRS
from spectral.io import envi as spy_envi

from hsicodec.errors import ContainerError, InputError
from hsicodec.io import SceneMeta, find_scenes, open_scene, write_scene

# rasterio warns when the tests themselves open the ungeoreferenced CAVE/.mat outputs
pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")

IO_WITH_DATA = [e for e in scenes("io") if e["id"] != "enmap_berlin_header"]
EVAL = scenes("eval")
V73 = [e for e in scenes("train") if e["id"] in ("pavia_crop", "muufl_taef")]
ROUND_TRIP = IO_WITH_DATA + EVAL
TILE = 48  # smaller than most scenes and not a multiple of 16: partial tiles and blocks


def ids(entries: list[dict]) -> list[str]:
    return [e["id"] for e in entries]


def mat_var(entry: dict) -> str | None:
    var = entry.get("var")
    return var if isinstance(var, str) and var.isidentifier() else None


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal shape, and equal bytes once both are in native order (NaNs included)."""
    a, b = np.asarray(a), np.asarray(b)
    dt = a.dtype.newbyteorder("=")
    if a.shape != b.shape or b.dtype.newbyteorder("=") != dt:
        return False
    view = np.dtype(f"u{dt.itemsize}")
    return np.array_equal(a.astype(dt).view(view), b.astype(dt).view(view))


def spy_open(header: Path):
    return spy_envi.open(str(header))


def reference_cube(entry: dict) -> np.ndarray:
    """(H, W, B) pixels of a manifest scene, read without hsicodec."""
    path = scene_path(entry)
    if path.suffix == ".hdr":
        return np.asarray(spy_open(path).open_memmap(interleave="bip"))
    if path.suffix == ".tif":
        with rasterio.open(path) as ds:
            return ds.read().transpose(1, 2, 0)
    if h5py.is_hdf5(path):
        with h5py.File(path) as f:
            name = next(n for n in f if isinstance(f[n], h5py.Dataset) and f[n].ndim == 3)
            return f[name][()].transpose(2, 1, 0)
    return scipy.io.loadmat(path)[mat_var(entry)]


def read_all(reader) -> np.ndarray:
    h, w, _ = reader.shape
    return reader.read(0, 0, h, w)


def tiles_of(cube: np.ndarray, size: int = TILE):
    h, w, _ = cube.shape
    for r in range(0, h, size):
        for c in range(0, w, size):
            yield r, c, cube[r:r + size, c:c + size]


def assert_one_line_input_error(excinfo: pytest.ExceptionInfo) -> None:
    message = str(excinfo.value)
    assert message and "\n" not in message


# ---------------------------------------------------------------- ENVI reading


@pytest.mark.parametrize("entry", IO_WITH_DATA, ids=ids(IO_WITH_DATA))
def test_envi_scene_matches_spy_in_shape_dtype_layout_and_values(entry, data_dir):
    header = scene_path(entry)
    spy = spy_open(header)
    expected = np.asarray(spy.open_memmap(interleave="bip"))
    with open_scene(header) as scene:
        assert scene.shape == spy.shape
        assert scene.dtype == np.dtype(spy.dtype).newbyteorder("=")
        assert scene.dtype.byteorder in "=|"
        assert scene.meta.interleave == spy.metadata["interleave"].lower()
        assert scene.meta.byteorder == "<>"[int(spy.metadata["byte order"])]
        assert scene.meta.source_format == "envi"
        assert same_bits(read_all(scene), expected)
        h, w, _ = scene.shape
        r0, c0 = h // 3, w // 4
        window = scene.read(r0, c0, max(1, h - r0 - 1), max(1, w - c0 - 2))
        assert same_bits(window, expected[r0:r0 + window.shape[0], c0:c0 + window.shape[1]])
        assert scene.storage_bytes == Path(spy.filename).stat().st_size + header.stat().st_size


def test_envi_metadata_is_parsed_from_real_headers(data_dir):
    with open_scene(scene_path(next(e for e in IO_WITH_DATA if e["id"] == "aviris_ng_rotated"))) as s:
        m = s.meta
        assert len(m.wavelengths) == len(m.fwhm) == len(m.bbl) == 432
        assert m.wavelengths[0] == pytest.approx(346.2995778)
        assert m.bbl[:8] == [0, 0, 0, 0, 0, 0, 0, 1]
        assert m.wavelength_units == "Nanometers"
        assert "rotation=-66" in m.envi["map info"]
        assert m.description.startswith("Georeferenced Image built from input GLT.")
        assert {"correction factors", "smoothing factors", "sensor type"} <= set(m.envi)
        assert not {"samples", "lines", "bands", "data type", "interleave"} & set(m.envi)
    with open_scene(scene_path(next(e for e in IO_WITH_DATA if e["id"] == "aviris_ng_topoflux"))) as s:
        assert s.meta.nodata == -9999
        assert s.meta.band_names[0] == "376.44 Nanometers" and len(s.meta.band_names) == 425
        assert "coordinate system string" in s.meta.envi


def test_envi_lists_of_the_wrong_length_stay_verbatim_in_envi_fields(data_dir):
    with open_scene(scene_path(next(e for e in IO_WITH_DATA if e["id"] == "emit_like"))) as s:
        assert s.meta.band_names is None
        assert s.meta.envi["band names"] == "{}"
        assert len(s.meta.wavelengths) == 285


@pytest.mark.parametrize("scene_id", ["aviris_ng_rotated", "aviris_ng_chunk"])
def test_envi_scene_opens_from_its_data_file_too(scene_id, data_dir):
    entry = next(e for e in IO_WITH_DATA if e["id"] == scene_id)
    header = scene_path(entry)
    data = next(DATA / f for f in entry["files"] if not f.endswith((".hdr", ".xml")))
    with open_scene(header) as a, open_scene(data) as b:
        assert a.shape == b.shape and same_bits(read_all(a), read_all(b))


def test_header_without_its_data_file_is_a_one_line_input_error(data_dir):
    entry = next(e for e in scenes("io") if e["id"] == "enmap_berlin_header")
    with pytest.raises(InputError, match="data file not found") as excinfo:
        open_scene(scene_path(entry))
    assert_one_line_input_error(excinfo)


def _big_endian_copy(tmp_path: Path, offset: int = 100) -> tuple[Path, np.ndarray]:
    """The FENIX uint16 scene rewritten big-endian with a header offset; returns its pixels."""
    entry = next(e for e in IO_WITH_DATA if e["id"] == "fenix")
    header = scene_path(entry)
    text = header.read_text()
    text = text.replace("byte order = 0", "byte order = 1").replace(
        "header offset = 0", f"header offset = {offset}"
    )
    (tmp_path / "be.hdr").write_text(text)
    raw = np.fromfile(DATA / "scenes/fenix/image.dat", dtype="<u2")
    (tmp_path / "be.dat").write_bytes(b"\xff" * offset + raw.astype(">u2").tobytes())
    return tmp_path / "be.hdr", np.asarray(spy_open(header).open_memmap(interleave="bip"))


def test_big_endian_envi_with_header_offset_reads_like_the_original(tmp_path, data_dir):
    header, expected = _big_endian_copy(tmp_path)
    with open_scene(header) as scene:
        assert scene.meta.byteorder == ">"
        assert scene.dtype == np.dtype("uint16")
        assert same_bits(read_all(scene), expected)


def test_envi_output_keeps_big_endian_byte_order(tmp_path, data_dir):
    header, expected = _big_endian_copy(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    with open_scene(header) as scene:
        write_scene(out / "be.img", "envi", scene.shape, scene.dtype, scene.meta,
                    tiles_of(read_all(scene)))
    spy = spy_open(out / "be.hdr")
    assert spy.metadata["byte order"] == "1"
    assert np.dtype(spy.dtype) == np.dtype(">u2")
    assert same_bits(np.asarray(spy.open_memmap(interleave="bip")), expected)


def test_window_outside_the_scene_is_an_input_error(data_dir):
    with open_scene(scene_path(IO_WITH_DATA[0])) as scene:
        h, w, _ = scene.shape
        with pytest.raises(InputError, match="outside"):
            scene.read(h - 1, 0, 2, w)


# ---------------------------------------------------------------- GeoTIFF and .mat reading


@pytest.mark.parametrize("entry", EVAL, ids=ids(EVAL))
def test_eval_scene_opens_with_manifest_shape_and_dtype(entry, data_dir):
    with open_scene(scene_path(entry), var=mat_var(entry)) as scene:
        assert list(scene.shape) == entry["shape_hwb"]
        assert str(scene.dtype) == entry["dtype"].split()[0].rstrip(",")
        assert same_bits(read_all(scene), reference_cube(entry))


@pytest.mark.parametrize("entry", V73, ids=ids(V73))
def test_mat_v73_scene_is_transposed_to_hwb(entry, data_dir):
    expected = reference_cube(entry)
    with open_scene(scene_path(entry)) as scene:
        assert list(scene.shape) == entry["shape_hwb"]
        assert same_bits(read_all(scene), expected)
        assert same_bits(scene.read(10, 20, 30, 40), expected[10:40, 20:60])


def test_geotiff_metadata_comes_from_tags_and_band_tags(data_dir):
    entry = next(e for e in EVAL if e["format"] == "gtiff" and e["id"].startswith("enmap"))
    with open_scene(scene_path(entry)) as scene, rasterio.open(scene_path(entry)) as ds:
        m = scene.meta
        assert m.source_format == "gtiff" and m.byteorder == "<"
        assert m.nodata == -32768
        assert CRS.from_wkt(m.crs_wkt) == ds.crs
        assert m.transform == list(ds.transform.to_gdal())
        assert m.wavelengths == [float(ds.tags(i)["wavelength"]) for i in range(1, 225)]
        assert m.fwhm[0] == float(ds.tags(1)["fwhm"])
        assert m.wavelength_units == "Nanometers"
        assert m.band_names == list(ds.descriptions)
        assert m.tags["start_time"] == "2022-07-24T10:45:26"
        # wavelength/fwhm/bbl/units are written back from those fields; only text they would not reproduce stays
        assert [t for t in m.band_tags if t] == [{"wavelength": "1026.0"}]


def test_ungeoreferenced_geotiff_has_no_transform(data_dir):
    entry = next(e for e in EVAL if e["id"].startswith("cave_"))
    with open_scene(scene_path(entry)) as scene:
        assert scene.meta.transform is None and scene.meta.crs_wkt is None
        assert scene.meta.wavelengths[:2] == [400.0, 410.0]


def test_mat_wavelength_vector_is_picked_up(data_dir):
    entry = next(e for e in scenes("train") if e["id"] == "gatorsense_aviris_vi")
    with open_scene(scene_path(entry), var="hsi_img") as scene:
        assert len(scene.meta.wavelengths) == scene.shape[2]
        assert scene.meta.wavelengths[0] == pytest.approx(365.910004)


# ---------------------------------------------------------------- round trips


def _check_envi_output(entry: dict, src_meta: SceneMeta, expected: np.ndarray, paths) -> None:
    data, header = paths
    spy = spy_envi.open(str(header), image=str(data))
    md = spy.metadata
    assert spy.shape == expected.shape
    assert np.dtype(spy.dtype).newbyteorder("=") == expected.dtype.newbyteorder("=")
    assert same_bits(np.asarray(spy.open_memmap(interleave="bip")), expected)
    assert md["interleave"] == (src_meta.interleave or "bsq")
    assert md["byte order"] == ("0" if src_meta.byteorder == "<" else "1")
    if src_meta.wavelengths is not None:
        assert [float(x) for x in md["wavelength"]] == src_meta.wavelengths
    for key, values in (("fwhm", src_meta.fwhm), ("bbl", src_meta.bbl)):
        if values is not None:
            assert [float(x) for x in md[key]] == values
    if src_meta.band_names is not None:
        assert md["band names"] == src_meta.band_names
    if src_meta.description is not None:
        assert md["description"].split() == src_meta.description.split()
    if src_meta.nodata is not None:
        assert float(md["data ignore value"]) == src_meta.nodata
    if scene_path(entry).suffix == ".hdr":
        source = spy_open(scene_path(entry)).metadata
        for key in source:
            if key not in ("samples", "lines", "bands", "header offset", "file type"):
                assert key in md, key
        if "map info" in source:
            assert md["map info"] == source["map info"]
    with rasterio.open(data) as ds:
        assert ds.driver == "ENVI"
        assert same_bits(ds.read().transpose(1, 2, 0), expected)
        if src_meta.transform is not None:
            with rasterio.open(_georef_source(entry)) as src:
                assert ds.transform.to_gdal() == pytest.approx(src.transform.to_gdal(), abs=1e-6)
                assert ds.crs == src.crs


def _georef_source(entry: dict) -> Path:
    """The file GDAL reads the source georeferencing from (the data file for ENVI)."""
    path = scene_path(entry)
    if path.suffix != ".hdr":
        return path
    return next(DATA / f for f in entry["files"] if not f.endswith((".hdr", ".xml")))


def _check_gtiff_output(entry: dict, src_meta: SceneMeta, expected: np.ndarray, paths) -> None:
    (tif,) = paths
    with rasterio.open(tif) as ds:
        assert ds.driver == "GTiff"
        assert ds.dtypes[0] == str(expected.dtype.newbyteorder("="))
        assert same_bits(ds.read().transpose(1, 2, 0), expected)
        envi = ds.tags(ns="ENVI")
        if src_meta.wavelengths is not None:
            assert [float(ds.tags(i)["wavelength"]) for i in range(1, ds.count + 1)] == (
                src_meta.wavelengths
            )
            assert [float(x) for x in envi["wavelength"].strip("{}").split(",")] == (
                src_meta.wavelengths
            )
        if src_meta.fwhm is not None:
            assert [float(x) for x in envi["fwhm"].strip("{}").split(",")] == src_meta.fwhm
        if src_meta.bbl is not None:
            assert [float(ds.tags(i)["bbl"]) for i in range(1, ds.count + 1)] == src_meta.bbl
        if src_meta.band_names is not None:
            assert list(ds.descriptions) == src_meta.band_names
        if src_meta.description is not None:
            assert envi["description"].strip("{}") == src_meta.description
        if src_meta.nodata is not None:
            assert ds.nodata == src_meta.nodata
        if "map info" in src_meta.envi:
            assert envi["map info"] == src_meta.envi["map info"]
        for key, value in src_meta.tags.items():
            assert ds.tags()[key] == value
        for i, tags in enumerate(src_meta.band_tags, start=1):
            assert tags.items() <= ds.tags(i).items()
        if entry["format"] == "gtiff":
            with rasterio.open(scene_path(entry)) as src:
                assert [ds.tags(i) for i in range(1, ds.count + 1)] == [src.tags(i) for i in range(1, src.count + 1)]
        if src_meta.transform is not None:
            with rasterio.open(_georef_source(entry)) as src:
                assert ds.transform.to_gdal() == pytest.approx(src.transform.to_gdal(), abs=1e-9)
                assert ds.crs == src.crs


@pytest.mark.parametrize("fmt", ["envi", "gtiff"])
@pytest.mark.parametrize("entry", ROUND_TRIP, ids=ids(ROUND_TRIP))
def test_round_trip_is_bit_identical_and_keeps_metadata(entry, fmt, tmp_path, data_dir):
    expected = reference_cube(entry)
    with open_scene(scene_path(entry), var=mat_var(entry)) as scene:
        cube = read_all(scene)
        assert same_bits(cube, expected)
        suffix = ".img" if fmt == "envi" else ".tif"
        paths = write_scene(tmp_path / f"out{suffix}", fmt, scene.shape, scene.dtype,
                            scene.meta, tiles_of(cube))
        meta = scene.meta
    assert all(p.exists() for p in paths)
    assert sorted(tmp_path.iterdir()) == sorted(paths)
    check = _check_envi_output if fmt == "envi" else _check_gtiff_output
    check(entry, meta, expected, paths)
    with open_scene(paths[-1]) as again:
        assert same_bits(read_all(again), expected)
        assert again.meta.wavelengths == meta.wavelengths
        assert again.meta.band_names == meta.band_names
        assert again.meta.description == meta.description


@pytest.mark.parametrize("scene_id", ["aviris_ng_rotated", "aviris_ng_topoflux"])
def test_map_info_becomes_crs_and_transform_in_geotiff(scene_id, tmp_path, data_dir):
    entry = next(e for e in IO_WITH_DATA if e["id"] == scene_id)
    with open_scene(scene_path(entry)) as scene:
        write_scene(tmp_path / "x.tif", "gtiff", scene.shape, scene.dtype, scene.meta,
                    tiles_of(read_all(scene)))
    with rasterio.open(tmp_path / "x.tif") as ds, rasterio.open(_georef_source(entry)) as src:
        assert ds.crs is not None and ds.crs == src.crs
        assert ds.transform.to_gdal() == pytest.approx(src.transform.to_gdal(), abs=1e-9)
        rotated = ds.transform.b != 0 or ds.transform.d != 0
        assert rotated == (scene_id == "aviris_ng_rotated")


def test_geotiff_georeferencing_becomes_map_info_in_envi(tmp_path, data_dir):
    entry = next(e for e in EVAL if e["id"].startswith("enmap"))
    with open_scene(scene_path(entry)) as scene:
        write_scene(tmp_path / "x.img", "envi", scene.shape, scene.dtype, scene.meta,
                    tiles_of(read_all(scene)))
    md = spy_open(tmp_path / "x.hdr").metadata
    assert md["map info"][:1] == ["UTM"] and "33" in md["map info"]
    assert "coordinate system string" in md


def test_envi_output_named_by_its_header_gets_an_img_data_file(tmp_path, data_dir):
    entry = next(e for e in IO_WITH_DATA if e["id"] == "aviris_classic_pixel")
    with open_scene(scene_path(entry)) as scene:
        paths = write_scene(tmp_path / "p.hdr", "envi", scene.shape, scene.dtype, scene.meta,
                            tiles_of(read_all(scene)))
    assert paths == [tmp_path / "p.img", tmp_path / "p.hdr"]


# ---------------------------------------------------------------- atomicity


def _failing_tiles(cube: np.ndarray):
    yield 0, 0, cube[:8, :8]
    raise RuntimeError("tile coder crashed")


@pytest.mark.parametrize("fmt", ["envi", "gtiff"])
def test_failed_write_leaves_no_file_in_the_output_folder(fmt, tmp_path, data_dir):
    with open_scene(scene_path(next(e for e in IO_WITH_DATA if e["id"] == "fenix"))) as scene:
        cube = read_all(scene)
        with pytest.raises(RuntimeError, match="crashed"):
            write_scene(tmp_path / "x.out", fmt, scene.shape, scene.dtype, scene.meta,
                        _failing_tiles(cube))
        assert list(tmp_path.iterdir()) == []
        with pytest.raises(ValueError, match="cover"):
            write_scene(tmp_path / "x.out", fmt, scene.shape, scene.dtype, scene.meta,
                        tiles_of(cube[:10]))
        assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["envi", "gtiff"])
def test_a_written_scene_is_on_disk_before_it_takes_its_name(fmt, tmp_path, data_dir, monkeypatch):
    """Each file is synced under its temporary name, and only then renamed: after a crash, a final name never
    stands over data that did not reach the disk."""
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("sync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst) -> None:
        events.append(("rename", str(src)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    with open_scene(scene_path(next(e for e in IO_WITH_DATA if e["id"] == "fenix"))) as scene:
        paths = write_scene(tmp_path / "x.out", fmt, scene.shape, scene.dtype, scene.meta, tiles_of(read_all(scene)))
    renamed = [name for kind, name in events if kind == "rename"]
    assert len(renamed) == len(paths)
    for name in renamed:
        assert events.index(("sync", name)) < events.index(("rename", name))


def test_metadata_that_does_not_fit_the_shape_is_a_container_error(tmp_path):
    meta = SceneMeta(source_format="envi", wavelengths=[400.0, 500.0])
    cube = np.zeros((2, 2, 3), "uint16")
    with pytest.raises(ContainerError, match="2 wavelengths for 3 bands"):
        write_scene(tmp_path / "x.tif", "gtiff", cube.shape, cube.dtype, meta, tiles_of(cube))
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- bad inputs


def _text_as_tif(tmp: Path) -> tuple[Path, dict]:
    (tmp / "notes.tif").write_text("these are my field notes, not a raster\n")
    return tmp / "notes.tif", {}


def _short_data_file(tmp: Path) -> tuple[Path, dict]:
    entry = next(e for e in IO_WITH_DATA if e["id"] == "aviris_ng_chunk")
    shutil.copy(scene_path(entry), tmp / "chunk.hdr")
    (tmp / "chunk").write_bytes((DATA / entry["files"][0]).read_bytes()[:1000])
    return tmp / "chunk.hdr", {}


def _unknown_extension(tmp: Path) -> tuple[Path, dict]:
    (tmp / "scene.xyz").write_bytes(b"\0" * 64)
    return tmp / "scene.xyz", {}


def _several_cubes(tmp: Path) -> tuple[Path, dict]:
    scipy.io.savemat(tmp / "two.mat", {"a": np.zeros((4, 5, 6)), "b": np.ones((4, 5, 7))})
    return tmp / "two.mat", {}


def _missing_var(tmp: Path) -> tuple[Path, dict]:
    scipy.io.savemat(tmp / "one.mat", {"cube": np.zeros((4, 5, 6), "uint16")})
    return tmp / "one.mat", {"var": "nope"}


def _no_cube(tmp: Path) -> tuple[Path, dict]:
    scipy.io.savemat(tmp / "flat.mat", {"img": np.zeros((4, 5))})
    return tmp / "flat.mat", {}


def _text_as_mat(tmp: Path) -> tuple[Path, dict]:
    (tmp / "x.mat").write_text("not matlab\n")
    return tmp / "x.mat", {}


def _bool_cube(tmp: Path) -> tuple[Path, dict]:
    scipy.io.savemat(tmp / "mask.mat", {"m": np.zeros((4, 5, 6), bool)})
    return tmp / "mask.mat", {"var": "m"}


def _zero_size(tmp: Path) -> tuple[Path, dict]:
    (tmp / "z.hdr").write_text(
        "ENVI\nsamples = 0\nlines = 3\nbands = 2\ndata type = 2\ninterleave = bsq\n"
    )
    (tmp / "z.img").write_bytes(b"")
    return tmp / "z.hdr", {}


def _complex_envi(tmp: Path) -> tuple[Path, dict]:
    (tmp / "c.hdr").write_text("ENVI\nsamples = 2\nlines = 2\nbands = 1\ndata type = 6\n")
    (tmp / "c.img").write_bytes(b"\0" * 32)
    return tmp / "c.hdr", {}


def _not_a_header(tmp: Path) -> tuple[Path, dict]:
    (tmp / "h.hdr").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 32)
    return tmp / "h.hdr", {}


def _data_without_header(tmp: Path) -> tuple[Path, dict]:
    (tmp / "orphan.img").write_bytes(b"\0" * 64)
    return tmp / "orphan.img", {}


def _missing_file(tmp: Path) -> tuple[Path, dict]:
    return tmp / "nowhere.tif", {}


BAD_INPUTS = {
    "text file renamed .tif": (_text_as_tif, "not a readable GeoTIFF"),
    "header whose data file is too short": (_short_data_file, "too short"),
    "unknown extension": (_unknown_extension, "unknown kind of file"),
    "mat with several 3-D arrays and no var": (_several_cubes, "several 3-D arrays"),
    "mat var not found": (_missing_var, "no variable 'nope'"),
    "mat without a 3-D array": (_no_cube, "no 3-D numeric array"),
    "text file renamed .mat": (_text_as_mat, "not a readable MATLAB file"),
    "mat logical cube": (_bool_cube, "not a 3-D numeric array|unsupported"),
    "zero-size scene": (_zero_size, "empty scene"),
    "complex ENVI data type": (_complex_envi, "unsupported ENVI data type"),
    "binary file named .hdr": (_not_a_header, "not an ENVI header"),
    "ENVI data file without header": (_data_without_header, "no ENVI header"),
    "missing file": (_missing_file, "no such file"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_a_one_line_input_error(case, tmp_path):
    make, message = BAD_INPUTS[case]
    path, kwargs = make(tmp_path)
    with pytest.raises(InputError, match=message) as excinfo:
        open_scene(path, **kwargs)
    assert_one_line_input_error(excinfo)


def test_unknown_output_format_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="unknown output format"):
        write_scene(tmp_path / "x", "png", (1, 1, 1), np.dtype("uint8"),
                    SceneMeta(source_format="mat"), [])


# ---------------------------------------------------------------- discovery


def test_find_scenes_returns_headers_tiffs_and_mats_but_not_data_or_sidecar_files(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b" / "c").mkdir(parents=True)
    for name in ("a/scene.hdr", "a/scene.img", "b/x.tif", "b/x.tif.aux.xml", "b/c/y.mat",
                 "b/c/y.hsic"):
        (tmp_path / name).write_bytes(b"")
    assert find_scenes(tmp_path) == [
        tmp_path / "a/scene.hdr", tmp_path / "b/c/y.mat", tmp_path / "b/x.tif"
    ]


def test_find_scenes_on_the_shared_data_lists_every_manifest_scene(data_dir):
    found = set(find_scenes(data_dir))
    expected = {scene_path(e) for e in scenes("train") + scenes("eval") + scenes("io")}
    assert found == expected


# ---------------------------------------------------------------- SceneMeta JSON


@pytest.mark.parametrize("scene_id", ["aviris_ng_rotated", "enmap_potsdam_192_96", "emit_like"])
def test_scene_meta_survives_strict_json(scene_id, data_dir):
    entry = next(e for e in IO_WITH_DATA + EVAL if e["id"] == scene_id)
    with open_scene(scene_path(entry)) as scene:
        meta = scene.meta
    meta.nodata = float("nan") if scene_id == "emit_like" else meta.nodata
    text = json.dumps(meta.to_json(), allow_nan=False)
    again = SceneMeta.from_json(json.loads(text))
    assert json.dumps(again.to_json(), allow_nan=False) == text
    assert again.band_names == meta.band_names and again.wavelengths == meta.wavelengths


def test_empty_metadata_fields_are_left_out_and_come_back_as_defaults(data_dir):
    """A .mat scene has no wavelengths, map or tags: its stored metadata is only what it has."""
    entry = next(e for e in EVAL if e["id"] == "abu_urban_4")
    with open_scene(scene_path(entry)) as scene:
        meta = scene.meta
    stored = meta.to_json()
    assert set(stored) == {"byteorder", "source_format"}
    assert SceneMeta.from_json(stored) == meta


@pytest.mark.parametrize("scene, first, template", [
    ("enmap_potsdam_192_96", "band 1 (418.24 Nanometers)", "band {i} ({w} Nanometers)"),  # ENVI's default names
    ("cave_feathers", "400 nm", "{g} nm"),
])
def test_band_names_that_follow_the_wavelengths_are_a_template_and_come_back_exactly(data_dir, scene, first,
                                                                                        template):
    entry = next(e for split in ("eval", "train") for e in scenes(split) if e["id"] == scene)
    with open_scene(scene_path(entry)) as opened:
        meta = opened.meta
    assert meta.band_names[0] == first
    stored = meta.to_json()
    assert stored["band_names"] == {"template": template}
    assert SceneMeta.from_json(json.loads(json.dumps(stored))).band_names == meta.band_names
    renamed = dataclasses.replace(meta, band_names=[*meta.band_names[:-1], "my last band"])
    assert SceneMeta.from_json(renamed.to_json()).band_names == renamed.band_names  # kept verbatim


def test_per_band_numbers_are_stored_as_second_differences_and_come_back_exactly(data_dir):
    """On a 224-band EnMAP tile the wavelengths and band widths were most of the file's metadata."""
    entry = next(e for e in EVAL if e["id"] == "enmap_potsdam_192_64")
    with open_scene(scene_path(entry)) as scene:
        meta = scene.meta
    stored, plain = meta.to_json(), meta.to_json(compact=False)
    assert stored["wavelengths"]["decimals"] == 3 and stored["fwhm"]["decimals"] == 5
    assert plain["wavelengths"] == meta.wavelengths and plain["band_names"] == meta.band_names
    again = SceneMeta.from_json(json.loads(json.dumps(stored)))
    assert again == meta
    assert [x.hex() for x in again.wavelengths + again.fwhm] == [x.hex() for x in meta.wavelengths + meta.fwhm]
    deflated = {form: len(zlib.compress(json.dumps(d).encode(), 9)) for form, d in (("stored", stored),
                                                                                   ("plain", plain))}
    assert deflated["stored"] < 0.75 * deflated["plain"]


@pytest.mark.parametrize("values", [
    [0.1 + 0.2, 1.0],  # needs 17 decimals
    [1.0, float("nan"), 2.0],
    [-0.0, 1.0],  # the sign of zero would be lost
    [1e300, 1.0],
])
def test_per_band_numbers_that_are_not_short_decimals_stay_a_plain_list(values):
    meta = SceneMeta(source_format="envi", fwhm=values)
    stored = meta.to_json()
    assert isinstance(stored["fwhm"], list)
    again = SceneMeta.from_json(json.loads(json.dumps(stored))).fwhm
    assert [repr(x) for x in again] == [repr(x) for x in values]


@pytest.mark.parametrize("bad", [
    [],
    {"byteorder": "<"},
    {"source_format": "png"},
    {"source_format": "envi", "byteorder": "little"},
    {"source_format": "envi", "wavelengths": ["a"]},
    {"source_format": "envi", "nodata": True},
    {"source_format": "envi", "transform": [1, 2, 3]},
    {"source_format": "envi", "tags": {"a": 1}},
    {"source_format": "envi", "band_tags": [{"a": "1"}, "x"]},
    {"source_format": "envi", "interleave": "bsx"},
    {"source_format": "envi", "band_names": {"template": "band {i}"}},  # no wavelengths to count the bands
    {"source_format": "envi", "wavelengths": [1.0], "band_names": {"template": 1}},
    {"source_format": "envi", "wavelengths": [1.0], "band_names": {"template": "{w}", "more": ""}},
    {"source_format": "envi", "wavelengths": {"decimals": 3}},
    {"source_format": "envi", "wavelengths": {"decimals": -1, "second_differences": [1]}},
    {"source_format": "envi", "wavelengths": {"decimals": 2, "second_differences": [1.5]}},
    {"source_format": "envi", "fwhm": {"decimals": 0, "second_differences": [2**60]}},
    {"source_format": "envi", "bbl": {"decimals": 0, "second_differences": [True]}},
    {"source_format": "envi", "bbl": {"decimals": 0, "second_differences": [1], "extra": 1}},
])
def test_malformed_scene_meta_json_is_a_container_error(bad):
    with pytest.raises(ContainerError):
        SceneMeta.from_json(bad)
