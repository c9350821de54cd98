"""Fuzzing the .hsic reader with a real file: every damage ends in a one-line ContainerError.

Cases: every single-bit flip, every truncation (strict and salvage), random bytes,
random overwrites, insertions and deletions (hypothesis), duplicated and missing
sections, and a coverage-guided atheris run in a subprocess. Each case must end
within a time bound, in a clean read or in the project's own error.
"""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_helpers import REPO
from conftest import scene_path, scenes
from hsicodec.checkpoints import find_model, load_coder
from hsicodec.codec import compress_scene, decode_tiles, salvage_fill
from hsicodec.container import MAGIC, HsicReader, SectionId
from hsicodec.errors import ContainerError
from hsicodec.io import open_scene
from hsicodec.plane_coding import PlaneCoder

CASE_SECONDS = 2.0
COUNTS: dict[str, int] = {}


@pytest.fixture(scope="module")
def coder() -> PlaneCoder:
    return load_coder(find_model())


@pytest.fixture(scope="module")
def real_file(tmp_path_factory, coder) -> bytes:
    """The Pavia eval crop (50x50x103) in 16 tiles of 16x16."""
    entry = find_model()
    path = tmp_path_factory.mktemp("fuzz") / "pavia.hsic"
    pavia = next(s for s in scenes("eval") if s["id"] == "paviaU_sub50")
    with open_scene(scene_path(pavia), pavia.get("var")) as reader:
        compress_scene(reader, path, entry, coder, 1.0, tile_size=16)
    return path.read_bytes()


def read_everything(path: Path, salvage: bool = False) -> str:
    """'ok', 'salvaged' or 'refused'; anything but a one-line ContainerError propagates."""
    started = time.perf_counter()
    try:
        with HsicReader(path, salvage=salvage) as reader:
            damaged = reader.damaged_tiles(range(reader.header.n_tiles))
            outcome = "salvaged" if damaged or reader.missing_tiles else "ok"
            assert all("\n" not in reason for reason in damaged.values())
    except ContainerError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(path)), str(exc)
        outcome = "refused"
    assert time.perf_counter() - started < CASE_SECONDS
    return outcome


def count(kind: str, n: int = 1) -> None:
    COUNTS[kind] = COUNTS.get(kind, 0) + n


def sections(data: bytes) -> list[tuple[int, int, int]]:
    """(id, offset, total length) of each section of an intact file."""
    (size,) = struct.unpack_from("<I", data, 12)
    offset, found = 16 + size + 4, []
    while offset < len(data):
        section_id, length = struct.unpack_from("<HI", data, offset)
        found.append((section_id, offset, 2 + 4 + length + 4))
        offset += 2 + 4 + length + 4
    return found


def test_every_single_bit_flip_is_refused_or_names_the_damage(real_file: bytes, tmp_path: Path) -> None:
    target = tmp_path / "flip.hsic"
    outcomes = []
    for position in range(len(real_file)):
        data = bytearray(real_file)
        data[position] ^= 1 << (position % 8)
        target.write_bytes(data)
        outcomes.append(read_everything(target))
    count("bit flips", len(outcomes))
    assert "ok" not in outcomes  # a CRC covers every byte
    assert outcomes.count("salvaged") > len(real_file) // 2  # most flips land in a tile and spare the others


def test_every_truncation_is_refused_and_salvage_keeps_the_tiles_before_the_cut(
        real_file: bytes, tmp_path: Path, coder: PlaneCoder) -> None:
    target = tmp_path / "cut.hsic"
    tile_starts = [offset for sid, offset, _ in sections(real_file) if sid == SectionId.TILE]
    end = next(offset for sid, offset, _ in sections(real_file) if sid == SectionId.END)
    for cut in range(len(real_file)):
        target.write_bytes(real_file[:cut])
        assert read_everything(target) == "refused"
        expected = "refused" if cut < tile_starts[0] else "salvaged" if cut < end else "ok"  # only END lost
        assert read_everything(target, salvage=True) == expected
    count("truncations (strict and salvage)", 2 * len(real_file))
    target.write_bytes(real_file[: tile_starts[5]])  # five whole tiles survive: decode them for real
    damage = []
    with HsicReader(target, salvage=True) as reader:
        salvaged = list(decode_tiles(reader, coder, None, on_damage=lambda i, rect, why: damage.append(i)))
    (tmp_path / "whole.hsic").write_bytes(real_file)
    with HsicReader(tmp_path / "whole.hsic") as reader:
        whole = list(decode_tiles(reader, coder, None))
        fill = salvage_fill(np.dtype(reader.header.dtype), None)
    assert damage == list(range(5, 16)) and len(salvaged) == 16
    for index, ((row, col, block), (row_w, col_w, block_w)) in enumerate(zip(salvaged, whole)):
        assert (row, col, block.shape, block.dtype) == (row_w, col_w, block_w.shape, block_w.dtype)
        expected = block_w if index < 5 else np.full_like(block_w, fill)
        assert np.array_equal(block, expected, equal_nan=True), index


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=4096), with_magic=st.booleans())
def test_random_bytes_are_refused(tmp_path: Path, data: bytes, with_magic: bool) -> None:
    target = tmp_path / "random.hsic"
    target.write_bytes((MAGIC if with_magic else b"") + data)
    assert read_everything(target) == "refused"
    count("random byte strings")


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.sampled_from(["overwrite", "insert", "delete"]), st.floats(0, 1),
                                st.binary(min_size=1, max_size=16)), min_size=1, max_size=4))
def test_random_edits_of_a_real_file_never_crash(real_file: bytes, tmp_path: Path, edits) -> None:
    data = bytearray(real_file)
    for kind, where, chunk in edits:
        at = int(where * len(data))
        if kind == "overwrite":
            data[at : at + len(chunk)] = chunk
        elif kind == "insert":
            data[at:at] = chunk
        else:
            del data[at : at + len(chunk)]
    target = tmp_path / "edited.hsic"
    target.write_bytes(data)
    for salvage in (False, True):
        read_everything(target, salvage)
    count("random edits (strict and salvage)", 2)


@pytest.mark.parametrize("change", ["duplicate METADATA", "duplicate tile", "drop tile", "drop BASIS",
                                    "drop END", "swap tiles", "two ENDs"])
def test_duplicated_missing_or_moved_sections(real_file: bytes, tmp_path: Path, change: str) -> None:
    found = sections(real_file)
    by_id = {sid: (offset, length) for sid, offset, length in found}
    tiles = [(offset, length) for sid, offset, length in found if sid == SectionId.TILE]

    def piece(offset_length: tuple[int, int]) -> bytes:
        offset, length = offset_length
        return real_file[offset : offset + length]

    data = bytearray(real_file)
    if change == "duplicate METADATA":
        at = by_id[SectionId.METADATA][0]
        data[at:at] = piece(by_id[SectionId.METADATA])
    elif change == "duplicate tile":
        data[tiles[3][0]:tiles[3][0]] = piece(tiles[3])
    elif change == "drop tile":
        del data[tiles[3][0] : tiles[3][0] + tiles[3][1]]
    elif change == "drop BASIS":
        offset, length = by_id[SectionId.BASIS]
        del data[offset : offset + length]
    elif change == "drop END":
        del data[by_id[SectionId.END][0]:]
    elif change == "swap tiles":
        first, second = piece(tiles[1]), piece(tiles[2])
        data[tiles[1][0] : tiles[2][0] + tiles[2][1]] = second + first
    else:
        data += piece(by_id[SectionId.END])
    target = tmp_path / "sections.hsic"
    target.write_bytes(data)
    expected = "ok" if change == "swap tiles" else "refused"  # tiles carry their index: order is free
    assert read_everything(target) == expected
    salvage = read_everything(target, salvage=True)
    assert salvage == {"drop BASIS": "refused", "swap tiles": "ok"}.get(change, salvage)
    if change in ("drop tile", "drop END", "duplicate tile", "two ENDs"):
        assert salvage in ("ok", "salvaged")
    count("section edits")


def test_coverage_guided_fuzzing_with_atheris(real_file: bytes, tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    seed = tmp_path / "seed.hsic"
    seed.write_bytes(real_file)
    runs = int(os.environ.get("HSICODEC_FUZZ_RUNS", "3000"))
    done = subprocess.run([sys.executable, str(REPO / "tests" / "fuzz" / "container_target.py"), str(seed),
                           f"-runs={runs}", "-max_total_time=120", "-timeout=5", "-rss_limit_mb=2048"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Done" in done.stderr
    count("atheris inputs", runs)


def test_report_case_counts() -> None:
    """Prints how many cases of each kind ran in this session (pytest -s shows it)."""
    print("\nfuzz cases:", ", ".join(f"{kind}: {n}" for kind, n in COUNTS.items()))
