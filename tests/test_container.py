"""The `.hsic` container v4 (hsicodec.container, docs/format.md)."""
from __future__ import annotations

import dataclasses
import json
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest

from hsicodec.container import (MAGIC, CodedLatents, FileHeader, HsicReader, HsicWriter, Normalisation, PlaneGroup,
                                SectionId, SpectralBasis, TilePayload, quantise_basis, side_bytes, tile_section_bytes)
from hsicodec.errors import ContainerError

SHA = "0123456789abcdef" * 4
METADATA = {"wavelength": [400.5, 410.25, 420.0, 430.0], "description": "Zürich ✓", "map info": ["UTM", 1, 2],
            "nodata": None}


def make_header(components: int = 3, height: int = 21, width: int = 30, tile_size: int = 16) -> FileHeader:
    return FileHeader(height=height, width=width, bands=4, dtype="int16", byteorder=">", tile_size=tile_size,
                      components=components, model_name="hific-klt-0.25", model_sha256=SHA)


def make_basis(k: int = 3, b: int = 4, seed: int = 0) -> SpectralBasis:
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(b, b)))
    return SpectralBasis(rng.normal(100, 20, b).astype(np.float32), q[:k].astype(np.float32))


def make_tiles(header: FileHeader, seed: int = 1) -> list[TilePayload]:
    """Tiles with distinct words; odd tiles carry a nodata mask."""
    rng = np.random.default_rng(seed)
    tiles = []
    for index, (row0, col0, height, width) in enumerate(header.tile_grid()):
        mask = rng.random((height, width, header.bands)) < 0.2 if index % 2 else None
        tiles.append(TilePayload(index=index, row0=row0, col0=col0, height=height, width=width,
                                 y_shape=(8, 1 + index, 2), z_shape=(4, 1, 1),
                                 y_words=rng.integers(0, 2**32, 5 + index, dtype=np.uint32),
                                 z_words=np.arange(index, dtype=np.uint32), symbol_crc=0xDEADBEEF - index,
                                 nodata_mask=mask,
                                 groups=tuple(CodedLatents((8, 1, 1 + index), (4, 1, 1),
                                                           rng.integers(0, 2**32, 3 + g, dtype=np.uint32),
                                                           rng.integers(0, 2**32, 1 + index, dtype=np.uint32),
                                                           0xC0FFEE + g)
                                              for g in range(len(header.plane_groups)))))
    return tiles


def grouped(header: FileHeader) -> FileHeader:
    """The header with two further plane groups: planes 1 and 2 of its 3 components."""
    return dataclasses.replace(header, plane_groups=(PlaneGroup(1, 1, 2.0, 3.5), PlaneGroup(2, 1, 4.0, 8.0)))


def write(path: Path, header: FileHeader, basis: SpectralBasis | None, tiles: list[TilePayload]) -> Path:
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
    for name in ("index", "row0", "col0", "height", "width", "y_shape", "z_shape", "symbol_crc"):
        assert getattr(read, name) == getattr(written, name), name
    for name in ("y_words", "z_words"):
        assert getattr(read, name).dtype == np.uint32
        np.testing.assert_array_equal(getattr(read, name), getattr(written, name))
    if written.nodata_mask is None:
        assert read.nodata_mask is None
    else:
        assert read.nodata_mask.dtype == np.bool_
        np.testing.assert_array_equal(read.nodata_mask, written.nodata_mask)
    assert len(read.groups) == len(written.groups)
    for got, wrote in zip(read.groups, written.groups):
        assert (got.y_shape, got.z_shape, got.symbol_crc) == (wrote.y_shape, wrote.z_shape, wrote.symbol_crc)
        np.testing.assert_array_equal(got.y_words, wrote.y_words)
        np.testing.assert_array_equal(got.z_words, wrote.z_words)


@pytest.mark.parametrize("components", [3, 0])
def test_write_read_round_trip_preserves_every_field(tmp_path, components):
    header = make_header(components)
    basis = make_basis() if components else None
    tiles = make_tiles(header)
    path = write(tmp_path / "scene.hsic", header, basis, tiles[::-1])  # any tile order
    with HsicReader(path) as reader:
        assert reader.header == header and reader.version == (4, 0)
        assert reader.norm == Normalisation(-3.5, 4095.0)
        assert reader.metadata == METADATA
        assert reader.file_bytes == path.stat().st_size
        if basis is None:
            assert reader.basis is None
        else:
            expected = quantise_basis(basis)
            np.testing.assert_array_equal(reader.basis.mean, expected.mean)
            np.testing.assert_array_equal(reader.basis.basis, expected.basis)
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
    basis = make_basis(k=4, b=4, seed=3)
    basis.basis[1] = 0.0  # all-nodata scenes get zero rows
    basis.basis[2] *= 1e-30
    basis.basis[3] = [2.0**-5, -1.0, 0.5, 0.25]  # peak an exact power of two
    once = quantise_basis(basis)
    twice = quantise_basis(once)
    np.testing.assert_array_equal(once.basis, twice.basis)
    np.testing.assert_array_equal(once.mean, twice.mean)
    # unit variances: the mean and 4 rows share the 1e-5 budget, steps of 2**-8 for all five
    assert (once.exponents == -8).all()
    assert np.abs(once.basis - basis.basis).max() <= 2.0**-9
    assert np.abs(once.mean - basis.mean).max() <= 2.0**-9
    header = FileHeader(**{**make_header(4).__dict__, "height": 5, "width": 5})
    path = write(tmp_path / "b.hsic", header, basis, make_tiles(header))
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
    packed_metadata = zlib.compress(json.dumps(METADATA, ensure_ascii=False, separators=(",", ":")).encode(), 9)
    at = 20 if where == "header" else data.index(packed_metadata) + 8
    data[at] ^= 0x04
    with pytest.raises(ContainerError, match="CRC"):
        HsicReader(patched(path, data))


def test_a_flipped_bit_in_a_tile_names_the_tile(tmp_path):
    header = make_header()
    tiles = make_tiles(header)
    path = write(tmp_path / "t.hsic", header, make_basis(), tiles)
    data = bytearray(path.read_bytes())
    data[data.index(tiles[2].y_words.tobytes()) + 3] ^= 0x10
    with HsicReader(patched(path, data)) as reader:
        assert_tiles_equal(reader.read_tile(1), tiles[1])
        with pytest.raises(ContainerError, match="tile 2"):
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
    struct.pack_into("<HH", data, 8, 5, 0)
    with pytest.raises(ContainerError,
                       match=r"unsupported \.hsic version 5\.0 \(this hsicodec reads 1\.x, 2\.x, 3\.x and 4\.x\)"):
        HsicReader(patched(path, data))
    struct.pack_into("<HH", data, 8, 4, 7)
    with HsicReader(patched(path, reheader(data))) as reader:
        assert reader.version == (4, 7)
        assert_tiles_equal(reader.read_tile(0), tiles[0])


def as_older_version(data: bytes, major: int) -> bytearray:
    """The same file (of one plane group) as a writer of `major` made it: 3.x has no plane group count,
    2.x no plane_gain either, 1.x not the latent_step either."""
    (size,) = struct.unpack_from("<I", data, 12)
    cut = 2 + 8 * (3 - major)  # the u16 count and the f64 fields added by the later majors, at the header's end
    old = bytearray(data[:16 + size - cut] + data[16 + size + 4:])
    struct.pack_into("<HHI", old, 8, major, 0, size - cut)
    old[16 + size - cut:16 + size - cut] = b"\0\0\0\0"
    return reheader(old)


@pytest.mark.parametrize("major", [1, 2, 3])
def test_older_files_are_read_as_one_group_with_the_trained_step_and_gain_1(small_file, major):
    path, tiles = small_file
    with HsicReader(patched(path, as_older_version(path.read_bytes(), major))) as reader:
        assert reader.version == (major, 0)
        assert reader.header.latent_step == 1.0 and reader.header.plane_gain == 1.0
        assert reader.header == make_header(height=10, width=20, tile_size=16)
        assert reader.header.groups == (PlaneGroup(0, 3, 1.0, 1.0),)
        assert_tiles_equal(reader.read_tile(1), tiles[1])


@pytest.mark.parametrize("major", [2, 3])
def test_older_files_keep_their_latent_step_and_gain(tmp_path, major):
    header = dataclasses.replace(make_header(), latent_step=2.0 ** (5 / 16), plane_gain=2.0 ** -0.5)
    path = write(tmp_path / "stepped.hsic", header, make_basis(), make_tiles(header))
    with HsicReader(patched(path, as_older_version(path.read_bytes(), major))) as reader:
        assert reader.header.latent_step == header.latent_step
        assert reader.header.plane_gain == (header.plane_gain if major == 3 else 1.0)


def test_plane_groups_round_trip_with_their_streams(tmp_path):
    header = grouped(make_header())
    tiles = make_tiles(header)
    path = write(tmp_path / "grouped.hsic", header, make_basis(), tiles)
    with HsicReader(path) as reader:
        assert reader.header == header
        assert reader.header.groups == (PlaneGroup(0, 1, 1.0, 1.0), *header.plane_groups)
        for tile in tiles:
            assert_tiles_equal(reader.read_tile(tile.index), tile)
    expected = side_bytes(header, Normalisation(-3.5, 4095.0), make_basis(), METADATA) + sum(
        tile_section_bytes(t.y_words.size, t.z_words.size, t.nodata_mask,
                           [g.y_words.size + g.z_words.size for g in t.groups]) for t in tiles)
    assert path.stat().st_size == expected


@pytest.mark.parametrize("groups, match", [
    ((PlaneGroup(0, 1, 2.0, 1.0),), "plane group 1"),  # group 0 would hold no plane
    ((PlaneGroup(1, 1, 2.0, 1.0), PlaneGroup(1, 1, 2.0, 1.0)), "plane group 2"),  # overlap
    ((PlaneGroup(1, 3, 2.0, 1.0),), "plane group 1"),  # beyond the 3 components
    ((PlaneGroup(1, 1, 0.0, 1.0),), "latent_step"),
    ((PlaneGroup(1, 1, 2.0, 100.0),), "plane_gain"),
])
def test_plane_groups_that_do_not_tile_the_planes_are_refused(tmp_path, groups, match):
    header = dataclasses.replace(make_header(), plane_groups=groups)
    with pytest.raises(ValueError, match=match):
        HsicWriter(tmp_path / "bad.hsic", header, Normalisation(0, 1), make_basis(), {})
    path = write(tmp_path / "good.hsic", grouped(make_header()), make_basis(), make_tiles(grouped(make_header())))
    data = bytearray(path.read_bytes())
    at = 16 + struct.calcsize("<5IBB32sH") + len(header.model_name) + 18  # after the step, gain and group count
    for n, group in enumerate(groups):
        struct.pack_into("<HHdd", data, at + 20 * n, group.first, group.planes, group.latent_step, group.plane_gain)
    struct.pack_into("<H", data, at - 2, len(groups))
    if len(groups) == 1:  # one group fewer: the header is 20 bytes shorter
        del data[at + 20:at + 40]
        (size,) = struct.unpack_from("<I", data, 12)
        struct.pack_into("<I", data, 12, size - 20)
    with pytest.raises(ContainerError, match=match):
        HsicReader(patched(path, reheader(data)))
    assert not list(tmp_path.glob("*bad*"))


def test_a_tile_without_its_groups_streams_is_refused(tmp_path):
    header = grouped(make_header())
    tiles = make_tiles(header)
    with pytest.raises(ValueError, match="further plane groups"):
        with HsicWriter(tmp_path / "bad.hsic", header, Normalisation(0, 1), make_basis(), {}) as writer:
            writer.add_tile(dataclasses.replace(tiles[0], groups=tiles[0].groups[:1]))
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("field, offset, bad_values", [
    ("latent_step", 0, (0.0, -1.0, float("nan"), float("inf"), 1e3)),
    ("plane_gain", 8, (0.0, -0.5, float("nan"), float("inf"), 2.0 ** -5, 17.0)),
])
def test_step_and_gain_round_trip_and_absurd_values_are_refused(tmp_path, field, offset, bad_values):
    header = dataclasses.replace(make_header(), latent_step=2.0 ** (5 / 16), plane_gain=2.0 ** -0.5)
    path = write(tmp_path / "stepped.hsic", header, make_basis(), make_tiles(header))
    with HsicReader(path) as reader:
        assert reader.header == header
    data = bytearray(path.read_bytes())
    at = 16 + struct.calcsize("<5IBB32sH") + len(header.model_name) + offset  # both f64, after the model name
    for bad in bad_values:
        struct.pack_into("<d", data, at, bad)
        with pytest.raises(ContainerError, match=field):
            HsicReader(patched(path, reheader(data)))
        with pytest.raises(ValueError, match=field):
            HsicWriter(tmp_path / "bad.hsic", dataclasses.replace(header, **{field: bad}),
                       Normalisation(0, 1), make_basis(), {})
    assert not list(tmp_path.glob("*bad*"))


@pytest.mark.parametrize("patch", ["bands", "tiles", "header_size", "section_length"])
def test_absurd_sizes_fail_fast_without_allocating(small_file, patch):
    path, _ = small_file
    data = bytearray(path.read_bytes())
    if patch == "bands":
        struct.pack_into("<I", data, 16 + 8, 2**31)
    elif patch == "tiles":
        struct.pack_into("<II", data, 16, 2**32 - 1, 2**32 - 1)
        struct.pack_into("<I", data, 16 + 12, 1)
    elif patch == "header_size":
        struct.pack_into("<I", data, 12, 2**32 - 1)
    else:
        struct.pack_into("<Q", data, first_section(data) + 2, 2**60)
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
        HsicWriter(tmp_path / "x.hsic", header, Normalisation(0, 1), None, {})  # components=3 needs a basis
    with pytest.raises(ValueError):
        HsicWriter(tmp_path / "x.hsic", header, Normalisation(0, 1), make_basis(), {"bad": object()})
    with HsicWriter(tmp_path / "x.hsic", header, Normalisation(0, 1), make_basis(), {}) as writer:
        with pytest.raises(ValueError, match="geometry"):
            writer.add_tile(TilePayload(**{**tile.__dict__, "row0": 3}))
        with pytest.raises(ValueError, match="uint32"):
            writer.add_tile(TilePayload(**{**tile.__dict__, "y_words": tile.y_words.astype(np.int64)}))
        for t in make_tiles(header):
            writer.add_tile(t)
        with pytest.raises(ValueError, match="twice"):
            writer.add_tile(tile)


def test_an_unknown_section_id_is_skipped(small_file):
    path, tiles = small_file
    data = path.read_bytes()
    payload = b"from a future minor version"
    head = struct.pack("<HQ", 0x0777, len(payload))
    unknown = head + payload + struct.pack("<I", zlib.crc32(head + payload))
    end = len(data) - 14  # the END section: id, length 0, crc
    assert struct.unpack_from("<H", data, end)[0] == SectionId.END
    with HsicReader(patched(path, data[:end] + unknown + data[end:])) as reader:
        assert reader.metadata == METADATA
        assert_tiles_equal(reader.read_tile(1), tiles[1])


def test_a_file_without_end_or_with_trailing_bytes_is_refused(small_file):
    path, _ = small_file
    data = path.read_bytes()
    with pytest.raises(ContainerError, match="truncated"):
        HsicReader(patched(path, data[:-14]))
    with pytest.raises(ContainerError, match="trailing"):
        HsicReader(patched(path, data + b"\0"))


def test_side_and_tile_section_sizes_add_up_to_the_file_size(tmp_path):
    header = make_header()
    tiles = make_tiles(header)
    path = write(tmp_path / "sized.hsic", header, make_basis(), tiles)
    expected = side_bytes(header, Normalisation(-3.5, 4095.0), make_basis(), METADATA) + sum(
        tile_section_bytes(t.y_words.size, t.z_words.size, t.nodata_mask) for t in tiles)
    assert any(t.nodata_mask is not None for t in tiles)
    assert path.stat().st_size == expected
