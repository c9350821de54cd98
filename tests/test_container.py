"""The `.hsic` container v6 (hsicodec.container, docs/format.md)."""
from __future__ import annotations

import dataclasses
import json
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest

from hsicodec.container import (MAGIC, FileHeader, HsicReader, HsicWriter, Normalisation, SectionId, SpectralBasis,
                                TilePayload, quantise_basis, side_bytes, tile_section_bytes)
from hsicodec.errors import ContainerError
from hsicodec.metadata_dictionary import METADATA_DICTIONARY

MODEL_ID = "0123456789abcdef"
FROZEN_DICTIONARY_CRC = 0x8A574ADA
METADATA = {"wavelength": [400.5, 410.25, 420.0, 430.0], "description": "Zürich ✓", "map info": ["UTM", 1, 2],
            "nodata": None}


def make_header(components: int = 3, height: int = 21, width: int = 30, tile_size: int = 16) -> FileHeader:
    return FileHeader(height=height, width=width, bands=4, dtype="int16", byteorder=">", tile_size=tile_size,
                      components=components, model_name="wavelet-pyramid", model_id=MODEL_ID, step=2.0 ** -7)


def make_basis(k: int = 3, b: int = 4, seed: int = 0) -> SpectralBasis:
    """k orthonormal rows and a mean, quantised as a file stores them."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(b, b)))
    return quantise_basis(SpectralBasis(rng.normal(100, 20, b).astype(np.float32), q[:k].astype(np.float32)),
                          None, 1e-5)


def make_tiles(header: FileHeader, seed: int = 1) -> list[TilePayload]:
    """Tiles with distinct words; odd tiles carry a nodata mask."""
    rng = np.random.default_rng(seed)
    tiles = []
    for index, (row0, col0, height, width) in enumerate(header.tile_grid()):
        mask = rng.random((height, width, header.bands)) < 0.2 if index % 2 else None
        tiles.append(TilePayload(index=index, row0=row0, col0=col0, height=height, width=width,
                                 words=rng.integers(0, 2**32, 5 + index, dtype=np.uint32),
                                 value_crc=0xDEADBEEF - index, nodata_mask=mask))
    return tiles


def write(path: Path, header: FileHeader, basis: SpectralBasis, tiles: list[TilePayload]) -> Path:
    with HsicWriter(path, header, Normalisation(-3.5, 4095.0), basis, METADATA) as writer:
        for tile in tiles:
            writer.add_tile(tile)
    return path


@pytest.fixture
def small_file(tmp_path: Path) -> tuple[Path, list[TilePayload]]:
    header = make_header(height=10, width=20, tile_size=16)
    tiles = make_tiles(header)
    return write(tmp_path / "small.hsic", header, make_basis(), tiles), tiles


def reheader(data: bytearray) -> bytearray:
    """Recompute the header CRC after patching header fields."""
    (size,) = struct.unpack_from("<I", data, 12)
    struct.pack_into("<I", data, 16 + size, zlib.crc32(bytes(data[:16 + size])))
    return data


def first_section(data: bytes) -> int:
    (size,) = struct.unpack_from("<I", data, 12)
    return 16 + size + 4


def patched(path: Path, data: bytes) -> Path:
    out = path.with_name("patched.hsic")
    out.write_bytes(bytes(data))
    return out


def assert_tiles_equal(read: TilePayload, written: TilePayload) -> None:
    for name in ("index", "row0", "col0", "height", "width", "value_crc"):
        assert getattr(read, name) == getattr(written, name), name
    assert read.words.dtype == np.uint32
    np.testing.assert_array_equal(read.words, written.words)
    if written.nodata_mask is None:
        assert read.nodata_mask is None
    else:
        assert read.nodata_mask.dtype == np.bool_
        np.testing.assert_array_equal(read.nodata_mask, written.nodata_mask)


@pytest.mark.parametrize("components", [3, 0])
def test_write_read_round_trip_preserves_every_field(tmp_path, components):
    header = make_header(components)
    basis = make_basis(components)
    tiles = make_tiles(header)
    path = write(tmp_path / "scene.hsic", header, basis, tiles[::-1])  # any tile order
    with HsicReader(path) as reader:
        assert reader.header == header and reader.version == (6, 0)
        assert reader.norm == Normalisation(-3.5, 4095.0)
        assert reader.metadata == METADATA
        assert reader.file_bytes == path.stat().st_size
        np.testing.assert_array_equal(reader.basis.mean, basis.mean)
        np.testing.assert_array_equal(reader.basis.basis, basis.basis)
        assert reader.basis.basis.shape == (components, 4)
        assert reader.basis.basis.dtype == np.float32 and reader.basis.mean.dtype == np.float32
        assert any(t.nodata_mask is None for t in tiles) and any(t.nodata_mask is not None for t in tiles)
        for tile in tiles:
            assert_tiles_equal(reader.read_tile(tile.index), tile)
    assert [p.name for p in tmp_path.iterdir()] == ["scene.hsic"]


def test_basis_error_stays_within_budget_with_coarser_steps_for_weak_components():
    rng = np.random.default_rng(5)
    rows = np.linalg.qr(rng.normal(size=(50, 8)))[0].T.astype(np.float32)
    variances = np.array([4.0, 1.0, 0.1, 1e-2, 1e-3, 1e-4, 1e-5, 0.0])
    basis = SpectralBasis(rng.random(50).astype(np.float32), rows)
    stored = quantise_basis(basis, variances, error_budget=1e-6)
    assert np.all(np.diff(stored.exponents[1:]) >= 0)
    components = rng.normal(size=(20000, 8)) * np.sqrt(variances)
    added = ((components @ (stored.basis - rows).astype(np.float64)) ** 2).mean()
    assert added <= 1e-6
    again = quantise_basis(stored, variances, error_budget=1e-6)
    np.testing.assert_array_equal(again.basis, stored.basis)


def test_quantise_basis_is_idempotent_and_is_what_the_reader_returns(tmp_path):
    rng = np.random.default_rng(3)
    basis = SpectralBasis(rng.normal(100, 20, 4).astype(np.float32),
                          np.linalg.qr(rng.normal(size=(4, 4)))[0].astype(np.float32))
    basis.basis[1] = 0.0
    basis.basis[2] *= 1e-30
    basis.basis[3] = [2.0**-5, -1.0, 0.5, 0.25]  # peak an exact power of two
    once = quantise_basis(basis, None, 1e-5)
    twice = quantise_basis(once, None, 1e-5)
    np.testing.assert_array_equal(once.basis, twice.basis)
    np.testing.assert_array_equal(once.mean, twice.mean)
    # unit variances: the mean and 4 rows share the 1e-5 budget, steps of 2**-8 for all five
    assert (once.exponents == -8).all()
    assert np.abs(once.basis - basis.basis).max() <= 2.0**-9
    assert np.abs(once.mean - basis.mean).max() <= 2.0**-9
    header = FileHeader(**{**make_header(4).__dict__, "height": 5, "width": 5})
    path = write(tmp_path / "b.hsic", header, once, make_tiles(header))
    with HsicReader(path) as reader:
        np.testing.assert_array_equal(reader.basis.basis, once.basis)
        np.testing.assert_array_equal(reader.basis.mean, once.mean)


def test_tile_grid_and_window_lookup(tmp_path):
    header = make_header()  # 21 x 30, tiles of 16: 2 x 2 grid
    assert header.n_tiles == 4
    assert header.tile_grid() == [(0, 0, 16, 16), (0, 16, 16, 14), (16, 0, 5, 16), (16, 16, 5, 14)]
    with HsicReader(write(tmp_path / "w.hsic", header, make_basis(), make_tiles(header))) as reader:
        assert reader.tiles_in_window(0, 0, 21, 30) == [0, 1, 2, 3]
        assert reader.tiles_in_window(15, 16, 2, 1) == [1, 3]
        assert reader.tiles_in_window(20, 0, 1, 16) == [2]
        with pytest.raises(ValueError):
            reader.tiles_in_window(0, 0, 22, 30)


def test_truncation_at_every_offset_is_a_container_error(small_file):
    path, _ = small_file
    data = path.read_bytes()
    assert len(data) < 2000
    for cut in range(len(data)):
        with pytest.raises(ContainerError):
            HsicReader(patched(path, data[:cut]))


@pytest.mark.parametrize("where", ["header", "metadata"])
def test_a_flipped_bit_in_the_header_or_metadata_fails_at_open(small_file, where):
    path, _ = small_file
    data = bytearray(path.read_bytes())
    deflater = zlib.compressobj(9, zdict=METADATA_DICTIONARY)
    packed_metadata = deflater.compress(json.dumps(METADATA, ensure_ascii=False, separators=(",", ":")).encode())
    packed_metadata += deflater.flush()
    at = 20 if where == "header" else data.index(packed_metadata) + 8
    data[at] ^= 0x04
    with pytest.raises(ContainerError, match="CRC"):
        HsicReader(patched(path, data))


def test_a_flipped_bit_in_a_tile_names_the_tile(tmp_path):
    header = make_header()
    tiles = make_tiles(header)
    path = write(tmp_path / "t.hsic", header, make_basis(), tiles)
    data = bytearray(path.read_bytes())
    data[data.index(tiles[2].words.tobytes()) + 3] ^= 0x10
    with HsicReader(patched(path, data)) as reader:
        assert_tiles_equal(reader.read_tile(1), tiles[1])
        with pytest.raises(ContainerError, match="tile 2"):
            reader.read_tile(2)


def test_a_tile_section_rewritten_while_the_file_is_open_is_named(tmp_path):
    """The index of tiles is read at open; a section that holds another tile by the time it is read (the
    file was rewritten meanwhile, CRC and all) is an error, not that other tile's pixels."""
    header = make_header()
    tiles = make_tiles(header)
    path = write(tmp_path / "t.hsic", header, make_basis(), tiles)
    with HsicReader(path) as reader:
        data = bytearray(path.read_bytes())
        words = data.index(tiles[2].words.tobytes())
        head = words - 12  # the tile's index, value CRC and mask length, and before them the section's id and
        start = head - 6  # length (docs/format.md §3, §3.4); its CRC follows the words (no mask here)
        end = words + tiles[2].words.nbytes
        struct.pack_into("<I", data, head, 1)
        struct.pack_into("<I", data, end, zlib.crc32(bytes(data[start:end])))
        path.write_bytes(bytes(data))
        with pytest.raises(ContainerError, match="tile 2: its section now holds tile 1"):
            reader.read_tile(2)


def test_wrong_magic_is_refused(small_file):
    path, _ = small_file
    data = bytearray(path.read_bytes())
    data[1:5] = b"HDF5"
    with pytest.raises(ContainerError, match="magic"):
        HsicReader(patched(path, data))
    with pytest.raises(ContainerError, match="magic"):
        HsicReader(patched(path, b"ENVI\ndescription = {x}\n"))


def test_unknown_major_version_is_refused_and_unknown_minor_is_read(small_file):
    path, tiles = small_file
    data = bytearray(path.read_bytes())
    assert data[:8] == MAGIC
    for major in (5, 7):  # files of the earlier design and of a later one
        struct.pack_into("<HH", data, 8, major, 0)
        with pytest.raises(ContainerError,
                           match=rf"unsupported \.hsic version {major}\.0 \(this hsicodec reads 6\.x\)"):
            HsicReader(patched(path, data))
    struct.pack_into("<HH", data, 8, 6, 7)
    with HsicReader(patched(path, reheader(data))) as reader:
        assert reader.version == (6, 7)
        assert_tiles_equal(reader.read_tile(0), tiles[0])


def test_the_step_round_trips_and_absurd_steps_are_refused(tmp_path):
    field, offset, bad_values = "step", 0, (0.0, -1.0, float("nan"), float("inf"), 1e3)
    header = dataclasses.replace(make_header(), step=2.0 ** (-105 / 16))
    path = write(tmp_path / "stepped.hsic", header, make_basis(), make_tiles(header))
    with HsicReader(path) as reader:
        assert reader.header == header
    data = bytearray(path.read_bytes())
    at = 16 + struct.calcsize("<IIHHHBB8sH") + len(header.model_name) + offset  # f64, after the model name
    for bad in bad_values:
        struct.pack_into("<d", data, at, bad)
        with pytest.raises(ContainerError, match=field):
            HsicReader(patched(path, reheader(data)))
        with pytest.raises(ValueError, match=field):
            HsicWriter(tmp_path / "bad.hsic", dataclasses.replace(header, **{field: bad}),
                       Normalisation(0, 1), make_basis(), {})
    assert not list(tmp_path.glob("*bad*"))


def test_a_non_finite_value_range_is_refused(tmp_path):
    header = make_header()
    path = write(tmp_path / "ranged.hsic", header, make_basis(), make_tiles(header))
    data = bytearray(path.read_bytes())
    at = 16 + struct.calcsize("<IIHHHBB8sH") + len(header.model_name) + 8  # lo, after the step
    struct.pack_into("<d", data, at, float("nan"))
    with pytest.raises(ContainerError, match="value range"):
        HsicReader(patched(path, reheader(data)))
    with pytest.raises(ValueError, match="not finite"):
        HsicWriter(tmp_path / "bad.hsic", header, Normalisation(0, float("inf")), make_basis(), {})
    assert not list(tmp_path.glob("*bad*"))


def test_the_metadata_dictionary_is_frozen_and_pays():
    """The dictionary is part of the format (a change is a new major version), and it must earn its place."""
    assert zlib.crc32(METADATA_DICTIONARY) == FROZEN_DICTIONARY_CRC
    text = json.dumps(METADATA, ensure_ascii=False, separators=(",", ":")).encode()
    deflater = zlib.compressobj(9, zdict=METADATA_DICTIONARY)
    assert len(deflater.compress(text) + deflater.flush()) < len(zlib.compress(text, 9))


@pytest.mark.parametrize("patch", ["bands", "tiles", "header_size", "section_length"])
def test_absurd_sizes_fail_fast_without_allocating(small_file, patch):
    path, _ = small_file
    data = bytearray(path.read_bytes())
    if patch == "bands":
        struct.pack_into("<H", data, 16 + 8, 2**16 - 1)
    elif patch == "tiles":
        struct.pack_into("<II", data, 16, 2**32 - 1, 2**32 - 1)
        struct.pack_into("<H", data, 16 + 10, 1)
    elif patch == "header_size":
        struct.pack_into("<I", data, 12, 2**32 - 1)
    else:
        struct.pack_into("<I", data, first_section(data) + 2, 2**32 - 1)
    target = patched(path, reheader(data) if patch in ("bands", "tiles") else data)
    tracemalloc.start()
    try:
        with pytest.raises(ContainerError):
            HsicReader(target)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_an_exception_inside_the_writer_leaves_no_file(tmp_path):
    header = make_header()
    tiles = make_tiles(header)
    with pytest.raises(RuntimeError):
        with HsicWriter(tmp_path / "x.hsic", header, Normalisation(0, 1), make_basis(), {}) as writer:
            writer.add_tile(tiles[0])
            raise RuntimeError("encoder failed")
    with pytest.raises(ContainerError, match="1 of 4 tiles"):
        with HsicWriter(tmp_path / "x.hsic", header, Normalisation(0, 1), make_basis(), {}) as writer:
            writer.add_tile(tiles[0])
    assert list(tmp_path.iterdir()) == []


def test_the_writer_refuses_inconsistent_input(tmp_path):
    header = make_header()
    tile = make_tiles(header)[1]
    with pytest.raises(ValueError):
        HsicWriter(tmp_path / "x.hsic", header, Normalisation(0, 1), make_basis(2), {})  # 3 components, 2 rows
    with pytest.raises(ValueError):
        HsicWriter(tmp_path / "x.hsic", header, Normalisation(0, 1), make_basis(), {"bad": object()})
    with HsicWriter(tmp_path / "x.hsic", header, Normalisation(0, 1), make_basis(), {}) as writer:
        with pytest.raises(ValueError, match="geometry"):
            writer.add_tile(TilePayload(**{**tile.__dict__, "row0": 3}))
        with pytest.raises(ValueError, match="uint32"):
            writer.add_tile(TilePayload(**{**tile.__dict__, "words": tile.words.astype(np.int64)}))
        for t in make_tiles(header):
            writer.add_tile(t)
        with pytest.raises(ValueError, match="twice"):
            writer.add_tile(tile)


def test_an_unknown_section_id_is_skipped(small_file):
    path, tiles = small_file
    data = path.read_bytes()
    payload = b"from a future minor version"
    head = struct.pack("<HI", 0x0777, len(payload))
    unknown = head + payload + struct.pack("<I", zlib.crc32(head + payload))
    end = len(data) - 10  # the END section: id, length 0, crc
    assert struct.unpack_from("<H", data, end)[0] == SectionId.END
    with HsicReader(patched(path, data[:end] + unknown + data[end:])) as reader:
        assert reader.metadata == METADATA
        assert_tiles_equal(reader.read_tile(1), tiles[1])


def test_a_file_without_end_or_with_trailing_bytes_is_refused(small_file):
    path, _ = small_file
    data = path.read_bytes()
    with pytest.raises(ContainerError, match="truncated"):
        HsicReader(patched(path, data[:-10]))
    with pytest.raises(ContainerError, match="trailing"):
        HsicReader(patched(path, data + b"\0"))


def test_side_and_tile_section_sizes_add_up_to_the_file_size(tmp_path):
    header = make_header()
    tiles = make_tiles(header)
    path = write(tmp_path / "sized.hsic", header, make_basis(), tiles)
    expected = side_bytes(header, Normalisation(-3.5, 4095.0), make_basis(), METADATA) + sum(
        tile_section_bytes(t.words.size, t.nodata_mask) for t in tiles)
    assert any(t.nodata_mask is not None for t in tiles)
    assert path.stat().st_size == expected
