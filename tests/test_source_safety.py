"""Nothing but hsicodec's own outputs is ever replaced: the source scene least of all.

Each test runs the real command line on a real scene copied to a folder of its own:
the rotated AVIRIS-NG ENVI scene (header + .img data file) and an EnMAP GeoTIFF.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error, digest, invoke, json_lines
from conftest import DATA, scenes

ENVI_SCENE = next(s for s in scenes("io") if s["id"] == "aviris_ng_rotated")
GTIFF_SCENE = next(s for s in scenes("eval") if s["id"] == "enmap_potsdam_192_128")


def _scene_as(entry: dict, folder: Path, stem: str) -> Path:
    """The scene's files copied to `folder` under `stem` (ENVI: stem.hdr + stem.img); the file to open."""
    folder.mkdir(parents=True, exist_ok=True)
    copies = []
    for name in entry["files"]:
        copy = folder / (stem + Path(name).suffix)
        shutil.copy(DATA / name, copy)
        copy.chmod(0o644)
        copies.append(copy)
    return next((c for c in copies if c.suffix == ".hdr"), copies[0])


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: digest(p) for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def envi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scene.hdr + scene.img and the scene.hsic made from them."""
    scene = _scene_as(ENVI_SCENE, tmp_path_factory.mktemp("envi"), "scene")
    assert invoke("compress", scene, "-q").exit_code == 0
    return scene


@pytest.fixture(scope="module")
def gtiff(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scene.tif and the scene.hsic made from it."""
    scene = _scene_as(GTIFF_SCENE, tmp_path_factory.mktemp("gtiff"), "scene")
    assert invoke("compress", scene, "-q").exit_code == 0
    return scene


def test_decompress_without_o_writes_a_restored_scene_beside_the_source(envi: Path, tmp_path: Path) -> None:
    folder = shutil.copytree(envi.parent, tmp_path / "copy")
    sources = _digests(folder)
    result = invoke("decompress", folder / "scene.hsic", "--json", "-q")
    assert result.exit_code == 0, result.stderr
    assert json_lines(result.stdout)[0]["output"] == str(folder / "scene.restored.hdr")
    assert (folder / "scene.restored.img").exists()
    assert {name: d for name, d in _digests(folder).items() if name in sources} == sources

    again = invoke("decompress", folder / "scene.hsic", "--json", "-q")
    assert again.exit_code == 0 and json_lines(again.stdout)[0]["status"] == "skipped"


@pytest.mark.parametrize("name", ["scene.hdr", "scene.img"])
def test_the_envi_source_is_never_replaced_even_with_overwrite(envi: Path, name: str) -> None:
    before = _digests(envi.parent)
    for extra in ([], ["--overwrite"]):
        result = invoke("decompress", envi.with_suffix(".hsic"), "-o", envi.parent / name, *extra)
        assert result.exit_code == 1 and "is the scene scene.hsic was made from" in result.stderr
        assert_one_line_error(result.stderr)
    assert _digests(envi.parent) == before


def test_the_gtiff_source_is_never_replaced_even_with_overwrite(gtiff: Path) -> None:
    before = _digests(gtiff.parent)
    result = invoke("decompress", gtiff.with_suffix(".hsic"), "-o", gtiff, "--overwrite")
    assert result.exit_code == 1 and "is the scene scene.hsic was made from" in result.stderr
    assert_one_line_error(result.stderr)
    assert _digests(gtiff.parent) == before


def test_a_scene_hsicodec_did_not_decode_is_neither_skipped_nor_replaced(gtiff: Path, tmp_path: Path) -> None:
    # a copy of the source has the decoded scene's shape and type: it must not pass for a finished run
    foreign = tmp_path / "restored.tif"
    shutil.copy(gtiff, foreign)
    before = _digests(tmp_path)
    for extra in ([], ["--overwrite"]):
        result = invoke("decompress", gtiff.with_suffix(".hsic"), "-o", foreign, *extra)
        assert result.exit_code == 1 and "was not decoded by hsicodec" in result.stderr, result.stderr
        assert_one_line_error(result.stderr)
    assert _digests(tmp_path) == before


def test_a_scene_decoded_from_another_hsic_file_is_replaced_only_with_overwrite(gtiff: Path, tmp_path: Path) -> None:
    other_hsic = tmp_path / "other.hsic"
    assert invoke("compress", gtiff, "-o", other_hsic, "-r", "2", "-q").exit_code == 0
    target = tmp_path / "restored.tif"
    assert invoke("decompress", other_hsic, "-o", target, "-q").exit_code == 0
    before = digest(target)
    refused = invoke("decompress", gtiff.with_suffix(".hsic"), "-o", target)
    assert refused.exit_code == 1 and "decoded from another .hsic file" in refused.stderr
    assert_one_line_error(refused.stderr)
    assert digest(target) == before
    assert invoke("decompress", gtiff.with_suffix(".hsic"), "-o", target, "--overwrite", "-q").exit_code == 0
    assert digest(target) != before


def test_a_foreign_envi_data_file_blocks_the_output_name(envi: Path, tmp_path: Path) -> None:
    kept = tmp_path / "out.img"
    kept.write_bytes(b"someone's data")
    result = invoke("decompress", envi.with_suffix(".hsic"), "-o", tmp_path / "out.hdr", "--overwrite")
    assert result.exit_code == 1 and "out.img exists and was not decoded by hsicodec" in result.stderr
    assert kept.read_bytes() == b"someone's data" and not (tmp_path / "out.hdr").exists()


def test_overwrite_replaces_what_hsicodec_decoded_from_the_same_file(gtiff: Path, tmp_path: Path) -> None:
    target = tmp_path / "r.tif"
    hsic = gtiff.with_suffix(".hsic")
    assert invoke("decompress", hsic, "-o", target, "--window", "0", "0", "8", "8", "-q").exit_code == 0
    refused = invoke("decompress", hsic, "-o", target)
    assert refused.exit_code == 1 and "--window" in refused.stderr and "--overwrite" in refused.stderr
    assert invoke("decompress", hsic, "-o", target, "--overwrite", "-q").exit_code == 0
    again = invoke("decompress", hsic, "-o", target, "--json", "-q")
    assert again.exit_code == 0 and json_lines(again.stdout)[0]["status"] == "skipped"


@pytest.mark.parametrize("name", ["scene.hdr", "scene.img"])
def test_compress_never_replaces_a_file_that_is_not_an_hsic_file(envi: Path, name: str) -> None:
    before = _digests(envi.parent)
    result = invoke("compress", envi, "-o", envi.parent / name, "--overwrite")
    assert result.exit_code == 1 and "is not an .hsic file" in result.stderr
    assert_one_line_error(result.stderr)
    assert _digests(envi.parent) == before


def test_a_missing_output_folder_is_an_error_for_one_file_and_created_for_a_batch(envi: Path,
                                                                                  tmp_path: Path) -> None:
    single = invoke("compress", envi, "-o", tmp_path / "typo" / "x.hsic")
    assert single.exit_code == 1 and "typo does not exist" in single.stderr and not (tmp_path / "typo").exists()
    assert_one_line_error(single.stderr)
    batch = invoke("compress", envi.parent, "-o", tmp_path / "packed", "-q")
    assert batch.exit_code == 0, batch.stderr
    assert f"created the output folder {tmp_path / 'packed'}" in batch.stderr
    assert (tmp_path / "packed" / "scene.hsic").exists()
